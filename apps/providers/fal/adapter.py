"""fal.ai queue API adapter (``https://queue.fal.run``), with a per-model input mapping.

Wire contract: ``reference/providers/fal.md``. The queue protocol is the same for every model; the
input JSON differs per endpoint and is built from the catalog entry's ``extra`` (see
``apps/providers/fal/catalog.py``).

- Auth: ``Authorization: Key <key_id>:<key_secret>``.
- Submit ``POST {FAL_BASE_URL}/{endpoint_id}`` with the full endpoint id (sub-path included), and
  ``?fal_webhook=<url>`` when the engine asked for a callback. The answer's ``status_url``,
  ``response_url`` and ``cancel_url`` drop the sub-path (quirk 1): they are stored as the job's
  data and used as given, never rebuilt, and only when their origin is the configured queue host.
- ``X-Fal-Object-Lifecycle-Preference`` asks fal to delete the output after
  :data:`OUTPUT_LIFETIME_SECONDS` (§10): long enough for the engine's copy, short enough that
  tenant media does not linger on a public CDN.
- Status: ``IN_QUEUE`` / ``IN_PROGRESS`` (HTTP 202) and ``COMPLETED`` (200). ``COMPLETED`` means
  finished, not succeeded (quirk 2): an ``error`` on the status, or an error body from the result
  URL, fails the job with fal's reason. The result's ``x-fal-billable-units`` header and the
  status ``metrics`` go into ``JobStatus.usage``.
- Errors: ``detail`` (a list of validation items or a string), ``error_type`` (body or
  ``X-Fal-Error-Type``), the retry hint (``X-Fal-Retryable`` or ``X-Fal-Needs-Retry``) and the
  ingress rule (a 5xx without ``x-fal-request-id`` never reached fal) decide permanent vs
  transient, per §8.
- Callbacks: fal signs every webhook with ED25519 over
  ``request_id\\nuser_id\\ntimestamp\\nsha256hex(body)`` (§11); :meth:`FalProvider.verify_callback`
  checks it against the JWKS at ``FAL_JWKS_URL`` (cached for 24 h, refetched once when no cached
  key verifies, at most once a minute).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from apps.providers import catalog, http
from apps.providers.base import (
    CallbackDelivery,
    CallbackRejected,
    Credentials,
    Download,
    GenerationSpec,
    JobState,
    JobStatus,
    KeyField,
    PriceQuote,
    ProviderError,
    ProviderSetting,
    SubmittedJob,
    VideoProvider,
)
from apps.providers.modelinfo import ModelInfo

DEFAULT_API_BASE_URL = "https://api.fal.ai"
DEFAULT_JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"
OUTPUT_LIFETIME_SECONDS = 86400  # §10: "set a short lifecycle (e.g. 86400 s) on submit"
VALIDATION_ENDPOINT = "fal-ai/veo3.1"  # any endpoint id: the pricing call only proves the key
WEBHOOK_TOLERANCE_SECONDS = 300  # §11: |now - timestamp| <= 300 s
JWKS_MAX_AGE_SECONDS = 24 * 3600  # §11: cache the keys for at most 24 h
JWKS_MIN_REFRESH_SECONDS = 60.0  # a refetch on an unknown key at most this often (forged floods)
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
_MESSAGE_LIMIT = 500
_URL_FIELDS = ("status_url", "response_url", "cancel_url")
_WEBHOOK_HEADERS = (
    "x-fal-webhook-request-id",
    "x-fal-webhook-user-id",
    "x-fal-webhook-timestamp",
    "x-fal-webhook-signature",
)

_STATES = {
    "IN_QUEUE": JobState.QUEUED,
    "IN_PROGRESS": JobState.IN_PROGRESS,
    "COMPLETED": JobState.COMPLETED,
    # not in the official SDKs, but listed by a third-party schema (§4)
    "FAILED": JobState.FAILED,
    "CANCELED": JobState.CANCELED,
    "CANCELLED": JobState.CANCELED,
}

# error_type -> (our code, permanent), §8b
_ERROR_TYPES: dict[str, tuple[str, bool]] = {
    "request_timeout": ("timeout", False),
    "startup_timeout": ("server_error", False),
    "runner_scheduling_failure": ("server_error", False),
    "runner_connection_timeout": ("server_error", False),
    "runner_disconnected": ("server_error", False),
    "runner_connection_refused": ("server_error", False),
    "runner_connection_error": ("server_error", False),
    "runner_incomplete_response": ("server_error", False),
    "runner_server_error": ("server_error", False),
    "internal_error": ("server_error", False),
    "client_disconnected": ("request_canceled", True),
    "client_cancelled": ("request_canceled", True),
    "bad_request": ("invalid_request", True),
}
_MODERATION_TYPES = ("content_policy_violation", "content_policy", "moderation")


def _q(value: str) -> str:
    return quote(value, safe="")


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _hint(headers: Mapping[str, str]) -> bool | None:
    """fal's retry hint: ``X-Fal-Retryable`` (older docs) or ``X-Fal-Needs-Retry`` (quirk 9)."""
    for name in ("X-Fal-Needs-Retry", "X-Fal-Retryable"):
        value = (headers.get(name) or "").strip().lower()
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no"):
            return False
    return None


def _detail_items(detail: Any) -> list[dict[str, Any]]:
    return [item for item in detail if isinstance(item, dict)] if isinstance(detail, list) else []


def _describe_detail(detail: Any) -> str:
    """A person's reading of ``detail``: a string, or ``body.prompt: field required; ...``."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
                msg = str(item.get("msg") or item.get("type") or "invalid")
                parts.append(f"{where}: {msg}" if where else msg)
            elif isinstance(item, str):
                parts.append(item)
        return "; ".join(parts)
    if isinstance(detail, dict):
        return str(detail.get("msg") or detail.get("message") or "")
    return ""


class JwksCache:
    """fal's webhook verification keys, per JWKS URL set, shared by every adapter in the process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        # urls -> (fetched at, keys)
        self._entries: dict[tuple[str, ...], tuple[float, tuple[Ed25519PublicKey, ...]]] = {}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def keys(self, urls: tuple[str, ...], *, refresh: bool = False) -> tuple[Ed25519PublicKey, ...] | None:
        """The cached keys, fetched when absent or older than 24 h. ``refresh``: fetch again (a
        key may have rotated) unless the last fetch is under a minute old; returns None then."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(urls)
        if entry is not None:
            age = now - entry[0]
            if refresh and age < JWKS_MIN_REFRESH_SECONDS:
                return None
            if not refresh and age < JWKS_MAX_AGE_SECONDS:
                return entry[1]
        keys = _fetch_jwks(urls)
        with self._lock:
            self._entries[urls] = (self.clock(), keys)
        return keys


JWKS = JwksCache()


def _fetch_jwks(urls: tuple[str, ...]) -> tuple[Ed25519PublicKey, ...]:
    """The Ed25519 keys of every JWKS URL that answers (§11: several keys, both hosts)."""
    keys: list[Ed25519PublicKey] = []
    reasons = []
    for url in urls:
        try:
            response = http.request("GET", url, headers={"Accept": "application/json"})
        except ProviderError as exc:
            reasons.append(exc.message)
            continue
        body = http.read_json(response) if response.status_code == 200 else None
        entries = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            reasons.append(f"{http.redacted(url)} answered HTTP {response.status_code} without a key set")
            continue
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
                continue
            try:
                keys.append(Ed25519PublicKey.from_public_bytes(_b64url(str(entry.get("x") or ""))))
            except (ValueError, binascii.Error):
                continue
    if not keys:
        raise CallbackRejected("fal's webhook keys could not be fetched: " + ("; ".join(reasons) or "no Ed25519 key"))
    return tuple(keys)


# endpoint id -> (expires at, (unit price, unit) or None), from fal's pricing API
_UNIT_PRICES: dict[str, tuple[float, tuple[Decimal, str] | None]] = {}


class FalProvider(VideoProvider):
    slug = "fal"
    label = "fal.ai"
    supports_cancel = True
    supports_callbacks = True
    supports_price_lookup = True
    callback_verification = "signature"
    supplier_kind = "aggregator"
    key_fields = (
        KeyField(
            "api_key",
            "API key",
            help="A fal key in its key_id:key_secret form (fal dashboard, Keys).",
            min_length=8,
            max_length=500,
        ),
    )
    key_shapes = (("api_key",),)
    default_base_url = "https://queue.fal.run"
    extra_settings = (
        ProviderSetting(
            "API_BASE_URL",
            DEFAULT_API_BASE_URL,
            help="fal's platform API (key validation). Left at its default while FAL_BASE_URL points at "
            "another host (a proxy, the emulator), that host is asked instead.",
        ),
        ProviderSetting(
            "JWKS_URL",
            DEFAULT_JWKS_URL,
            help="fal's webhook verification keys; several URLs may be given, separated by commas.",
        ),
    )

    @classmethod
    def check_credentials(cls, credentials: Credentials) -> dict[str, str]:
        key = credentials.api_key or ""
        key_id, sep, secret = key.partition(":")
        if not sep or not key_id.strip() or not secret.strip():
            return {"api_key": "A fal key has the form key_id:key_secret (two parts joined by a colon)."}
        return {}

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.credentials.api_key}", "Accept": "application/json"}

    def _secrets(self) -> tuple[str | None, ...]:
        key = self.credentials.api_key or ""
        return (key, key.partition(":")[2] or None)

    def _scrubbed(self, text: str) -> str:
        return http.scrub(text, *self._secrets())[:_MESSAGE_LIMIT]

    def _error(self, response: requests.Response, *, creating: bool = False, what: str = "") -> ProviderError:
        """One fal error answer as a ProviderError (§8)."""
        status = response.status_code
        headers = response.headers
        body = http.read_json(response)
        detail = body.get("detail") if isinstance(body, dict) else None
        error_type = ""
        if isinstance(body, dict) and isinstance(body.get("error_type"), str):
            error_type = body["error_type"]
        error_type = (error_type or headers.get("X-Fal-Error-Type") or "").strip()[:60]
        item_types = [str(item.get("type") or "") for item in _detail_items(detail)]
        text = self._scrubbed(_describe_detail(detail))
        reached_fal = bool(headers.get("x-fal-request-id"))
        hint = _hint(headers)

        if status == 401:
            code, permanent, say = "invalid_api_key", True, "fal rejected the API key"
        elif status == 403:
            code, permanent, say = "permission_denied", True, "This fal key may not use this endpoint"
        elif any(t.startswith(_MODERATION_TYPES) for t in [*item_types, error_type]):
            code, permanent, say = "content_policy", True, "fal's content policy refused the input"
        elif status == 422:
            code, permanent, say = "invalid_request", True, "The fal model refused the input"
        elif status == 404:
            if creating:
                code, permanent, say = "model_not_available", True, "fal has no such model endpoint"
            else:
                code, permanent, say = "not_found", True, "fal does not know this request"
        elif error_type in _ERROR_TYPES:
            code, permanent = _ERROR_TYPES[error_type]
            say = f"fal reported {error_type}"
            timeout_type = (headers.get("X-Fal-Request-Timeout-Type") or "").strip().lower()
            if error_type == "request_timeout" and timeout_type == "user":
                permanent, say = True, "fal stopped the request at its deadline"
        elif status == 429:
            code, permanent, say = "rate_limited", False, "fal is limiting requests"
        elif status in (408, 409):
            code, permanent, say = "server_error", False, "fal asked to try again"
        elif status >= 500:
            code, permanent, say = "server_error", False, "fal is unavailable or had a server error"
        elif 400 <= status < 500:
            code, permanent, say = "invalid_request", True, "fal refused the request"
        else:
            code, permanent, say = "bad_response", False, "Unexpected answer from fal"
        # the retry hint overrides the class, except for credentials, validation and unknown endpoints
        if hint is not None and status not in (401, 403, 404, 422) and code != "content_policy":
            permanent = not hint
        # a 5xx that carries fal's request id reached fal: a submit may have created a job
        uncertain = creating and not permanent and status >= 500 and reached_fal
        label = f"HTTP {status}" + (f", {error_type}" if error_type else "")
        return ProviderError(
            self._scrubbed(f"{say}{what} ({label})" + (f": {text}" if text else ".")),
            code=code,
            permanent=permanent,
            retry_after=None if permanent else http.parse_retry_after(headers),
            status_code=status,
            uncertain=uncertain,
        )

    def _check_stored_url(self, url: Any, name: str) -> str:
        """A URL fal handed back, refused unless it is on the configured queue host (never send the
        key elsewhere)."""
        if not isinstance(url, str) or not url:
            raise ProviderError(
                f"The fal job has no stored {name}; it cannot be followed.", code="bad_job_data", permanent=True
            )
        ours, theirs = urlsplit(self.base_url), urlsplit(url)
        if theirs.scheme != ours.scheme or http.origin(url) != http.origin(self.base_url):
            raise ProviderError(
                f"Refusing to call fal's {name} {http.redacted(url)}: it is not on the queue host "
                f"{http.redacted(self.base_url)}.",
                code="unsafe_url",
                permanent=True,
            )
        return url

    def _job_url(self, job_data: Mapping[str, Any] | None, name: str) -> str:
        return self._check_stored_url((job_data or {}).get(name), name)

    # --- input mapping --------------------------------------------------------------------------

    def _image_value(self, model: ModelInfo, spec: GenerationSpec) -> str:
        image = spec.image
        assert image is not None
        if image.url:
            return image.url
        if not model.extra.get("data_uri"):
            raise ProviderError(
                f"{model.label} needs the input image as a public https URL (fal cannot take it inline for "
                "this model); give an image URL instead of an upload.",
                code="invalid_request",
                permanent=True,
            )
        if not image.data:
            raise self._refuse("The input image is empty.")
        content_type = (image.content_type or "").lower()
        if content_type not in IMAGE_TYPES:
            raise self._refuse(f"fal accepts JPEG, PNG or WebP images, not {content_type or 'an unknown type'}.")
        return f"data:{content_type};base64,{base64.b64encode(image.data).decode('ascii')}"

    def _check_spec(self, model: ModelInfo, spec: GenerationSpec) -> None:
        """Everything the model cannot do, refused before any request."""
        errors = catalog.validate_request(
            model=model,
            seconds=spec.seconds,
            size=spec.size,
            has_image=spec.image is not None,
            seed=spec.seed,
            negative_prompt=spec.negative_prompt,
        )
        if errors:
            raise self._refuse(" ".join(errors.values()))
        extra = model.extra
        if (spec.seconds, spec.size) in tuple(tuple(pair) for pair in extra.get("unavailable", ())):
            raise self._refuse(f"{model.label} cannot make {spec.seconds} s at {spec.size}.")
        i2v_seconds = extra.get("i2v_seconds")
        if spec.image is not None and i2v_seconds and spec.seconds not in i2v_seconds:
            allowed = ", ".join(str(s) for s in i2v_seconds)
            raise self._refuse(f"{model.label} makes {allowed} s videos from an image.")
        seed_max = extra.get("seed_max")
        if spec.seed is not None and seed_max is not None and spec.seed > seed_max:
            raise self._refuse(f"{model.label} takes seeds from 0 to {seed_max}.")
        if spec.audio is not None and not extra.get("audio_field"):
            if spec.audio and not model.has_audio:
                raise self._refuse(f"{model.label} makes silent videos; it cannot add audio.")
            if not spec.audio and model.has_audio:
                raise self._refuse(f"{model.label} always generates audio; it cannot be switched off.")
        if not spec.prompt.strip() and spec.image is None:
            raise self._refuse("A prompt is required.")

    def build_request(self, spec: GenerationSpec) -> tuple[str, dict[str, Any]]:
        """``(endpoint id, input JSON)`` for ``spec``: the per-model mapping, with every refusal
        made before anything is sent."""
        model = self._catalog_model(spec)
        if model is None:
            raise ProviderError(
                f"fal has no mapping for model {spec.model!r} in MediaRouter's catalog.",
                code="model_not_available",
                permanent=True,
            )
        self._check_spec(model, spec)
        extra = model.extra
        mode = "i2v" if spec.image is not None else "t2v"
        size = extra["sizes"][spec.size]
        endpoint = str(extra["endpoints"][mode]).replace("{tier}", size.get("tier") or "")

        body: dict[str, Any] = {}
        if spec.prompt:
            body["prompt"] = spec.prompt
        duration = extra.get("duration")
        if duration and size.get("tier") not in extra.get("no_duration_tiers", ()):
            body["duration"] = {
                "suffix_s": f"{spec.seconds}s",
                "string": str(spec.seconds),
                "integer": int(spec.seconds),
            }[duration]
        if size.get("resolution"):
            body["resolution"] = size["resolution"]
        if mode in extra.get("aspect_ratio_modes", ()) and size.get("aspect_ratio"):
            body["aspect_ratio"] = size["aspect_ratio"]
        audio_field = extra.get("audio_field")
        if audio_field:
            # always explicit: the output carries what the estimate was priced for
            body[audio_field] = model.audio_for(spec.audio)
        if spec.negative_prompt:
            body["negative_prompt"] = spec.negative_prompt
        if spec.seed is not None:
            body["seed"] = int(spec.seed)
        if spec.image is not None:
            body[str(extra["image_field"])] = self._image_value(model, spec)
        body.update(dict(extra.get("fixed", {}).get(mode, {})))
        return endpoint, body

    # --- interface ----------------------------------------------------------------------------

    def _api_base_url(self) -> str:
        api = (self.options.get("API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/")
        if api == DEFAULT_API_BASE_URL and self.base_url != self.default_base_url:
            return self.base_url  # one proxy (or the emulator) in front of every fal host
        return api

    def unit_price(self, endpoint_id: str) -> tuple[Decimal, str] | None:
        """fal's own price of one billed unit of an endpoint, and the unit (``seconds``, ``videos``…),
        from the pricing API; cached per endpoint for an hour; None when fal does not say."""
        cached = _UNIT_PRICES.get(endpoint_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        response = http.request(
            "GET",
            f"{self._api_base_url()}/v1/models/pricing",
            headers=self._headers(),
            params={"endpoint_id": endpoint_id},
        )
        found = None
        body = http.read_json(response) if 200 <= response.status_code < 300 else None
        for price in (body or {}).get("prices") or [] if isinstance(body, dict) else []:
            if isinstance(price, dict) and price.get("endpoint_id") == endpoint_id:
                try:
                    found = (Decimal(str(price["unit_price"])), str(price.get("unit") or ""))
                except (KeyError, ArithmeticError, ValueError):
                    found = None
        _UNIT_PRICES[endpoint_id] = (time.monotonic() + 3600, found)
        return found

    def _reported_cost(self, units: str, endpoint_id: str | None) -> dict[str, str]:
        """``cost_usd`` = billed units x fal's unit price, where both are known (never raises: the
        figure is for reconciliation, not for the job)."""
        if not endpoint_id:
            return {}
        try:
            count = Decimal(units)
            price = self.unit_price(endpoint_id)
        except (ArithmeticError, ValueError, ProviderError):
            return {}
        if price is None:
            return {}
        return {
            "unit_price": str(price[0]),
            "unit": price[1],
            "cost_usd": str((count * price[0]).quantize(Decimal("0.0001"))),
        }

    def fetch_prices(self, models: Sequence[ModelInfo]) -> list[PriceQuote]:
        """fal's price list mapped onto these entries' tables (``apps/providers/fal/pricing.py``)."""
        from apps.providers.fal import pricing

        return pricing.fetch_prices(self, models)

    def validate_key(self) -> None:
        """``GET {FAL_API_BASE_URL}/v1/models/pricing?endpoint_id=…``: cheap and authenticated."""
        api = self._api_base_url()
        response = http.request(
            "GET", f"{api}/v1/models/pricing", headers=self._headers(), params={"endpoint_id": VALIDATION_ENDPOINT}
        )
        if not 200 <= response.status_code < 300:
            raise self._error(response)

    def submit(self, spec: GenerationSpec) -> SubmittedJob:
        endpoint, body = self.build_request(spec)
        headers = {
            **self._headers(),
            "Content-Type": "application/json",
            "X-Fal-Object-Lifecycle-Preference": json.dumps({"expiration_duration_seconds": OUTPUT_LIFETIME_SECONDS}),
        }
        params = {"fal_webhook": spec.callback_url} if spec.callback_url else None
        url = f"{self.base_url}/{'/'.join(_q(part) for part in endpoint.split('/'))}"
        response = http.request("POST", url, headers=headers, json=body, params=params)
        if not 200 <= response.status_code < 300:
            raise self._error(response, creating=True)
        answer = http.read_json(response)
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError(
                "fal accepted the request but returned no request_id.", code="bad_response", uncertain=True
            )
        try:
            data = {name: self._check_stored_url(answer.get(name), name) for name in _URL_FIELDS}
        except ProviderError as exc:
            raise ProviderError(
                f"fal queued request {request_id} but its URLs cannot be used: {exc.message}",
                code="bad_response",
                uncertain=True,
            ) from None
        data["endpoint_id"] = endpoint  # for the unit price of what fal bills (cost reconciliation)
        return SubmittedJob(job_id=request_id, data=data)

    def status(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> JobStatus:
        response = http.request("GET", self._job_url(job_data, "status_url"), headers=self._headers())
        if response.status_code not in (200, 202):
            raise self._error(response, what=f" for request {job_id}")
        body = http.read_json(response)
        if not isinstance(body, dict):
            raise ProviderError("fal answered the status with a body that is not JSON.", code="bad_response")
        raw = str(body.get("status") or "")
        state = _STATES.get(raw.upper(), JobState.IN_PROGRESS)  # unknown: poll again, the deadline bounds it
        usage: dict[str, Any] = {"request_id": job_id}
        metrics = body.get("metrics")
        if isinstance(metrics, dict) and isinstance(metrics.get("inference_time"), int | float):
            usage["inference_time"] = metrics["inference_time"]
        if state is JobState.QUEUED:
            return JobStatus(state=state, progress=0, raw_status=raw, usage=usage)
        if state is JobState.IN_PROGRESS:
            return JobStatus(state=state, raw_status=raw, usage=usage)
        if state is not JobState.COMPLETED:
            return JobStatus(
                state=state,
                raw_status=raw,
                error_code="generation_failed" if state is JobState.FAILED else "canceled",
                error_message=self._scrubbed(str(body.get("error") or f"fal reported the request as {raw}.")),
                usage=usage,
            )
        if body.get("error"):
            error_type = str(body.get("error_type") or "")
            if error_type == "client_cancelled":  # our cancel took it out of the queue or the runner
                return JobStatus(
                    state=JobState.CANCELED,
                    raw_status=raw,
                    error_code="canceled",
                    error_message=self._scrubbed(f"fal canceled the request: {body['error']}"),
                    usage=usage,
                )
            code = _failure_code(error_type)
            message = f"fal finished the request with an error ({error_type or 'no type'}): {body['error']}"
            if code == "generation_failed":
                # the result URL answers the model's own error body (quirk 2): a moderation refusal
                # or a validation error is told apart only there
                detail = self._result_error(job_data)
                if detail is not None:
                    if detail.code in ("content_policy", "invalid_request"):
                        code = detail.code
                    message = f"{message}. {detail.message}"
            return JobStatus(
                state=JobState.FAILED,
                raw_status=raw,
                error_code=code,
                error_message=self._scrubbed(message),
                usage=usage,
            )
        return self._result(job_id, job_data, raw, usage)

    def _result_error(self, job_data: Mapping[str, Any] | None) -> ProviderError | None:
        """The error body of a failed request's result, or None when there is none to read."""
        try:
            response = http.request("GET", self._job_url(job_data, "response_url"), headers=self._headers())
        except ProviderError:
            return None
        if 200 <= response.status_code < 300:
            return None
        return self._error(response)

    def _result(self, job_id: str, job_data: Mapping[str, Any] | None, raw: str, usage: dict[str, Any]) -> JobStatus:
        """The output of a ``COMPLETED`` request; an error body here fails the job (quirk 2)."""
        response = http.request("GET", self._job_url(job_data, "response_url"), headers=self._headers())
        units = (response.headers.get("x-fal-billable-units") or "").strip()
        if units:
            usage["billable_units"] = units
            usage.update(self._reported_cost(units, (job_data or {}).get("endpoint_id")))
        if not 200 <= response.status_code < 300:
            error = self._error(response, what=f" for request {job_id}")
            transient_ingress = (
                response.status_code >= 500 and not response.headers.get("x-fal-request-id") and not error.permanent
            )
            if error.is_auth_error or transient_ingress or response.status_code in (408, 429):
                raise error  # the key, or the way to fal, failed: not the job
            return JobStatus(
                state=JobState.FAILED,
                raw_status=raw,
                error_code=error.code if error.code in ("content_policy", "invalid_request") else "generation_failed",
                error_message=error.message,
                usage=usage,
            )
        body = http.read_json(response)
        video = body.get("video") if isinstance(body, dict) else None
        url = video.get("url") if isinstance(video, dict) else None
        if not isinstance(url, str) or not url:
            return JobStatus(
                state=JobState.FAILED,
                raw_status=raw,
                error_code="no_output",
                error_message="fal finished the request but its result has no video URL.",
                usage=usage,
            )
        return JobStatus(state=JobState.COMPLETED, progress=100, raw_status=raw, output_urls=(url,), usage=usage)

    def download(
        self, job_id: str, *, url: str | None = None, variant: str = "video", job_data: Mapping[str, Any] | None = None
    ) -> Download:
        if variant != "video":
            raise ProviderError("fal returns no thumbnails.", code="unsupported", permanent=True)
        if url is None:
            job = self.status(job_id, job_data=job_data)
            if job.state is not JobState.COMPLETED or not job.output_urls:
                raise ProviderError(
                    f"fal request {job_id} is {job.raw_status or 'not finished'}; nothing to download yet.",
                    code="not_ready",
                )
            url = job.output_urls[0]

        def on_error(response: requests.Response) -> ProviderError:
            status = response.status_code
            if status in (404, 410):
                return ProviderError(
                    f"fal deleted the output of request {job_id} before it was copied (HTTP {status}).",
                    code="output_expired",
                    permanent=True,
                    status_code=status,
                )
            return http.download_failed(
                status, response.headers, f"Download of fal request {job_id}'s video failed with HTTP {status}."
            )

        return http.stream_download(
            url, max_bytes=http.max_download_bytes(), allowed_private_hosts=self._private_hosts(), on_error=on_error
        )

    def cancel(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> None:
        """``PUT {cancel_url}``. ``OK`` (left the queue) and ``CANCELLATION_REQUESTED`` (the runner was
        told; it may still finish, and bill) are accepted; ``NOT_FOUND`` means nothing is running.
        ``ALREADY_COMPLETED`` is refused: the video exists and has been billed."""
        response = http.request("PUT", self._job_url(job_data, "cancel_url"), headers=self._headers())
        body = http.read_json(response)
        answer = str(body.get("status") or "").upper() if isinstance(body, dict) else ""
        if answer in ("OK", "CANCELLATION_REQUESTED", "NOT_FOUND"):
            return
        if answer == "ALREADY_COMPLETED":
            raise ProviderError(
                f"fal request {job_id} has already completed; it cannot be canceled.",
                code="already_completed",
                permanent=True,
                status_code=response.status_code,
            )
        if not 200 <= response.status_code < 300:
            raise self._error(response, what=f" for request {job_id}")
        raise ProviderError(
            f"fal answered the cancel of request {job_id} with an unknown status {answer[:40]!r}.",
            code="bad_response",
            status_code=response.status_code,
        )

    # --- callbacks ----------------------------------------------------------------------------

    def _jwks_urls(self) -> tuple[str, ...]:
        value = self.options.get("JWKS_URL") or DEFAULT_JWKS_URL
        return tuple(part.strip() for part in value.replace(" ", ",").split(",") if part.strip())

    def verify_callback(
        self, *, headers: Mapping[str, str], body: bytes, secret: str | None = None
    ) -> CallbackDelivery:
        """Check fal's ED25519 webhook signature (§11); the delivery names the request it is for."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        values = [lowered.get(name, "").strip() for name in _WEBHOOK_HEADERS]
        if not all(values):
            raise CallbackRejected("The fal webhook lacks a signature header.")
        request_id, user_id, timestamp, signature_hex = values
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise CallbackRejected("The fal webhook timestamp is not a number.") from None
        if abs(time.time() - sent_at) > WEBHOOK_TOLERANCE_SECONDS:
            raise CallbackRejected("The fal webhook timestamp is outside the 5-minute tolerance.")
        try:
            signature = bytes.fromhex(signature_hex)
        except ValueError:
            raise CallbackRejected("The fal webhook signature is not hex.") from None
        if len(signature) != 64:
            raise CallbackRejected("The fal webhook signature is not 64 bytes.")
        message = "\n".join((request_id, user_id, timestamp, hashlib.sha256(body).hexdigest())).encode()

        urls = self._jwks_urls()
        genuine = _verifies(JWKS.keys(urls), signature, message)
        if not genuine:  # a rotated key: fetch the set again (at most once a minute)
            genuine = _verifies(JWKS.keys(urls, refresh=True), signature, message)
        if not genuine:
            raise CallbackRejected("The fal webhook signature does not verify with fal's keys.")
        try:
            payload = json.loads(body)
        except ValueError:
            raise CallbackRejected("The fal webhook body is not JSON.") from None
        body_id = payload.get("request_id") if isinstance(payload, dict) else None
        if body_id != request_id:
            raise CallbackRejected("The fal webhook body names another request than its signature.")
        return CallbackDelivery(job_id=request_id)


def _failure_code(error_type: str) -> str:
    """The generation's error code for a request fal finished with an error."""
    if error_type.startswith(_MODERATION_TYPES):
        return "content_policy"
    return "invalid_request" if error_type == "bad_request" else "generation_failed"


def _verifies(keys: Iterable[Ed25519PublicKey] | None, signature: bytes, message: bytes) -> bool:
    for key in keys or ():
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False
