"""BytePlus ModelArk adapter: Seedance through Ark's content generation task API.

Wire contract: ``reference/providers/seedance-byteplus.md``; project note: docs/providers/byteplus.md.

- Base URL ``BYTEPLUS_BASE_URL`` (default ``https://ark.ap-southeast.bytepluses.com/api/v3``, the SDK's),
  ``Authorization: Bearer <api key>``. Volcengine Ark (other host, keys and ``doubao-…`` ids) is not
  this provider.
- Create ``POST /contents/generations/tasks`` with ``model`` (the dated id pinned in ``catalog.py``),
  ``content[]`` (one ``text`` item; the input image as ``image_url`` with role ``first_frame``, its
  URL or a ``data:image/<lower-case>;base64,`` URI), ``resolution`` + ``ratio`` from the size,
  ``duration`` (never ``frames``), ``seed`` (``-1`` when not given), ``generate_audio`` (always
  explicit, so the video has the sound the catalog priced), ``watermark: false`` and, with
  ``spec.callback_url``, ``callback_url``. The answer is only ``{"id": "cgt-…"}`` (quirk 1).
- Poll ``GET /contents/generations/tasks/{id}``: ``queued``, ``running``, ``succeeded``, ``failed``,
  ``cancelled`` and ``expired`` (failed, code ``expired``); unknown values keep polling. A finished
  task's ``usage.completion_tokens`` goes into ``JobStatus.usage`` with its price (``cost_usd``).
- Cancel: ``DELETE`` cancels a queued task but **deletes** a finished one and fails on a running
  one (§5), so ``cancel`` reads the task first and sends DELETE only while it is ``queued``.
- Errors: ``{"error": {code, message, param, type}}``, classified by code, prefix and substring
  (§7); ``ModelNotOpen`` is permanent (``model_not_open``) and says to activate the model.
- There is no idempotency key and no lookup by our reference: a 5xx or a timeout on create is
  ``uncertain`` (the engine fails it without charge rather than risk a second billed task).
- Callbacks are unsigned (§6): ``verify_callback`` only reads the task id from the body; the
  per-generation token in the callback URL is the proof, and the engine re-reads the task.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import requests

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
    SubmittedJob,
    VideoProvider,
)
from apps.providers.modelinfo import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, ModelInfo

TASKS = "/contents/generations/tasks"
DEFAULT_RATE_LIMIT_WAIT = 10.0  # a 429 without Retry-After
EXPIRES_MIN, EXPIRES_MAX = 3600, 259200  # §3 execution_expires_after (third-party)
SEED_MAX = 2**32 - 1
# §3: jpeg, png, webp, bmp, tiff, gif; the data: URI wants the lower-case format name (quirk 8)
IMAGE_FORMATS = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "image/gif": "gif",
}
IMAGE_MAX_BYTES = 30 * 1024 * 1024  # §3: < 30 MB
_MESSAGE_LIMIT = 500

_STATES = {
    "queued": JobState.QUEUED,
    "running": JobState.IN_PROGRESS,
    "succeeded": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELED,
    "canceled": JobState.CANCELED,
    "expired": JobState.FAILED,
}

MODEL_NOT_OPEN_HINT = (
    "Activate the model in the BytePlus ModelArk console (Model activation) for this key's account, then try again."
)


def _q(value: str) -> str:
    return quote(value, safe="")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def error_fields(body: Any) -> tuple[str, str, str]:
    """``(code, message, param)`` of Ark's envelope ``{"error": {code, message, param, type}}``;
    whatever readable text another shape has (never raises)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return _text(error.get("code")), _text(error.get("message")), _text(error.get("param"))
        if isinstance(error, str):
            return "", error.strip(), ""
        return _text(body.get("code")), _text(body.get("message")), ""
    if isinstance(body, str):
        return "", body.strip(), ""
    return "", "", ""


def classify(code: str, status: int | None) -> tuple[str, bool]:
    """Our ``(code, permanent)`` for an Ark error code (with the HTTP status when there is one).
    By exact code first, then by prefix and substring: Ark lists no complete catalogue (§7)."""
    lowered = code.lower()
    if code == "ModelNotOpen" or "modelnotopen" in lowered:
        return "model_not_open", True
    if code.startswith("AuthenticationError") or "invalidapikey" in lowered or status == 401:
        return "invalid_api_key", True
    if code.startswith("AccountOverdue") or "overdue" in lowered:
        return "insufficient_balance", True
    if code.startswith("AccessDenied") or status == 403:
        return "permission_denied", True
    if "sensitive" in lowered or "policyviolation" in lowered:
        return "content_policy", True
    if code.startswith("QuotaExceeded"):
        return "quota_exceeded", True  # §7: a 429 that must not be retried
    if "ratelimit" in lowered or ("rpm" in lowered and "exceeded" in lowered):
        return "rate_limited", False
    if code in ("ModelLoadingError", "ServerOverloaded") or code.startswith("InternalServiceError"):
        return "server_error", False
    if code.startswith(("InvalidEndpoint", "InvalidEndpointOrModel")):
        return "model_not_available", True
    if code.startswith(("MissingParameter", "InvalidParameter")):
        return "invalid_request", True
    if status is None:
        return "generation_failed", True
    if status == 429:
        return "rate_limited", False
    if status >= 500 or status in (408, 409):
        return "server_error", False
    if status == 404:
        return "not_found", True
    return "invalid_request", True


def _usd_per_token(model: ModelInfo | None, audio: bool) -> Decimal | None:
    if model is None:
        return None
    key = "usd_per_million_tokens_audio" if audio and "usd_per_million_tokens_audio" in model.extra else None
    value = model.extra.get(key or "usd_per_million_tokens")
    return Decimal(str(value)) / Decimal(1_000_000) if value is not None else None


def _tokens(task: Mapping[str, Any]) -> int | None:
    usage = task.get("usage")
    if not isinstance(usage, dict):
        return None
    for name in ("completion_tokens", "total_tokens"):
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


class BytePlusProvider(VideoProvider):
    slug = "byteplus"
    label = "BytePlus ModelArk"
    supplier_kind = "direct"
    supports_cancel = True
    supports_callbacks = True
    callback_verification = "token"
    key_fields = (
        KeyField(
            "api_key",
            "ModelArk API key",
            help="An API key from the BytePlus ModelArk console (API Key Management), for the "
            "ap-southeast region. Activate each Seedance model in the console before use.",
        ),
    )
    key_shapes = (("api_key",),)
    default_base_url = "https://ark.ap-southeast.bytepluses.com/api/v3"
    extra_settings = (
        ProviderSetting(
            "EXECUTION_EXPIRES_AFTER",
            "",
            help="Seconds after which Ark expires an unfinished task (3600-259200; empty: Ark's "
            "default of 172800). Align it with GENERATION_DEADLINE_SECONDS.",
        ),
    )

    def __init__(
        self, credentials: Credentials | None, base_url: str, *, options: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(credentials, base_url, options=options)
        self.execution_expires_after = self._expires_option()

    def _expires_option(self) -> int | None:
        raw = str(self.options.get("EXECUTION_EXPIRES_AFTER") or "").strip()
        if not raw:
            return None
        try:
            value = int(raw)
        except ValueError:
            return None
        return min(max(value, EXPIRES_MIN), EXPIRES_MAX)

    @classmethod
    def check_credentials(cls, credentials: Credentials) -> dict[str, str]:
        key = credentials.api_key or ""
        if any(c.isspace() for c in key):
            return {"api_key": "A ModelArk API key has no spaces (paste the key alone, without 'Bearer')."}
        return {}

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self, client_reference: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.credentials.api_key}", "Accept": "application/json"}
        if client_reference:
            headers["X-Client-Request-Id"] = client_reference
        return headers

    def _scrub(self, text: str) -> str:
        return http.scrub(text, self.credentials.api_key)[:_MESSAGE_LIMIT]

    def _error(self, response: requests.Response, *, creating: bool = False) -> ProviderError:
        status = response.status_code
        upstream, detail, param = error_fields(http.read_json(response))
        if not detail and not upstream and "json" not in response.headers.get("Content-Type", ""):
            detail = (response.text or "").strip()[:200]  # a proxy's HTML or plain-text page
        detail = self._scrub(detail)
        code, permanent = classify(upstream, status)
        if 200 <= status < 300:
            code, permanent = "bad_response", False
        retry_after = None if permanent else http.parse_retry_after(response.headers)
        if code == "rate_limited" and retry_after is None:
            retry_after = DEFAULT_RATE_LIMIT_WAIT
        what = {
            "model_not_open": "This Seedance model is not activated for the BytePlus account. " + MODEL_NOT_OPEN_HINT,
            "invalid_api_key": "BytePlus rejected the API key",
            "permission_denied": "The BytePlus key may not do this",
            "insufficient_balance": "The BytePlus account is overdue; settle it in the console",
            "quota_exceeded": "The BytePlus free quota is used up; change the model's billing in the console",
            "content_policy": "BytePlus refused the input (moderation)",
            "rate_limited": "BytePlus' rate limit was reached",
            "server_error": "BytePlus is overloaded or had a server error",
            "model_not_available": "BytePlus has no such model or endpoint",
            "not_found": "BytePlus has no such task (tasks are kept 7 days)",
            "invalid_request": "BytePlus refused the request",
        }.get(code, "Unexpected answer from BytePlus")
        tag = f"HTTP {status}" + (f", {upstream}" if upstream else "") + (f", param {param}" if param else "")
        return ProviderError(
            f"{what} ({self._scrub(tag)})" + (f": {detail}" if detail else "."),
            code=code,
            permanent=permanent,
            retry_after=retry_after,
            status_code=status,
            # no idempotency key and no lookup (§7): a create answered 5xx may have started a task
            uncertain=creating and not permanent and code != "rate_limited",
        )

    def _call(
        self, method: str, path: str, *, creating: bool = False, allow_empty: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        headers = self._headers(kwargs.pop("client_reference", None))
        response = http.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)
        if not 200 <= response.status_code < 300:
            raise self._error(response, creating=creating)
        body = http.read_json(response)
        if allow_empty and body is None:
            return {}
        if not isinstance(body, dict):
            raise ProviderError(
                f"BytePlus answered {method} {path.split('?')[0]} with a body that is not a JSON object.",
                code="bad_response",
                uncertain=creating,
                status_code=response.status_code,
            )
        return body

    # --- mapping ----------------------------------------------------------------------------

    def _image_url(self, model: ModelInfo, spec: GenerationSpec) -> str:
        image = spec.image
        assert image is not None
        if image.url:
            if not image.url.startswith(("https://", "http://", "asset://")):
                raise self._refuse("BytePlus takes input images as an https URL or inline data.")
            return image.url
        if not image.data:
            raise self._refuse("The input image is empty.")
        content_type = (image.content_type or "").split(";")[0].strip().lower()
        fmt = IMAGE_FORMATS.get(content_type)
        if fmt is None:
            raise self._refuse(
                f"BytePlus takes JPEG, PNG, WebP, BMP, TIFF or GIF images, not {content_type or 'an unknown type'}."
            )
        if len(image.data) >= IMAGE_MAX_BYTES:
            raise self._refuse("BytePlus takes input images under 30 MB.")
        return f"data:image/{fmt};base64,{base64.b64encode(image.data).decode('ascii')}"

    def build_body(self, model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
        """The create body for ``spec``; refuses what the model cannot do before any request."""
        if not (spec.prompt or "").strip():
            raise self._refuse(f"{model.label} needs a prompt.")
        sizes: Mapping[str, Mapping[str, str]] = model.extra["size_inputs"]  # type: ignore[assignment]
        if spec.size not in sizes:
            raise self._refuse(f"{model.label} supports sizes {', '.join(sizes)}.")
        if spec.seconds not in model.seconds:
            raise self._refuse(f"{model.label} supports durations of {model.seconds[0]}-{model.seconds[-1]} seconds.")
        if spec.negative_prompt and not model.supports_negative_prompt:
            raise self._refuse(f"{model.label} does not take a negative prompt.")
        if spec.seed is not None and (isinstance(spec.seed, bool) or not 0 <= int(spec.seed) <= SEED_MAX):
            raise self._refuse(f"The seed must be an integer from 0 to {SEED_MAX}.")
        if spec.image is None and TEXT_TO_VIDEO not in model.capabilities:
            raise self._refuse(f"{model.label} needs an input image.")
        if spec.image is not None and IMAGE_TO_VIDEO not in model.capabilities:
            raise self._refuse(f"{model.label} does not take an input image.")
        if spec.audio and not model.has_audio:
            raise self._refuse(f"{model.label} makes silent videos only.")
        content: list[dict[str, Any]] = [{"type": "text", "text": spec.prompt}]
        if spec.image is not None:
            content.append(
                {"type": "image_url", "image_url": {"url": self._image_url(model, spec)}, "role": "first_frame"}
            )
        fields = sizes[spec.size]
        body: dict[str, Any] = {
            "model": model.provider_model,
            "content": content,
            "resolution": fields["resolution"],
            "ratio": fields["ratio"],
            "duration": int(spec.seconds),
            "seed": int(spec.seed) if spec.seed is not None else -1,
            "watermark": False,
        }
        if model.has_audio:
            body["generate_audio"] = model.audio_for(spec.audio)
        if self.execution_expires_after is not None:
            body["execution_expires_after"] = self.execution_expires_after
        if spec.callback_url:
            body["callback_url"] = spec.callback_url
        return body

    def _model_of(self, task: Mapping[str, Any], job_data: Mapping[str, Any] | None) -> ModelInfo | None:
        from apps.providers import catalog

        canonical = (job_data or {}).get("model")
        if isinstance(canonical, str):
            model = catalog.supplier_model(self.slug, canonical)
            if model is not None:
                return model
        upstream = task.get("model")
        return next((m for m in catalog.all_models() if m.provider == self.slug and m.provider_model == upstream), None)

    def usage_of(self, task: Mapping[str, Any], job_data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``{"total_tokens": N, "cost_usd": "<N x the model's token price>"}``: what BytePlus billed
        (§4: ``completion_tokens``, which equals ``total_tokens``), priced with the catalog's token
        price (with or without audio, as the task echoes ``generate_audio``)."""
        tokens = _tokens(task)
        if tokens is None:
            return {}
        usage: dict[str, Any] = {"total_tokens": tokens}
        audio = task.get("generate_audio")
        if audio is None:
            audio = (job_data or {}).get("audio", False)
        per_token = _usd_per_token(self._model_of(task, job_data), bool(audio))
        if per_token is not None:
            usage["cost_usd"] = str(tokens * per_token)
        return usage

    # --- interface ----------------------------------------------------------------------------

    def validate_key(self) -> None:
        """The cheapest authenticated call: list one task (§2 endpoint 3)."""
        self._call("GET", TASKS, params={"page_num": 1, "page_size": 1})

    def submit(self, spec: GenerationSpec) -> SubmittedJob:
        model = self._require_catalog_model(spec)
        body = self.build_body(model, spec)
        task = self._call("POST", TASKS, json=body, creating=True, client_reference=spec.client_reference)
        task_id = task.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("BytePlus accepted the task but returned no id.", code="bad_response", uncertain=True)
        return SubmittedJob(job_id=task_id, data={"model": model.id, "audio": bool(body.get("generate_audio"))})

    def _task(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"{TASKS}/{_q(job_id)}")

    def status(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> JobStatus:
        task = self._task(job_id)
        raw = str(task.get("status") or "")
        state = _STATES.get(raw.lower(), JobState.IN_PROGRESS)  # unknown: keep polling
        progress: int | None = None
        outputs: tuple[str, ...] = ()
        error_code = error_message = None
        usage: dict[str, Any] = {}
        if state is JobState.COMPLETED:
            progress = 100
            content = task.get("content")
            url = content.get("video_url") if isinstance(content, dict) else None
            usage = self.usage_of(task, job_data)
            if isinstance(url, str) and url.startswith(("https://", "http://")):
                outputs = (url,)
            else:
                state = JobState.FAILED
                error_code = "output_expired"
                error_message = (
                    "BytePlus clears a task's video URL 24 hours after it finishes, and this one is gone "
                    "before MediaRouter copied it. No charge."
                )
        elif raw.lower() == "expired":
            error_code = "expired"
            error_message = "BytePlus expired the task before it finished (execution_expires_after elapsed). No charge."
        elif state is JobState.FAILED:
            upstream, message, _param = error_fields({"error": task.get("error")})
            error_code, _permanent = classify(upstream, None)
            text = self._scrub(message) or "BytePlus reported the task as failed without a reason."
            error_message = f"{text} ({upstream})" if upstream else text
            if error_code == "model_not_open":
                error_message = f"{error_message} {MODEL_NOT_OPEN_HINT}"
        return JobStatus(
            state=state,
            progress=progress,
            raw_status=raw,
            output_urls=outputs,
            error_code=error_code,
            error_message=error_message,
            usage=usage,
        )

    def _download_error(self, response: requests.Response) -> ProviderError:
        status = response.status_code
        if status in (403, 404, 410):
            return ProviderError(
                f"BytePlus' video URL no longer works (HTTP {status}): URLs are cleared 24 hours after the "
                "task. No charge.",
                code="output_expired",
                permanent=True,
                status_code=status,
            )
        return http.download_failed(
            status, response.headers, f"Downloading BytePlus' output failed with HTTP {status}."
        )

    def _stream(self, url: str) -> Download:
        return http.stream_download(
            url,
            max_bytes=http.max_download_bytes(),
            allowed_private_hosts=self._private_hosts(),
            on_error=self._download_error,
        )

    def _fresh_url(self, job_id: str, job_data: Mapping[str, Any] | None) -> str:
        job = self.status(job_id, job_data=job_data)
        if job.error_code == "output_expired":
            raise ProviderError(job.error_message or "Output expired.", code="output_expired", permanent=True)
        if job.state is not JobState.COMPLETED or not job.output_urls:
            raise ProviderError(
                f"BytePlus task {job_id} is {job.raw_status or 'not finished'}; nothing to download yet.",
                code="not_ready",
            )
        return job.output_urls[0]

    def download(
        self, job_id: str, *, url: str | None = None, variant: str = "video", job_data: Mapping[str, Any] | None = None
    ) -> Download:
        if variant != "video":
            raise ProviderError("BytePlus returns no thumbnails.", code="unsupported", permanent=True)
        if url is None:
            return self._stream(self._fresh_url(job_id, job_data))
        try:
            return self._stream(url)
        except ProviderError as exc:
            if exc.code != "output_expired":
                raise
        # the stored URL died: the task may still hold a working one (it is re-read once)
        fresh = self._fresh_url(job_id, job_data)
        return self._stream(fresh)

    def cancel(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> None:
        """Cancel a task that is still ``queued``. ``DELETE`` on a finished task would delete its
        record (and its video) and a running task cannot be cancelled (§5), so the task is read
        first and DELETE is sent only while it is queued."""
        try:
            task = self._task(job_id)
        except ProviderError as exc:
            if exc.status_code == 404:
                return  # gone already (deleted, or older than 7 days): nothing to cancel
            raise
        raw = str(task.get("status") or "").lower()
        if raw in ("cancelled", "canceled"):
            return
        if raw == "queued":
            self._call("DELETE", f"{TASKS}/{_q(job_id)}", allow_empty=True)
            return
        if raw == "running":
            raise ProviderError(
                "BytePlus cannot cancel a task that is already running; it will finish (and bill).",
                code="not_cancelable",
                permanent=True,
            )
        raise ProviderError(
            f"BytePlus task {job_id} is already {raw or 'finished'}; it is left as it is.",
            code="invalid_state",
            permanent=True,
        )

    # --- callbacks ----------------------------------------------------------------------------

    def verify_callback(
        self, *, headers: Mapping[str, str], body: bytes, secret: str | None = None
    ) -> CallbackDelivery:
        """Ark signs nothing (§6): the unguessable token in the callback URL is the proof. This only
        reads the task id from the body (the same object as a GET); the engine re-reads the task."""
        try:
            task = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise CallbackRejected("BytePlus callback body is not JSON.") from None
        task_id = task.get("id") if isinstance(task, dict) else None
        if not isinstance(task_id, str) or not task_id.strip():
            raise CallbackRejected("BytePlus callback body names no task.")
        return CallbackDelivery(job_id=task_id.strip())
