"""Replicate predictions API adapter (official models, created by ``owner/name``).

Wire contract: ``reference/providers/replicate.md``.

- Create: ``POST /v1/models/{owner}/{name}/predictions`` with ``{"input": {...}}``; the input is per
  model (``catalog.py``'s ``extra``). Never ``Prefer: wait`` (it would hold a worker for up to 60 s
  and still return a running prediction). Poll ``GET /v1/predictions/{id}``; cancel
  ``POST /v1/predictions/{id}/cancel``.
- Statuses: ``starting`` -> queued, ``processing`` -> in progress, ``succeeded``, ``failed``,
  ``canceled``, and ``aborted`` (the prediction's deadline passed before it started: not billed)
  -> failed with ``aborted``. Unknown values keep polling. Replicate reports no progress (its
  ``logs`` are free text per model): ``progress`` is None until the job ends.
- Output: one URI or a list of URIs, deleted one hour after completion (§7): the engine copies it at
  once. A prediction whose data was removed, or an output URL answering 404/410, fails with
  ``output_expired`` (permanent, no charge).
- Errors are RFC 7807 problem details (``title``, ``detail``, ``status``). A 5xx answer to a
  create may still have created the prediction (§6: "check by listing recent predictions before
  resubmitting"), and nothing can find a prediction by our reference (no metadata field, §4), so
  such a create is ``uncertain`` and the engine fails it without charge rather than pay twice.
- Creates are paced per key to ``REPLICATE_CREATES_PER_MINUTE`` (600, §6) inside this process; past
  it, and on a 429, a transient ``rate_limited`` error carries ``retry_after``.
- Callbacks: with ``spec.callback_url`` the create asks for ``webhook`` + ``webhook_events_filter:
  ["completed"]``. Deliveries are Standard Webhooks, verified with the ``standardwebhooks`` package
  (signature and its ±5 min timestamp tolerance) against the account's secret from
  ``GET /v1/webhooks/default/secret``.
- ``usage``: the prediction's numeric ``metrics`` (``predict_time``, ``total_time``, …). The API
  states no price (§9), so there is no ``cost_usd``; the catalog price is the cost.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests
from standardwebhooks import Webhook, WebhookVerificationError
from standardwebhooks.webhooks import EmptyWebhookSecretError

from apps.providers import http
from apps.providers.base import (
    CallbackDelivery,
    CallbackRejected,
    Credentials,
    Download,
    GenerationSpec,
    JobState,
    JobStatus,
    KeyField,
    ProviderError,
    ProviderSetting,
    VideoProvider,
)
from apps.providers.modelinfo import IMAGE_TO_VIDEO, ModelInfo

TOKEN_PREFIX = "r8_"
CREATES_PER_MINUTE = 600  # replicate.md §6
DATA_URI_MAX_BYTES = 256 * 1024  # §1: the API docs suggest data URIs only for files up to 256 KB
DEFAULT_RATE_LIMIT_WAIT = 10.0  # a 429 with neither Retry-After nor "resets in ~Ns"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
WEBHOOK_EVENTS = ("completed",)
_MESSAGE_LIMIT = 500
_WINDOW = 60.0

_STATES = {
    "starting": JobState.QUEUED,
    "processing": JobState.IN_PROGRESS,
    "succeeded": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "canceled": JobState.CANCELED,
    "cancelled": JobState.CANCELED,
    "aborted": JobState.FAILED,
}
# §6: no failure codes, only free text; classify by substring
_POLICY_WORDS = ("sensitive", "flagged", "nsfw", "safety", "content policy", "moderation", "(e005)")
_RESETS_IN = re.compile(r"resets in\s*~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
_VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".m4v")


def _q(value: str) -> str:
    return quote(value, safe="")


def _int_option(options: Mapping[str, str], name: str, default: int) -> int:
    try:
        value = int(str(options.get(name) or default).strip())
    except ValueError:
        return default
    return value if value > 0 else default


def _text(value: Any, depth: int = 0) -> str:
    """Readable text of any JSON value (an RFC 7807 ``detail`` may be a string, a list of
    validation errors, or an object)."""
    if depth > 4 or value is None or isinstance(value, bool):
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "; ".join(t for t in (_text(v, depth + 1) for v in value[:20]) if t)
    if isinstance(value, dict):
        message = value.get("msg") or value.get("message")
        if isinstance(message, str):
            where = value.get("loc") or value.get("field")
            where = ".".join(str(p) for p in where) if isinstance(where, list) else _text(where, depth + 1)
            return f"{where}: {message}" if where else message
        return "; ".join(f"{k}: {t}" for k, v in list(value.items())[:20] if (t := _text(v, depth + 1)))
    return ""


def problem_text(body: Any) -> str:
    """``title: detail`` of an RFC 7807 body; whatever readable text another shape has."""
    if isinstance(body, dict):
        title = _text(body.get("title"))
        detail = _text(body.get("detail"))
        if not (title or detail):
            detail = _text(body.get("error") or body.get("message"))
        if title and detail and title.lower() not in detail.lower():
            return f"{title}: {detail}"
        return detail or title
    if isinstance(body, str):
        return body.strip()
    return ""


def output_urls(output: Any) -> tuple[str, ...]:
    """The http(s) URLs of a prediction's ``output``: one string for most video models, a list for
    some (quirk 3), an object for a few. Video files come first."""
    if isinstance(output, str):
        items: list[Any] = [output]
    elif isinstance(output, list):
        items = list(output)
    elif isinstance(output, dict):
        items = list(output.values())
    else:
        items = []
    urls = [u for u in items if isinstance(u, str) and u.startswith(("https://", "http://"))]
    return tuple(sorted(urls, key=lambda u: not u.split("?", 1)[0].lower().endswith(_VIDEO_SUFFIXES)))


def usage_of(prediction: Mapping[str, Any]) -> dict[str, Any]:
    """The numeric ``metrics`` Replicate reports (``predict_time`` is what it bills by on
    hardware-priced models); Replicate states no price for official models (§9)."""
    metrics = prediction.get("metrics")
    if not isinstance(metrics, dict):
        return {}
    return {str(k): v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool) and v == v}


def failure_code(error: str) -> str:
    lowered = error.lower()
    if any(word in lowered for word in _POLICY_WORDS):
        return "content_policy"
    if "timed out" in lowered or "timeout" in lowered:
        return "timeout"
    return "generation_failed"


class _CreatePacer:
    """Creates per key in the last minute, in this process (the key is held only as a digest)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[str, deque[float]] = {}

    def reserve(self, key: str, limit: int, now: float | None = None) -> float | None:
        """Take a slot: None when taken, else the seconds until one frees."""
        now = time.monotonic() if now is None else now
        with self._lock:
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0] <= now - _WINDOW:
                sent.popleft()
            if len(sent) >= limit:
                return max(sent[0] + _WINDOW - now, 0.001)
            sent.append(now)
            return None

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()


PACER = _CreatePacer()


class ReplicateProvider(VideoProvider):
    slug = "replicate"
    label = "Replicate"
    supplier_kind = "aggregator"
    supports_cancel = True
    supports_callbacks = True
    callback_verification = "signature"
    key_fields = (
        KeyField(
            "api_key",
            "API token",
            help="A Replicate API token (starts r8_), from replicate.com/account/api-tokens.",
        ),
    )
    key_shapes = (("api_key",),)
    default_base_url = "https://api.replicate.com"
    extra_settings = (
        ProviderSetting(
            "CREATES_PER_MINUTE",
            str(CREATES_PER_MINUTE),
            help="Predictions created per key per minute by each worker process (Replicate allows 600; "
            "6 without a payment method).",
        ),
        ProviderSetting(
            "DATA_URI_MAX_BYTES",
            str(DATA_URI_MAX_BYTES),
            help="Largest input image sent inline as a data: URI; larger images need an https URL.",
        ),
    )

    def __init__(
        self, credentials: Credentials | None, base_url: str, *, options: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(credentials, base_url, options=options)
        # the SDK's REPLICATE_BASE_URL includes /v1; ours is the host (both are accepted)
        self._root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        self.creates_per_minute = _int_option(self.options, "CREATES_PER_MINUTE", CREATES_PER_MINUTE)
        self.data_uri_max_bytes = _int_option(self.options, "DATA_URI_MAX_BYTES", DATA_URI_MAX_BYTES)

    @classmethod
    def check_credentials(cls, credentials: Credentials) -> dict[str, str]:
        """Refuse a value that is not a Replicate token before it is sent anywhere: every token
        starts ``r8_`` (§1), so anything else is another provider's key or a pasted secret."""
        token = credentials.api_key or ""
        if not token.startswith(TOKEN_PREFIX):
            return {"api_key": f"A Replicate API token starts with {TOKEN_PREFIX} (replicate.com/account/api-tokens)."}
        if any(c.isspace() for c in token):
            return {"api_key": "A Replicate API token has no spaces."}
        return {}

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.api_key}", "Accept": "application/json"}

    def _error(self, response: requests.Response, *, creating: bool = False) -> ProviderError:
        status = response.status_code
        detail = http.scrub(problem_text(http.read_json(response)), self.credentials.api_key)[:_MESSAGE_LIMIT]
        retry_after = None
        uncertain = False
        if status == 401:
            code, permanent, what = "invalid_api_key", True, "Replicate rejected the API token"
        elif status == 402 or (400 <= status < 500 and status != 429 and "insufficient credit" in detail.lower()):
            code, permanent, what = "insufficient_balance", True, "The Replicate account is out of credit; top it up"
        elif status == 403:
            code, permanent, what = "permission_denied", True, "The Replicate token may not do this"
        elif status == 404:
            if creating:
                code, permanent, what = "model_not_available", True, "Replicate has no such model"
            else:
                code, permanent, what = "not_found", True, "Replicate has no such prediction"
        elif status == 429:
            code, permanent, what = "rate_limited", False, "Replicate's rate limit was reached"
            retry_after = http.parse_retry_after(response.headers)
            if retry_after is None:
                match = _RESETS_IN.search(detail)
                retry_after = float(match.group(1)) if match else DEFAULT_RATE_LIMIT_WAIT
        elif status >= 500 or status == 408:
            code, permanent, what = "server_error", False, "Replicate is overloaded or had a server error"
            retry_after = http.parse_retry_after(response.headers)
            uncertain = creating  # the prediction may exist (§6), and it cannot be looked up
        elif 400 <= status < 500:
            code, permanent, what = "invalid_request", True, "Replicate refused the request"
        else:
            code, permanent, what = "bad_response", False, "Unexpected answer from Replicate"
            uncertain = creating
        return ProviderError(
            f"{what} (HTTP {status})" + (f": {detail}" if detail else "."),
            code=code,
            permanent=permanent,
            retry_after=retry_after,
            status_code=status,
            uncertain=uncertain,
        )

    def _call(self, method: str, path: str, *, creating: bool = False, **kwargs: Any) -> dict[str, Any]:
        response = http.request(method, f"{self._root}{path}", headers=self._headers(), **kwargs)
        if not 200 <= response.status_code < 300:
            raise self._error(response, creating=creating)
        body = http.read_json(response)
        if not isinstance(body, dict):
            raise ProviderError(
                f"Replicate answered {method} {path.split('?')[0]} with a body that is not a JSON object.",
                code="bad_response",
                uncertain=creating,
                status_code=response.status_code,
            )
        return body

    # --- mapping ----------------------------------------------------------------------------

    def _image_value(self, model: ModelInfo, spec: GenerationSpec) -> str:
        image = spec.image
        assert image is not None
        if image.url:
            if not image.url.startswith("https://"):
                raise self._refuse("Replicate fetches input images itself: give an https image URL.")
            return image.url
        if not image.data:
            raise self._refuse("The input image is empty.")
        content_type = (image.content_type or "").split(";")[0].strip().lower()
        if content_type not in IMAGE_TYPES:
            raise self._refuse(f"Replicate takes JPEG, PNG or WebP images, not {content_type or 'an unknown type'}.")
        if not model.extra.get("data_uri"):
            raise self._refuse(f"{model.label} on Replicate needs a public https URL for the input image.")
        if len(image.data) > self.data_uri_max_bytes:
            raise self._refuse(
                f"The input image is {len(image.data)} bytes; Replicate takes inline images only up to "
                f"{self.data_uri_max_bytes} bytes. Give a public https image URL instead."
            )
        return f"data:{content_type};base64,{base64.b64encode(image.data).decode('ascii')}"

    def build_input(self, model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
        """The model's ``input`` object for ``spec``; refuses what the model cannot do."""
        extra = model.extra
        if not (spec.prompt or "").strip():
            raise self._refuse(f"{model.label} needs a prompt.")
        sizes: Mapping[str, Mapping[str, str]] = extra["size_inputs"]  # type: ignore[assignment]
        if spec.size not in sizes:
            raise self._refuse(f"{model.label} supports sizes {', '.join(sizes)}.")
        if spec.seconds not in model.seconds:
            raise self._refuse(f"{model.label} supports durations of {', '.join(map(str, model.seconds))} seconds.")
        size_fields = dict(sizes[spec.size])
        limited = extra.get("seconds_by_resolution", {}).get(size_fields.get("resolution"))  # type: ignore[union-attr]
        if limited and spec.seconds not in limited:
            allowed = ", ".join(map(str, limited))
            raise self._refuse(f"{model.label} makes {size_fields['resolution']} videos of {allowed} seconds only.")
        if spec.seed is not None and not model.supports_seed:
            raise self._refuse(f"{model.label} does not take a seed.")
        if spec.negative_prompt and not model.supports_negative_prompt:
            raise self._refuse(f"{model.label} does not take a negative prompt.")
        audio_field = extra.get("audio_field")
        if spec.audio and not (model.has_audio and audio_field):
            raise self._refuse(f"{model.label} makes silent videos only.")

        payload: dict[str, Any] = {"prompt": spec.prompt, "duration": int(spec.seconds), **size_fields}
        if spec.image is not None:
            image_field = extra.get("image_field")
            if IMAGE_TO_VIDEO not in model.capabilities or not image_field:
                raise self._refuse(f"{model.label} on Replicate does not take an input image (text to video only).")
            payload[str(image_field)] = self._image_value(model, spec)
            for name in extra.get("omit_with_image", ()):  # type: ignore[union-attr]
                payload.pop(name, None)
        if spec.negative_prompt:
            payload["negative_prompt"] = spec.negative_prompt
        if spec.seed is not None:
            payload["seed"] = int(spec.seed)
        if model.has_audio and audio_field:
            # always explicit, so the video has the sound the catalog priced
            payload[str(audio_field)] = model.audio_for(spec.audio)
        return payload

    # --- interface ----------------------------------------------------------------------------

    def validate_key(self) -> None:
        self._call("GET", "/v1/account")

    def submit(self, spec: GenerationSpec) -> str:
        model = self._require_catalog_model(spec)
        self._require_image_if_image_only(model, spec)
        body: dict[str, Any] = {"input": self.build_input(model, spec)}
        if spec.callback_url:
            body["webhook"] = spec.callback_url
            body["webhook_events_filter"] = list(WEBHOOK_EVENTS)
        owner, _, name = model.provider_model.partition("/")
        key = hashlib.sha256((self.credentials.api_key or "").encode()).hexdigest()[:24]
        wait = PACER.reserve(key, self.creates_per_minute)
        if wait is not None:
            raise ProviderError(
                f"MediaRouter paces Replicate creates to {self.creates_per_minute} a minute per key; "
                f"next slot in {wait:.1f}s.",
                code="rate_limited",
                retry_after=wait,
            )
        prediction = self._call("POST", f"/v1/models/{_q(owner)}/{_q(name)}/predictions", json=body, creating=True)
        prediction_id = prediction.get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise ProviderError(
                "Replicate accepted the prediction but returned no id.", code="bad_response", uncertain=True
            )
        return prediction_id

    def status(self, job_id: str, *, job_data=None) -> JobStatus:
        prediction = self._call("GET", f"/v1/predictions/{_q(job_id)}")
        raw = str(prediction.get("status") or "")
        state = _STATES.get(raw.lower(), JobState.IN_PROGRESS)  # unknown: keep polling (§4)
        progress: int | None = None
        outputs: tuple[str, ...] = ()
        error_code = error_message = None
        if state is JobState.COMPLETED:
            progress = 100
            outputs = output_urls(prediction.get("output"))
            if not outputs:
                state = JobState.FAILED
                if prediction.get("data_removed"):
                    error_code = "output_expired"
                    error_message = (
                        "Replicate deleted this prediction's output (one hour after it finished) before "
                        "MediaRouter copied it. No charge."
                    )
                else:
                    error_code, error_message = "no_output", "Replicate reported success but returned no video URL."
        elif raw.lower() == "aborted":
            error_code = "aborted"
            error_message = "Replicate aborted the prediction before it started (not billed); try again."
        elif state is JobState.FAILED:
            text = http.scrub(_text(prediction.get("error")), self.credentials.api_key)
            error_code = failure_code(text)
            error_message = (text or "Replicate reported the prediction as failed without a reason.")[:_MESSAGE_LIMIT]
        return JobStatus(
            state=state,
            progress=progress,
            raw_status=raw,
            output_urls=outputs,
            error_code=error_code,
            error_message=error_message,
            usage=usage_of(prediction),
        )

    def _download_error(self, response: requests.Response) -> ProviderError:
        status = response.status_code
        if status in (404, 410):
            return ProviderError(
                f"Replicate's output file is gone (HTTP {status}): outputs are deleted one hour after the "
                "prediction finishes. No charge.",
                code="output_expired",
                permanent=True,
                status_code=status,
            )
        return http.download_failed(
            status, response.headers, f"Downloading Replicate's output failed with HTTP {status}."
        )

    def download(self, job_id: str, *, url: str | None = None, variant: str = "video", job_data=None) -> Download:
        if variant != "video":
            raise ProviderError("Replicate has no thumbnails.", code="unsupported", permanent=True)
        if url is None:
            job = self.status(job_id)
            if job.error_code == "output_expired":
                raise ProviderError(job.error_message or "Output expired.", code="output_expired", permanent=True)
            if job.state is not JobState.COMPLETED or not job.output_urls:
                raise ProviderError(
                    f"Replicate prediction {job_id} is {job.raw_status or 'not finished'}; nothing to download yet.",
                    code="not_ready",
                )
            url = job.output_urls[0]
        return http.stream_download(
            url,
            max_bytes=http.max_download_bytes(),
            allowed_private_hosts=self._private_hosts(),
            on_error=self._download_error,
        )

    def cancel(self, job_id: str, *, job_data=None) -> None:
        """Cancel a prediction; a finished one is returned unchanged (§5), an unknown one is a no-op."""
        try:
            self._call("POST", f"/v1/predictions/{_q(job_id)}/cancel")
        except ProviderError as exc:
            if exc.status_code != 404:
                raise

    # --- callbacks ----------------------------------------------------------------------------

    def callback_secret(self) -> str:
        """The account's webhook signing secret (``whsec_…``), fetched once per key."""
        body = self._call("GET", "/v1/webhooks/default/secret")
        key = body.get("key")
        if not isinstance(key, str) or not key.startswith("whsec_"):
            raise ProviderError("Replicate returned no webhook signing secret.", code="bad_response")
        return key

    def verify_callback(
        self, *, headers: Mapping[str, str], body: bytes, secret: str | None = None
    ) -> CallbackDelivery:
        """A genuine delivery names its prediction; anything else raises :class:`CallbackRejected`.

        Checks the Standard Webhooks signature over ``webhook-id.webhook-timestamp.body`` and the
        timestamp tolerance (±5 minutes), so a captured delivery replayed later, or a body under
        another delivery's signature, is refused. A retry of the same delivery within the tolerance
        passes: the engine re-reads the prediction rather than trusting the body, so it is harmless."""
        if not secret:
            raise CallbackRejected("No Replicate webhook secret is stored for this key.")
        try:
            Webhook(secret).verify(body, {str(k): str(v) for k, v in headers.items()}, json_parse=False)
        except (WebhookVerificationError, EmptyWebhookSecretError) as exc:
            raise CallbackRejected(f"Replicate webhook refused: {exc}") from None
        except (ValueError, TypeError, RuntimeError):  # malformed signature entries, base64, encoding
            raise CallbackRejected("Replicate webhook refused: malformed signature headers or body.") from None
        try:
            prediction = json.loads(body)
        except ValueError:
            raise CallbackRejected("Replicate webhook body is not JSON.") from None
        prediction_id = prediction.get("id") if isinstance(prediction, dict) else None
        if not isinstance(prediction_id, str) or not prediction_id:
            raise CallbackRejected("Replicate webhook body names no prediction.")
        return CallbackDelivery(job_id=prediction_id)
