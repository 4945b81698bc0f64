"""Google Gemini API adapter: Veo through ``predictLongRunning`` and Gemini Omni through the
Interactions API (a direct supplier).

Wire contract: ``reference/providers/veo.md`` (the Gemini API parts, §1, §2, §4-§9); MediaRouter's
note: ``docs/providers/gemini.md``.

- **Key.** One AI Studio ``api_key``, always sent as the ``x-goog-api-key`` header (never ``?key=``:
  URLs end up in logs). ``GEMINI_BASE_URL`` defaults to ``https://generativelanguage.googleapis.com``.
- **Which Veo models a key may use.** Google retires Gemini-API video ids without notice (§0,
  quirk 7), so :meth:`available_models` reads ``GET /v1beta/models`` (all pages) and keeps the ids
  whose ``supportedGenerationMethods`` lists ``predictLongRunning``; the answer is cached in-process
  per key hash for :data:`MODELS_CACHE_SECONDS`. :meth:`submit` sends the first of the catalog
  entry's ``upstream_ids`` the key lists, and refuses the request with a permanent
  ``model_not_available`` (which lets the router fail over to fal or Replicate) when none is. A
  ``404 NOT_FOUND`` on a create also means "retired": it drops the cached listing.
- **Veo** (catalog ``extra["api"] == "veo"``): ``POST /v1beta/models/{m}:predictLongRunning`` ->
  ``{"name": "models/…/operations/<id>"}`` (the job id); poll ``GET /v1beta/{name}``. ``done`` with
  ``response.generateVideoResponse.generatedSamples[].video.uri`` is completed (or inline
  ``encodedVideo``); ``done`` with ``raiMediaFilteredReasons`` and no samples is a failure
  (``content_policy``, not billed); ``done`` with ``error`` is a failure. No cancel exists. Vertex-only
  fields (``generateAudio``, ``seed``, ``storageUri``, ``gcsUri``) are never sent (quirk 5): audio is
  always on here, and input images go inline as ``bytesBase64Encoded``.
- **Omni** (``"omni"``): ``POST /v1beta/interactions`` with ``background: true`` and the
  ``Api-Revision`` header (``GEMINI_API_REVISION``); poll ``GET /v1beta/interactions/{id}``; cancel
  ``POST /v1beta/interactions/{id}/cancel``. Output ``output_video.uri`` (``delivery: "uri"``) or
  base64 ``data``.
- **Downloads** carry the key only to Google's host or the configured base URL (any other host
  gets no key); ``http.stream_download`` follows redirects without it. Inline videos are decoded
  from a fresh poll.
- **Errors** are ``google.rpc.Status`` envelopes (§5): 401 / ``API_KEY_INVALID`` -> bad key; 403
  ``PERMISSION_DENIED``; 400 ``INVALID_ARGUMENT`` and ``FAILED_PRECONDITION`` permanent; 404 on a
  model -> ``model_not_available``; 429 ``RESOURCE_EXHAUSTED`` transient after ``Retry-After`` or
  ``RetryInfo.retryDelay``; 5xx transient. There is no idempotency key and no lookup, so a create
  that may have reached Google (a timeout, 500 or 504) is ``uncertain``.
- **Callbacks**: none (``supports_callbacks = False``). Gemini's static webhooks are configured per
  project, not per request, and the per-request form is signed with an RS256 JWT whose JWKS URL
  the contract did not capture (§6), so the engine polls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import requests

from apps.providers import http
from apps.providers.base import (
    Download,
    GenerationSpec,
    InputImage,
    JobState,
    JobStatus,
    KeyField,
    ProviderError,
    ProviderSetting,
    SubmittedJob,
    VideoProvider,
)
from apps.providers.modelinfo import IMAGE_TO_VIDEO, ModelInfo

GOOGLE_HOST = "https://generativelanguage.googleapis.com"
DEFAULT_API_REVISION = "2026-05-20"
MODELS_CACHE_SECONDS = 600.0
MODELS_PAGE_SIZE = 1000
MODELS_MAX_PAGES = 20
LONG_RUNNING = "predictLongRunning"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
IMAGE_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_RATE_LIMIT_WAIT = 10.0
_MESSAGE_LIMIT = 500
_OPERATION_NAME = re.compile(r"^models/[A-Za-z0-9._-]+/operations/[A-Za-z0-9._-]+$")
_INTERACTION_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$")

# Interactions API statuses (§4, verbatim) -> MediaRouter states
INTERACTION_STATES: dict[str, JobState] = {
    "queued": JobState.QUEUED,
    "in_progress": JobState.IN_PROGRESS,
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELED,
    "incomplete": JobState.FAILED,
    "budget_exceeded": JobState.FAILED,
    # not expected for video; MediaRouter cannot act on it, so it fails rather than poll to the deadline
    "requires_action": JobState.FAILED,
}
_TERMINAL_REASONS: dict[str, tuple[str, str]] = {
    "incomplete": ("generation_failed", "Gemini Omni stopped before the video was complete"),
    "budget_exceeded": ("budget_exceeded", "Gemini Omni stopped: the project's budget for this request ran out"),
    "requires_action": (
        "requires_action",
        "Gemini Omni asked for an action MediaRouter cannot take (requires_action)",
    ),
}
# gRPC codes of an operation's ``error`` (google.rpc.Code) -> MediaRouter error codes
_GRPC_CODES: dict[int, str] = {
    3: "invalid_request",
    4: "server_error",
    7: "permission_denied",
    8: "rate_limited",
    9: "invalid_request",
    13: "server_error",
    14: "server_error",
}
_GRPC_NAMES: dict[str, int] = {
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}
_SAFETY_WORDS = ("safety", "policy", "blocked", "prohibited", "responsible ai", "rai", "filtered")

_models_cache: dict[str, tuple[float, frozenset[str]]] = {}
_models_lock = threading.Lock()


def clear_models_cache() -> None:
    """Forget every cached model listing (tests; a key that was just changed)."""
    with _models_lock:
        _models_cache.clear()


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def seconds_of(value: object) -> float | None:
    """A ``google.protobuf.Duration`` as JSON (``"38s"``, ``"1.5s"``) or ``{"seconds", "nanos"}``,
    or a plain number, in seconds; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return max(float(value), 0.0)
    if isinstance(value, str):
        match = _DURATION.match(value)
        return float(match.group(1)) if match else None
    if isinstance(value, dict):
        whole, nanos = value.get("seconds", 0), value.get("nanos", 0)
        try:
            return max(float(whole or 0) + float(nanos or 0) / 1e9, 0.0)
        except (TypeError, ValueError):
            return None
    return None


def problem_of(body: object) -> tuple[str, str, str, float | None]:
    """``(status, message, ErrorInfo reason, RetryInfo delay)`` of any body: a
    ``google.rpc.Status`` envelope ``{"error": {...}}``, a bare Status, or anything else."""
    if not isinstance(body, dict):
        return "", "", "", None
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    status = _text(error.get("status")).upper()
    message = _text(error.get("message"))
    reason, delay = "", None
    for detail in _list(error.get("details")):
        if not isinstance(detail, dict):
            continue
        kind = _text(detail.get("@type"))
        if kind.endswith("google.rpc.ErrorInfo") or "reason" in detail:
            reason = reason or _text(detail.get("reason")).upper()
        if kind.endswith("google.rpc.RetryInfo") or "retryDelay" in detail:
            delay = seconds_of(detail.get("retryDelay")) if delay is None else delay
    return status, message, reason, delay


class GeminiProvider(VideoProvider):
    slug = "gemini"
    label = "Google Gemini API"
    supplier_kind = "direct"
    supports_cancel = True  # Omni interactions; a Veo operation has no cancel (refused per job)
    supports_callbacks = False
    default_base_url = GOOGLE_HOST
    key_fields = (
        KeyField(
            "api_key",
            "API key",
            help="A Google AI Studio key (aistudio.google.com, Get API key) of a project with billing; "
            "sent as x-goog-api-key.",
        ),
    )
    key_shapes = (("api_key",),)
    extra_settings = (
        ProviderSetting(
            "API_REVISION",
            DEFAULT_API_REVISION,
            help="The Api-Revision header sent on Interactions API calls (Gemini Omni).",
        ),
    )

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self, *, interactions: bool = False) -> dict[str, str]:
        headers = {"x-goog-api-key": self.credentials.api_key or "", "Content-Type": "application/json"}
        if interactions:
            headers["Api-Revision"] = str(self.options.get("API_REVISION") or DEFAULT_API_REVISION)
        return headers

    def _scrub(self, text: str) -> str:
        return http.scrub(text, self.credentials.api_key)[:_MESSAGE_LIMIT]

    def error_of(
        self, response: requests.Response, body: object, *, creating: bool = False, model: str | None = None
    ) -> ProviderError:
        """Google's error envelope (or any other body) of a non-2xx answer as a ProviderError.
        ``model``: the upstream model id when the path names one (a 404 then means "retired")."""
        status = response.status_code
        grpc, message, reason, delay = problem_of(body)
        detail = self._scrub(message)
        retry_after = http.parse_retry_after(response.headers)
        if retry_after is None:
            retry_after = delay
        uncertain = False
        if reason == "API_KEY_INVALID" or status == 401 or grpc == "UNAUTHENTICATED":
            ours, permanent, what = "invalid_api_key", True, "The Gemini API refused the API key"
        elif status == 403 or grpc == "PERMISSION_DENIED":
            ours, permanent, what = (
                "permission_denied",
                True,
                "The Gemini API key may not do this (the API may be off in its project)",
            )
        elif status == 404 and model:
            ours, permanent = "model_not_available", True
            what = (
                f"{model} is no longer offered to this key by the Gemini API (Google retires video models "
                "without notice); use another supplier of this model"
            )
        elif status == 404:
            ours, permanent, what = "not_found", True, "The Gemini API has no such operation or file"
        elif status == 429 or grpc == "RESOURCE_EXHAUSTED":
            ours, permanent, what = "rate_limited", False, "The Gemini API's quota or rate limit was reached"
            retry_after = DEFAULT_RATE_LIMIT_WAIT if retry_after is None else retry_after
        elif status >= 500 or status == 408:
            ours, permanent, what = "server_error", False, "The Gemini API is unavailable or had a server error"
            # a create may have started a billed job: 503 UNAVAILABLE is refused before work starts
            uncertain = creating and status != 503
        elif grpc == "FAILED_PRECONDITION":
            ours, permanent = "failed_precondition", True
            what = "The Gemini API refused the request for this project (billing off, or region not supported)"
        else:
            ours, permanent, what = "invalid_request", True, "The Gemini API refused the request"
        label = f"HTTP {status}" + (f" {grpc}" if grpc else "")
        return ProviderError(
            f"{what} ({label})" + (f": {detail}" if detail else "."),
            code=ours,
            permanent=permanent,
            retry_after=None if permanent else retry_after,
            status_code=status,
            uncertain=uncertain,
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        creating: bool = False,
        model: str | None = None,
        interactions: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        response = http.request(
            method, f"{self.base_url}{path}", headers=self._headers(interactions=interactions), **kwargs
        )
        body = http.read_json(response)
        if not 200 <= response.status_code < 300:
            raise self.error_of(response, body, creating=creating, model=model)
        if not isinstance(body, dict):
            raise ProviderError(
                f"The Gemini API answered {method} {path.split('?')[0]} with a body that is not a JSON object.",
                code="bad_response",
                uncertain=creating,
                status_code=response.status_code,
            )
        return body

    # --- which models this key may use -------------------------------------------------------

    def _cache_key(self) -> str:
        return hashlib.sha256(f"{self.base_url}\n{self.credentials.api_key or ''}".encode()).hexdigest()

    def list_models(self) -> list[dict[str, Any]]:
        """Every model ``GET /v1beta/models`` lists for this key (all pages)."""
        models: list[dict[str, Any]] = []
        token = ""
        for _page in range(MODELS_MAX_PAGES):
            params: dict[str, Any] = {"pageSize": MODELS_PAGE_SIZE}
            if token:
                params["pageToken"] = token
            body = self._call("GET", "/v1beta/models", params=params)
            models.extend(m for m in _list(body.get("models")) if isinstance(m, dict))
            token = _text(body.get("nextPageToken"))
            if not token:
                break
        return models

    @staticmethod
    def long_running_ids(models: Iterable[Mapping[str, Any]]) -> frozenset[str]:
        """Upstream ids (without ``models/``) whose ``supportedGenerationMethods`` has
        ``predictLongRunning``."""
        found = set()
        for model in models:
            methods = model.get("supportedGenerationMethods")
            name = _text(model.get("name")).removeprefix("models/")
            if name and isinstance(methods, list) and LONG_RUNNING in methods:
                found.add(name)
        return frozenset(found)

    def _refresh_models(self) -> frozenset[str]:
        ids = self.long_running_ids(self.list_models())
        with _models_lock:
            _models_cache[self._cache_key()] = (time.monotonic() + MODELS_CACHE_SECONDS, ids)
        return ids

    def available_models(self) -> set[str]:
        """The upstream model ids this key's ``GET /v1beta/models`` lists with
        ``predictLongRunning`` (cached in-process per key for 10 minutes)."""
        with _models_lock:
            cached = _models_cache.get(self._cache_key())
        if cached is not None and cached[0] > time.monotonic():
            return set(cached[1])
        return set(self._refresh_models())

    def key_details_refresh(self) -> dict[str, str]:
        """The video models this key lists (checked on validation and daily, kept with the key):
        Google retires Gemini-API video ids without notice, so the router hides entries none of
        whose ``upstream_ids`` the key still lists."""
        from datetime import UTC, datetime

        return {
            "video_models": ", ".join(sorted(self.available_models())),
            "models_checked_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        }

    @classmethod
    def offers(cls, model: ModelInfo, key_details: Mapping[str, str]) -> bool:
        listed = key_details.get("video_models")
        upstream = model.extra.get("upstream_ids")
        if listed is None or not upstream:
            # never checked (the submit checks, and refuses a vanished model itself), or not a
            # predictLongRunning model (Gemini Omni runs through the Interactions API)
            return True
        names = {name.strip() for name in listed.split(",") if name.strip()}
        return any(u in names for u in upstream)

    def _forget_models(self) -> None:
        with _models_lock:
            _models_cache.pop(self._cache_key(), None)

    def veo_model_id(self, model: ModelInfo) -> str:
        """The first of the entry's ``upstream_ids`` the key lists, else a permanent refusal."""
        candidates = tuple(model.extra.get("upstream_ids") or (model.provider_model,))  # type: ignore[arg-type]
        listed = self.available_models()
        for candidate in candidates:
            if candidate in listed:
                return candidate
        raise ProviderError(
            f"{model.label} ({', '.join(candidates)}) is no longer offered to this key by the Gemini API "
            "(Google retires video models without notice); use another supplier of this model, such as fal "
            "or Replicate.",
            code="model_not_available",
            permanent=True,
        )

    # --- mapping ----------------------------------------------------------------------------

    def _fields(self, model: ModelInfo, spec: GenerationSpec) -> dict[str, str]:
        """The size's wire fields, after refusing what the model cannot do (before any call)."""
        if not (spec.prompt or "").strip():
            raise self._refuse(f"{model.label} needs a prompt.")
        sizes: Mapping[str, Mapping[str, str]] = model.extra["sizes"]  # type: ignore[assignment]
        if spec.size not in sizes:
            raise self._refuse(f"{model.label} supports sizes {', '.join(sizes)}.")
        if spec.seconds not in model.seconds:
            raise self._refuse(f"{model.label} supports durations of {', '.join(map(str, model.seconds))} seconds.")
        fields = dict(sizes[spec.size])
        limited = _dict(model.extra.get("seconds_by_resolution")).get(fields["resolution"])
        if limited and spec.seconds not in limited:
            allowed = ", ".join(map(str, limited))
            raise self._refuse(f"{model.label} makes {fields['resolution']} videos of {allowed} seconds only.")
        if spec.seed is not None:
            raise self._refuse(f"{model.label} takes no seed on the Gemini API (a seed is Vertex AI only).")
        if spec.negative_prompt and not model.supports_negative_prompt:
            raise self._refuse(f"{model.label} does not take a negative prompt.")
        if spec.audio is False:
            raise self._refuse(f"{model.label} always generates sound on the Gemini API; it cannot be switched off.")
        if spec.image is not None and IMAGE_TO_VIDEO not in model.capabilities:
            raise self._refuse(f"{model.label} does not take an input image.")
        if spec.remix_of:
            raise self._refuse(f"{model.label} cannot remix videos here.")
        return fields

    @staticmethod
    def _content_type(value: str | None) -> str:
        return (value or "").split(";")[0].strip().lower()

    def _image_bytes(self, image: InputImage) -> tuple[bytes, str]:
        """The input image's bytes and type; an image given by URL is fetched (SSRF-checked,
        size-capped, no key), because Veo on the Gemini API takes images inline only."""
        if image.data:
            data, content_type = image.data, self._content_type(image.content_type)
        else:
            url = image.url or ""
            with http.stream_download(url, max_bytes=IMAGE_MAX_BYTES) as download:
                data = b"".join(download.chunks)
                content_type = self._content_type(image.content_type or download.content_type)
        if not data:
            raise self._refuse("The input image is empty.")
        if content_type not in IMAGE_TYPES:
            raise self._refuse(
                f"The Gemini API takes JPEG, PNG or WebP images, not {content_type or 'an unknown type'}."
            )
        if len(data) > IMAGE_MAX_BYTES:
            raise self._refuse("The Gemini API takes input images up to 20 MB.")
        return data, content_type

    def veo_body(self, model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
        fields = self._fields(model, spec)
        instance: dict[str, Any] = {"prompt": spec.prompt}
        if spec.image is not None:
            data, content_type = self._image_bytes(spec.image)
            instance["image"] = {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"), "mimeType": content_type}
        parameters: dict[str, Any] = {
            "sampleCount": 1,
            "durationSeconds": int(spec.seconds),
            "aspectRatio": fields["aspect_ratio"],
            "resolution": fields["resolution"],
        }
        if spec.negative_prompt:
            parameters["negativePrompt"] = spec.negative_prompt
        return {"instances": [instance], "parameters": parameters}

    def omni_body(self, model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
        fields = self._fields(model, spec)
        blocks: list[dict[str, Any]] = [{"type": "text", "text": spec.prompt}]
        image = spec.image
        if image is not None:
            if image.url and not image.data:
                if not image.url.startswith("https://"):
                    raise self._refuse("Gemini Omni fetches input images itself: give an https image URL.")
                block: dict[str, Any] = {"type": "image", "uri": image.url}
                if self._content_type(image.content_type) in IMAGE_TYPES:
                    block["mime_type"] = self._content_type(image.content_type)
            else:
                data, content_type = self._image_bytes(image)
                block = {"type": "image", "data": base64.b64encode(data).decode("ascii"), "mime_type": content_type}
            blocks.append(block)
        return {
            "model": model.provider_model,
            "input": blocks,
            # no duration: Omni 1.1 picks 3-10 s itself (§4); "uri" because inline base64 is only
            # practical below ~4 MB
            "response_format": {
                "type": "video",
                "aspect_ratio": fields["aspect_ratio"],
                "resolution": fields["resolution"],
                "delivery": "uri",
            },
            "background": True,
        }

    # --- interface ----------------------------------------------------------------------------

    def validate_key(self) -> None:
        """``GET /v1beta/models``: checks the key and refreshes the cached video-model listing."""
        self._refresh_models()

    def submit(self, spec: GenerationSpec) -> SubmittedJob:
        model = self._require_catalog_model(spec)
        if model.extra.get("api") == "omni":
            body = self.omni_body(model, spec)
            answer = self._call("POST", "/v1beta/interactions", json=body, creating=True, interactions=True)
            job_id = _text(answer.get("id"))
            if not job_id:
                raise ProviderError(
                    "The Gemini API accepted the interaction but returned no id.", code="bad_response", uncertain=True
                )
            return SubmittedJob(job_id=job_id, data={"api": "omni", "model": model.provider_model})
        body = self.veo_body(model, spec)  # refuse a bad request before the listing call
        upstream = self.veo_model_id(model)
        try:
            answer = self._call(
                "POST", f"/v1beta/models/{quote(upstream)}:{LONG_RUNNING}", json=body, creating=True, model=upstream
            )
        except ProviderError as exc:
            if exc.code == "model_not_available":
                self._forget_models()  # the listing was stale: read it afresh next time
            raise
        name = _text(answer.get("name"))
        if not _OPERATION_NAME.match(name):
            raise ProviderError(
                "The Gemini API accepted the Veo request but returned no operation name.",
                code="bad_response",
                uncertain=True,
            )
        return SubmittedJob(job_id=name, data={"api": "veo", "model": upstream})

    @staticmethod
    def _api(job_id: str, job_data: Mapping[str, Any] | None) -> str:
        api = (job_data or {}).get("api")
        if api in ("veo", "omni"):
            return str(api)
        return "veo" if job_id.startswith("models/") else "omni"

    def status(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> JobStatus:
        if self._api(job_id, job_data) == "omni":
            return self._interaction_status(self._interaction(job_id))
        return self._operation_status(self._operation(job_id))

    # --- Veo operations -------------------------------------------------------------------------

    def _operation(self, name: str) -> dict[str, Any]:
        if not _OPERATION_NAME.match(name):
            raise ProviderError(f"{name!r} is not a Gemini API operation name.", code="not_found", permanent=True)
        return self._call("GET", f"/v1beta/{name}")

    @staticmethod
    def _samples(operation: Mapping[str, Any]) -> tuple[list[str], list[dict[str, Any]], dict[str, Any]]:
        """``(video URIs, inline videos, generateVideoResponse)`` of a done operation."""
        result = _dict(_dict(operation.get("response")).get("generateVideoResponse"))
        uris: list[str] = []
        inline: list[dict[str, Any]] = []
        for sample in _list(result.get("generatedSamples")):
            video = _dict(_dict(sample).get("video"))
            if _text(video.get("uri")):
                uris.append(video["uri"])
            elif _text(video.get("encodedVideo")):
                inline.append(video)
        return uris, inline, result

    def _operation_status(self, operation: Mapping[str, Any]) -> JobStatus:
        if operation.get("done") is not True:
            return JobStatus(state=JobState.IN_PROGRESS, raw_status="running")
        error = operation.get("error")
        if isinstance(error, dict):
            code, message = self._failure_of(error)
            return JobStatus(state=JobState.FAILED, raw_status="error", error_code=code, error_message=message)
        uris, inline, result = self._samples(operation)
        if uris or inline:
            usage: dict[str, Any] = {"videos": len(uris) + len(inline)}
            return JobStatus(
                state=JobState.COMPLETED, progress=100, raw_status="done", output_urls=tuple(uris), usage=usage
            )
        reasons = [self._scrub(r) for r in _list(result.get("raiMediaFilteredReasons")) if isinstance(r, str)]
        if reasons or result.get("raiMediaFilteredCount"):
            why = "; ".join(reasons) or "no reason given"
            return JobStatus(
                state=JobState.FAILED,
                raw_status="filtered",
                error_code="content_policy",
                error_message=f"Google's safety filter blocked this video ({why}). No charge.",
                usage={"raiMediaFilteredCount": result.get("raiMediaFilteredCount") or len(reasons)},
            )
        return JobStatus(
            state=JobState.FAILED,
            raw_status="done",
            error_code="no_output",
            error_message="The Gemini API finished the Veo operation without a video. No charge.",
        )

    def _failure_of(self, error: Mapping[str, Any]) -> tuple[str, str]:
        """``(error_code, error_message)`` of an operation's ``google.rpc.Status``."""
        raw = error.get("code")
        grpc = raw if isinstance(raw, int) and not isinstance(raw, bool) else _GRPC_NAMES.get(_text(raw).upper())
        grpc = grpc if grpc is not None else _GRPC_NAMES.get(_text(error.get("status")).upper())
        detail = self._scrub(_text(error.get("message")))
        if any(word in detail.lower() for word in _SAFETY_WORDS):
            code = "content_policy"
        else:
            code = _GRPC_CODES.get(grpc or 0, "generation_failed")
        text = "The Gemini API could not generate the video" + (f" (code {grpc})" if grpc else "")
        return code, text + (f": {detail}" if detail else "") + ". No charge."

    # --- Omni interactions ------------------------------------------------------------------------

    def _interaction(self, interaction_id: str) -> dict[str, Any]:
        if not _INTERACTION_ID.match(interaction_id):
            raise ProviderError(
                f"{interaction_id!r} is not a Gemini API interaction id.", code="not_found", permanent=True
            )
        return self._call("GET", f"/v1beta/interactions/{interaction_id}", interactions=True)

    def _interaction_status(self, interaction: Mapping[str, Any]) -> JobStatus:
        raw = _text(interaction.get("status"))
        state = INTERACTION_STATES.get(raw.strip().lower(), JobState.IN_PROGRESS)
        usage: dict[str, Any] = dict(_dict(interaction.get("usage")))
        video = _dict(interaction.get("output_video"))
        delivered = seconds_of(video.get("duration"))
        if delivered is not None:
            usage["output_seconds"] = delivered
        if state is JobState.COMPLETED:
            uri = _text(video.get("uri"))
            if uri or _text(video.get("data")):
                return JobStatus(
                    state=state, progress=100, raw_status=raw, output_urls=(uri,) if uri else (), usage=usage
                )
            return JobStatus(
                state=JobState.FAILED,
                raw_status=raw,
                error_code="no_output",
                error_message="Gemini Omni completed without a video. No charge.",
            )
        if state is JobState.FAILED:
            key = raw.strip().lower()
            if key in _TERMINAL_REASONS:
                code, what = _TERMINAL_REASONS[key]
            else:
                code, what = "generation_failed", "Gemini Omni could not generate the video"
            errors = [e for e in _list(interaction.get("errors")) if isinstance(e, dict)]
            if errors:
                first = errors[0]
                detail = self._scrub(_text(first.get("message")))
                upstream = self._scrub(_text(first.get("code")))
                if any(w in f"{upstream} {detail}".lower() for w in _SAFETY_WORDS):
                    code = "content_policy"
                what += (f" ({upstream})" if upstream else "") + (f": {detail}" if detail else "")
            return JobStatus(
                state=state, raw_status=raw, error_code=code, error_message=f"{what}. No charge.", usage=usage
            )
        return JobStatus(state=state, raw_status=raw, usage=usage)

    def cancel(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> None:
        if self._api(job_id, job_data) != "omni":
            raise ProviderError(
                "Veo operations on the Gemini API cannot be canceled; it will finish.",
                code="unsupported",
                permanent=True,
            )
        if not _INTERACTION_ID.match(job_id):
            raise ProviderError(f"{job_id!r} is not a Gemini API interaction id.", code="not_found", permanent=True)
        self._call("POST", f"/v1beta/interactions/{job_id}/cancel", json={}, interactions=True)

    # --- downloads --------------------------------------------------------------------------------

    def _keyed_origins(self) -> set[str]:
        return {http.origin(GOOGLE_HOST), http.origin(self.base_url)}

    def _download_error(self, keyed: bool):
        def on_error(response: requests.Response) -> ProviderError:
            status = response.status_code
            if status in (404, 410) or (status == 403 and not keyed):
                return ProviderError(
                    f"The Gemini API no longer has this video (HTTP {status}); its files are kept for 2 days and it "
                    "was not copied in time.",
                    code="output_expired",
                    permanent=True,
                    status_code=status,
                )
            if keyed:
                return self.error_of(response, http.read_json(response))
            return http.download_failed(
                status, response.headers, f"Downloading the Gemini API's output failed with HTTP {status}."
            )

        return on_error

    @staticmethod
    def _inline(data: str, content_type: str | None) -> Download:
        try:
            video = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError(
                "The Gemini API returned an inline video that is not base64.", code="bad_response"
            ) from None
        if len(video) > http.max_download_bytes():
            raise ProviderError("The inline video is larger than the download limit.", code="too_large", permanent=True)
        return Download(chunks=iter([video]), content_type=content_type or "video/mp4", content_length=len(video))

    def download(
        self, job_id: str, *, url: str | None = None, variant: str = "video", job_data: Mapping[str, Any] | None = None
    ) -> Download:
        if variant != "video":
            raise ProviderError("The Gemini API has no thumbnails.", code="unsupported", permanent=True)
        if url is None:
            omni = self._api(job_id, job_data) == "omni"
            raw = self._interaction(job_id) if omni else self._operation(job_id)
            job = self._interaction_status(raw) if omni else self._operation_status(raw)
            if job.state is not JobState.COMPLETED:
                raise ProviderError(
                    f"Gemini API job {job_id} is {job.raw_status or 'not finished'}; nothing to download yet.",
                    code="not_ready",
                    permanent=job.state.is_terminal,
                )
            if job.output_urls:
                url = job.output_urls[0]
            elif omni:
                video = _dict(raw.get("output_video"))
                return self._inline(_text(video.get("data")), _text(video.get("mime_type")) or None)
            else:
                _uris, inline, _result = self._samples(raw)
                return self._inline(inline[0]["encodedVideo"], _text(inline[0].get("encoding")) or None)
        keyed = http.origin(url) in self._keyed_origins()
        return http.stream_download(
            url,
            headers={"x-goog-api-key": self.credentials.api_key or ""} if keyed else None,
            max_bytes=http.max_download_bytes(),
            allowed_private_hosts=self._private_hosts(),
            on_error=self._download_error(keyed),
        )
