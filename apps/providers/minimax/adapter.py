"""MiniMax Hailuo adapter: MiniMax's own video API, both generations (a direct supplier).

Wire contract: ``reference/providers/minimax.md`` (MediaRouter's note: ``docs/providers/minimax.md``).

- **Hosts and keys.** A key is bound to the region that issued it (§1): the key's non-secret
  ``region`` field is one of :data:`REGION_HOSTS` (the international ``https://api.minimax.io`` or
  the mainland China ``https://api.minimaxi.com``) and becomes the base URL for that key. The rule:
  an operator's ``MINIMAX_BASE_URL`` (an emulator, a gateway) wins over every key's region; without
  it, the key's region host replaces the default. No other URL can be chosen by a tenant.
- **v1** (Hailuo 2.3 / 2.3 Fast, catalog ``extra["api"] == "v1"``): ``POST /v1/video_generation``,
  poll ``GET /v1/query/video_generation?task_id=``; business errors come back as **HTTP 200** with
  ``base_resp.status_code != 0`` (§7, quirk 1), mapped by :data:`CODES`. Output is three steps
  (§4): the task's ``file_id`` (a string or a number) -> ``GET /v1/files/retrieve?file_id=`` ->
  ``file.download_url`` (signed, expiring, no auth) -> stream. :meth:`download` runs all three
  every time, so a retry always streams a fresh URL.
- **v2** (MiniMax-H3): ``POST /v2/video_generation`` with ``content[]``, poll
  ``GET /v2/query/video_generation/{id}``; errors are the HTTP status plus
  ``{"type":"error","error":{"type","message"}}`` with the numeric code in parentheses at the end of
  the message. ``task.content.url`` is the output. Tasks can be queried for 7 days only: a job
  older than that fails with ``output_expired`` (without a call), and an ``invalid task_id`` for an
  old or undated job is ``output_expired`` too.
- Statuses are compared case-insensitively (v1 ``Success``, v2 ``succeeded``, callbacks ``success``);
  unknown values keep polling. There is no cancel in either generation (``supports_cancel = False``).
- Callbacks: ``callback_url`` is sent when set. MiniMax signs nothing (the per-generation URL token
  is the proof); its first POST is a ``{"challenge"}`` handshake that must be echoed within 3 s, so
  :meth:`verify_callback` returns ``CallbackDelivery(reply={"challenge": ...})`` at once.
- ``validate_key``: ``GET /v1/files`` (a cheap authenticated read, checked through ``base_resp``).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Mapping
from typing import Any

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
    SubmittedJob,
    VideoProvider,
)
from apps.providers.modelinfo import IMAGE_TO_VIDEO, ModelInfo

GLOBAL_HOST = "https://api.minimax.io"
CN_HOST = "https://api.minimaxi.com"
REGION_HOSTS: dict[str, str] = {
    GLOBAL_HOST: "International (api.minimax.io, USD)",
    CN_HOST: "Mainland China (api.minimaxi.com, CNY)",
}
QUERY_WINDOW_SECONDS = 7 * 24 * 3600  # v2 tasks can be queried for 7 days (§5.2)
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
IMAGE_MAX_BYTES = 20 * 1024 * 1024  # "< 20 MB" (§3)
DEFAULT_RATE_LIMIT_WAIT = 10.0
_MESSAGE_LIMIT = 500
_CODE_IN_MESSAGE = re.compile(r"\((\d{3,5})\)\s*$")

# MiniMax's numeric codes (§7) -> (MediaRouter code, permanent, what it means to the person).
CODES: dict[int, tuple[str, bool, str]] = {
    1000: ("server_error", False, "MiniMax had an unknown error; try again later"),
    1001: ("server_error", False, "MiniMax timed out on the request"),
    1002: ("rate_limited", False, "MiniMax's rate limit (requests per minute) was reached"),
    1004: (
        "invalid_api_key",
        True,
        "MiniMax refused the API key: it is wrong, or it belongs to the other region (a key works only on "
        "the host that issued it)",
    ),
    1008: ("insufficient_balance", True, "The MiniMax account's balance is insufficient; top it up"),
    1024: ("server_error", False, "MiniMax had an internal error"),
    1026: ("content_policy", True, "MiniMax flagged the prompt or the input image"),
    1027: ("content_policy", True, "MiniMax flagged the generated video"),
    1028: ("quota_exceeded", True, "The MiniMax plan's quota is used up until its window resets"),
    1030: ("quota_exceeded", True, "The MiniMax plan's quota is used up until its window resets"),
    1033: ("server_error", False, "MiniMax had a system error"),
    1039: ("rate_limited", False, "MiniMax's token rate limit was reached"),
    2013: ("invalid_request", True, "MiniMax refused the parameters"),
    2061: (
        "model_not_available",
        True,
        "This MiniMax key's plan cannot reach this model or setting (Token Plan keys reach Hailuo 2.3 and "
        "2.3 Fast at 768P, 6 s only); use a pay-as-you-go key",
    ),
}
# v2 error types (§7), for bodies whose message carries no numeric code
V2_TYPES: dict[str, tuple[str, bool]] = {
    "bad_request_error": ("invalid_request", True),
    "authorized_error": ("invalid_api_key", True),
    "insufficient_balance_error": ("insufficient_balance", True),
    "unprocessable_entity_error": ("invalid_request", True),
    "rate_limit_error": ("rate_limited", False),
    "server_error": ("server_error", False),
}
_STATES: dict[str, JobState] = {
    "preparing": JobState.QUEUED,
    "queueing": JobState.QUEUED,
    "queued": JobState.QUEUED,
    "processing": JobState.IN_PROGRESS,
    "running": JobState.IN_PROGRESS,
    "success": JobState.COMPLETED,
    "succeeded": JobState.COMPLETED,
    "fail": JobState.FAILED,
    "failed": JobState.FAILED,
    "expired": JobState.FAILED,
    "cancelled": JobState.CANCELED,
    "canceled": JobState.CANCELED,
}


def state_of(raw: object) -> JobState:
    """The MediaRouter state of any MiniMax status spelling; unknown values keep polling (quirk 2)."""
    return _STATES.get(str(raw or "").strip().lower(), JobState.IN_PROGRESS)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _id(value: object) -> str | None:
    """A task or file id, given as a string or a JSON number (quirk 10)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def problem_of(body: object) -> tuple[int | None, str, str]:
    """``(numeric code, message, v2 error type)`` from any body: a v1 ``base_resp``, a v2 error
    envelope, or anything else (then ``(None, "", "")``)."""
    if not isinstance(body, dict):
        return None, "", ""
    error = body.get("error")
    if isinstance(error, dict):
        message = _text(error.get("message"))
        match = _CODE_IN_MESSAGE.search(message)
        code = _int(error.get("code"))
        if code is None and match:
            code = int(match.group(1))
        return code, message, _text(error.get("type"))
    base = body.get("base_resp")
    if isinstance(base, dict):
        return _int(base.get("status_code")), _text(base.get("status_msg")), ""
    return None, _text(body.get("message")), ""


class MinimaxProvider(VideoProvider):
    slug = "minimax"
    label = "MiniMax"
    supplier_kind = "direct"
    supports_cancel = False
    supports_callbacks = True
    callback_verification = "token"
    default_base_url = GLOBAL_HOST
    key_fields = (
        KeyField("api_key", "API key", help="From platform.minimax.io (or platform.minimaxi.com for a China key)."),
        KeyField(
            "region",
            "Region",
            secret=False,
            kind="choice",
            required=False,
            choices=tuple(REGION_HOSTS.items()),
            help="The host that issued the key: a key works only in its own region. Default: international.",
            min_length=1,
        ),
    )
    key_shapes = (("api_key",),)

    def __init__(self, credentials: Credentials | None, base_url: str, *, options: Mapping[str, str] | None = None):
        super().__init__(credentials, base_url, options=options)
        region = self.credentials.region
        if region in REGION_HOSTS and self.base_url == GLOBAL_HOST and not self._operator_base_url():
            self.base_url = region

    @staticmethod
    def _operator_base_url() -> str:
        from apps.providers import registry

        return registry.provider_setting("minimax", "base_url")

    @classmethod
    def check_credentials(cls, credentials: Credentials) -> dict[str, str]:
        region = credentials.region
        if region is not None and region not in REGION_HOSTS:
            return {"region": f"Choose one of {', '.join(REGION_HOSTS)}."}
        return {}

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.api_key}", "Content-Type": "application/json"}

    def _scrub(self, text: str) -> str:
        return http.scrub(text, self.credentials.api_key)[:_MESSAGE_LIMIT]

    def code_error(
        self,
        code: int | None,
        message: str,
        *,
        status_code: int,
        retry_after: float | None = None,
    ) -> ProviderError | None:
        """The error of a known MiniMax code, or None for a code this adapter does not know."""
        if code is None or code not in CODES:
            return None
        ours, permanent, what = CODES[code]
        detail = self._scrub(message)
        if not permanent and retry_after is None and ours == "rate_limited":
            retry_after = DEFAULT_RATE_LIMIT_WAIT
        return ProviderError(
            f"{what} ({code})" + (f": {detail}" if detail else "."),
            code=ours,
            permanent=permanent,
            retry_after=None if permanent else retry_after,
            status_code=status_code,
        )

    def _error(self, response: requests.Response, body: object, *, creating: bool) -> ProviderError:
        """A non-2xx answer, in either generation's envelope (or none)."""
        status = response.status_code
        code, message, kind = problem_of(body)
        retry_after = http.parse_retry_after(response.headers)
        known = self.code_error(code, message, status_code=status, retry_after=retry_after)
        if known is not None:
            if not known.permanent and status >= 500:
                known.uncertain = creating
            return known
        detail = self._scrub(message)
        uncertain = False
        if status == 401:
            ours, permanent, what = "invalid_api_key", True, "MiniMax refused the API key"
        elif status == 402:
            ours, permanent, what = "insufficient_balance", True, "The MiniMax account's balance is insufficient"
        elif status == 403:
            ours, permanent, what = "permission_denied", True, "The MiniMax key may not do this"
        elif status == 404:
            ours, permanent, what = "not_found", True, "MiniMax has no such task or path"
        elif status == 429:
            ours, permanent, what = "rate_limited", False, "MiniMax's rate limit was reached"
            retry_after = DEFAULT_RATE_LIMIT_WAIT if retry_after is None else retry_after
        elif status >= 500 or status == 408:
            ours, permanent, what = "server_error", False, "MiniMax is overloaded or had a server error"
            uncertain = creating  # no idempotency key and no lookup (§7): the task may exist
        elif kind in V2_TYPES:
            (ours, permanent), what = V2_TYPES[kind], "MiniMax refused the request"
        else:
            ours, permanent, what = "invalid_request", True, "MiniMax refused the request"
        return ProviderError(
            f"{what} (HTTP {status})" + (f": {detail}" if detail else "."),
            code=ours,
            permanent=permanent,
            retry_after=None if permanent else retry_after,
            status_code=status,
            uncertain=uncertain,
        )

    def _call(
        self, method: str, path: str, *, creating: bool = False, failed_task_ok: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        """One call; a non-zero ``base_resp`` is an error even under HTTP 200 (quirk 1), except on
        a query of a task that ended ``Fail`` (its reason is in ``base_resp``)."""
        response = http.request(method, f"{self.base_url}{path}", headers=self._headers(), **kwargs)
        body = http.read_json(response)
        if not 200 <= response.status_code < 300:
            raise self._error(response, body, creating=creating)
        if not isinstance(body, dict):
            raise ProviderError(
                f"MiniMax answered {method} {path.split('?')[0]} with a body that is not a JSON object.",
                code="bad_response",
                uncertain=creating,
                status_code=response.status_code,
            )
        code, message, _kind = problem_of(body)
        if code not in (None, 0) and not (failed_task_ok and state_of(body.get("status")) is JobState.FAILED):
            error = self.code_error(code, message, status_code=response.status_code)
            if error is None:
                detail = self._scrub(message)
                error = ProviderError(
                    f"MiniMax refused the request (code {code})" + (f": {detail}" if detail else "."),
                    code="provider_error",
                    permanent=True,
                    status_code=response.status_code,
                )
            raise error
        return body

    # --- mapping ----------------------------------------------------------------------------

    def _image_value(self, spec: GenerationSpec) -> str:
        image = spec.image
        assert image is not None
        if image.url:
            if not image.url.startswith("https://"):
                raise self._refuse("MiniMax fetches input images itself: give an https image URL.")
            return image.url
        if not image.data:
            raise self._refuse("The input image is empty.")
        content_type = (image.content_type or "").split(";")[0].strip().lower()
        if content_type not in IMAGE_TYPES:
            raise self._refuse(f"MiniMax takes JPEG, PNG or WebP images, not {content_type or 'an unknown type'}.")
        if len(image.data) >= IMAGE_MAX_BYTES:
            raise self._refuse("MiniMax takes input images under 20 MB.")
        return f"data:{content_type};base64,{base64.b64encode(image.data).decode('ascii')}"

    def _fields(self, model: ModelInfo, spec: GenerationSpec) -> dict[str, str]:
        """The size's wire fields, after refusing what the model cannot do (before any call)."""
        prompt = (spec.prompt or "").strip()
        if not prompt:
            raise self._refuse(f"{model.label} needs a prompt.")
        limit = int(model.extra.get("prompt_max", 2000))  # type: ignore[arg-type]
        if len(spec.prompt) > limit:
            raise self._refuse(f"{model.label} takes prompts of up to {limit} characters.")
        sizes: Mapping[str, Mapping[str, str]] = model.extra["sizes"]  # type: ignore[assignment]
        if spec.size not in sizes:
            raise self._refuse(f"{model.label} supports sizes {', '.join(sizes)}.")
        if spec.seconds not in model.seconds:
            raise self._refuse(f"{model.label} supports durations of {', '.join(map(str, model.seconds))} seconds.")
        fields = dict(sizes[spec.size])
        limited = model.extra.get("seconds_by_resolution", {}).get(fields["resolution"])  # type: ignore[union-attr]
        if limited and spec.seconds not in limited:
            allowed = ", ".join(map(str, limited))
            raise self._refuse(f"{model.label} makes {fields['resolution']} videos of {allowed} seconds only.")
        if spec.seed is not None:
            raise self._refuse(f"{model.label} does not take a seed.")
        if spec.negative_prompt:
            raise self._refuse(f"{model.label} does not take a negative prompt.")
        if spec.audio and not model.has_audio:
            raise self._refuse(f"{model.label} makes silent videos only.")
        if spec.audio is False and model.has_audio:
            raise self._refuse(f"{model.label} always generates sound; it cannot be switched off.")
        if spec.image is not None and IMAGE_TO_VIDEO not in model.capabilities:
            raise self._refuse(f"{model.label} does not take an input image.")
        self._require_image_if_image_only(model, spec)
        return fields

    def v1_body(self, model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
        fields = self._fields(model, spec)
        body: dict[str, Any] = {
            "model": model.provider_model,
            "prompt": spec.prompt,
            "duration": int(spec.seconds),
            "resolution": fields["resolution"],
            "prompt_optimizer": False,  # the tenant's prompt, verbatim
        }
        if spec.image is not None:
            body["first_frame_image"] = self._image_value(spec)
        if spec.callback_url:
            body["callback_url"] = spec.callback_url
        return body

    def v2_body(self, model: ModelInfo, spec: GenerationSpec) -> dict[str, Any]:
        fields = self._fields(model, spec)
        content: list[dict[str, Any]] = [{"type": "text", "text": spec.prompt}]
        if spec.image is not None:
            content.append({"type": "image_url", "image_url": {"url": self._image_value(spec)}, "role": "first_frame"})
        body: dict[str, Any] = {
            "model": model.provider_model,
            "content": content,
            "duration": int(spec.seconds),
            "resolution": fields["resolution"],
            # always a concrete ratio: "adaptive" without an image is refused (quirk 8), and the
            # catalog size (hence the price) names one
            "ratio": fields["ratio"],
            "aigc_watermark": False,
        }
        if spec.callback_url:
            body["callback_url"] = spec.callback_url
        return body

    # --- interface ----------------------------------------------------------------------------

    def validate_key(self) -> None:
        self._call("GET", "/v1/files")

    def submit(self, spec: GenerationSpec) -> SubmittedJob:
        model = self._require_catalog_model(spec)
        api = str(model.extra.get("api", "v1"))
        if api == "v2":
            answer = self._call("POST", "/v2/video_generation", json=self.v2_body(model, spec), creating=True)
        else:
            answer = self._call("POST", "/v1/video_generation", json=self.v1_body(model, spec), creating=True)
        task_id = _id(answer.get("task_id"))
        if task_id is None:
            raise ProviderError(
                "MiniMax accepted the task but returned no task_id.", code="bad_response", uncertain=True
            )
        return SubmittedJob(job_id=task_id, data={"api": api, "created_at": time.time()})

    @staticmethod
    def _api(job_data: Mapping[str, Any] | None) -> str:
        return str((job_data or {}).get("api") or "v1")

    @staticmethod
    def _age(job_data: Mapping[str, Any] | None) -> float | None:
        created = (job_data or {}).get("created_at")
        if isinstance(created, int | float) and not isinstance(created, bool):
            return time.time() - float(created)
        return None

    def _expired(self, job_id: str) -> JobStatus:
        return JobStatus(
            state=JobState.FAILED,
            raw_status="expired",
            error_code="output_expired",
            error_message=(
                f"MiniMax task {job_id} is older than 7 days and can no longer be queried; its video was not "
                "copied in time."
            ),
        )

    def status(self, job_id: str, *, job_data: Mapping[str, Any] | None = None) -> JobStatus:
        if self._api(job_data) == "v2":
            return self._status_v2(job_id, job_data)
        return self._status_v1(job_id)

    def _query_v1(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", "/v1/query/video_generation", params={"task_id": job_id}, failed_task_ok=True)

    def _status_v1(self, job_id: str) -> JobStatus:
        task = self._query_v1(job_id)
        raw = _text(task.get("status"))
        state = state_of(raw)
        error_code = error_message = None
        usage: dict[str, Any] = {}
        if state is JobState.COMPLETED:
            file_id = _id(task.get("file_id"))
            if file_id is None:
                state, error_code = JobState.FAILED, "no_output"
                error_message = "MiniMax reported success but returned no file_id."
            else:
                usage = {"videos": 1, "file_id": file_id}
                for name in ("video_width", "video_height"):
                    if _int(task.get(name)) is not None:
                        usage[name] = _int(task.get(name))
        elif state is JobState.FAILED:
            error_code, error_message = self._failure(*problem_of(task)[:2])
        return JobStatus(
            state=state,
            progress=100 if state is JobState.COMPLETED else None,
            raw_status=raw,
            error_code=error_code,
            error_message=error_message,
            usage=usage,
        )

    def _failure(self, code: int | None, message: str) -> tuple[str, str]:
        """``(error_code, error_message)`` of a task that ended failed with MiniMax's ``code``."""
        known = CODES.get(code) if code is not None else None
        detail = self._scrub(message)
        if known is None:
            text = "MiniMax could not generate the video" + (f" (code {code})" if code else "")
            return "generation_failed", text + (f": {detail}" if detail else ". No charge.")
        ours, _permanent, what = known
        return ours, f"{what} ({code})" + (f": {detail}" if detail else ". No charge.")

    def _status_v2(self, job_id: str, job_data: Mapping[str, Any] | None) -> JobStatus:
        age = self._age(job_data)
        if age is not None and age > QUERY_WINDOW_SECONDS:
            return self._expired(job_id)
        try:
            body = self._call("GET", f"/v2/query/video_generation/{job_id}")
        except ProviderError as exc:
            if "invalid task_id" in exc.message.lower() and (age is None or age > QUERY_WINDOW_SECONDS - 3600):
                return self._expired(job_id)
            raise
        task = body.get("task") if isinstance(body.get("task"), dict) else {}
        raw = _text(task.get("status"))
        state = state_of(raw)
        outputs: tuple[str, ...] = ()
        error_code = error_message = None
        if state is JobState.COMPLETED:
            content = task.get("content") if isinstance(task.get("content"), dict) else {}
            url = _text(content.get("url"))
            if url:
                outputs = (url,)
            else:
                state, error_code = JobState.FAILED, "no_output"
                error_message = "MiniMax reported success but returned no video URL."
        elif state is JobState.FAILED:
            if raw.lower() == "expired":
                error_code, error_message = "output_expired", f"MiniMax task {job_id} expired. No charge."
            else:
                error_code, error_message = self._failure(*problem_of(task)[:2])
        usage = task.get("usage")
        return JobStatus(
            state=state,
            progress=100 if state is JobState.COMPLETED else None,
            raw_status=raw,
            output_urls=outputs,
            error_code=error_code,
            error_message=error_message,
            usage=dict(usage) if isinstance(usage, dict) else {},
        )

    def _download_error(self, response: requests.Response) -> ProviderError:
        status = response.status_code
        if status in (403, 404, 410):
            # a signed URL that expired: the next attempt asks MiniMax for a fresh one
            return ProviderError(
                f"MiniMax's download URL was refused (HTTP {status}); it has probably expired. A fresh one is "
                "requested on the next attempt.",
                code="download_failed",
                retry_after=1.0,
                status_code=status,
            )
        return http.download_failed(
            status, response.headers, f"Downloading MiniMax's output failed with HTTP {status}."
        )

    def retrieve_url(self, file_id: str) -> str:
        """Step 2 of the v1 download: ``file_id`` -> a fresh signed ``download_url``."""
        body = self._call("GET", "/v1/files/retrieve", params={"file_id": file_id})
        file = body.get("file") if isinstance(body.get("file"), dict) else {}
        url = _text(file.get("download_url")) or _text(file.get("backup_download_url"))
        if not url:
            raise ProviderError(f"MiniMax returned no download_url for file {file_id}.", code="bad_response")
        return url

    def download(
        self, job_id: str, *, url: str | None = None, variant: str = "video", job_data: Mapping[str, Any] | None = None
    ) -> Download:
        if variant != "video":
            raise ProviderError("MiniMax has no thumbnails.", code="unsupported", permanent=True)
        if self._api(job_data) == "v1":
            job = self._status_v1(job_id)  # step 1: the task's file_id
            if job.state is not JobState.COMPLETED:
                raise ProviderError(
                    f"MiniMax task {job_id} is {job.raw_status or 'not finished'}; nothing to download yet.",
                    code="not_ready",
                    permanent=job.state.is_terminal,
                )
            url = self.retrieve_url(str(job.usage["file_id"]))  # step 2
        elif url is None:
            job = self._status_v2(job_id, job_data)
            if job.error_code == "output_expired":
                raise ProviderError(job.error_message or "Output expired.", code="output_expired", permanent=True)
            if job.state is not JobState.COMPLETED or not job.output_urls:
                raise ProviderError(
                    f"MiniMax task {job_id} is {job.raw_status or 'not finished'}; nothing to download yet.",
                    code="not_ready",
                )
            url = job.output_urls[0]
        return http.stream_download(  # step 3: pre-signed, no auth header
            url,
            max_bytes=http.max_download_bytes(),
            allowed_private_hosts=self._private_hosts(),
            on_error=self._download_error,
        )

    # --- callbacks ----------------------------------------------------------------------------

    def verify_callback(
        self, *, headers: Mapping[str, str], body: bytes, secret: str | None = None
    ) -> CallbackDelivery:
        """The challenge handshake is answered at once with its echo (quirk 4); a push names its
        task (``task_id``, or ``task.id`` in a v2 body), which the engine re-reads before acting."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise CallbackRejected("MiniMax callback body is not JSON.") from None
        if not isinstance(payload, dict):
            raise CallbackRejected("MiniMax callback body is not a JSON object.")
        challenge = payload.get("challenge")
        if challenge is not None:
            if not isinstance(challenge, str | int) or isinstance(challenge, bool):
                raise CallbackRejected("MiniMax callback challenge is not a string.")
            return CallbackDelivery(reply={"challenge": challenge})
        task = payload.get("task")
        task_id = _id(payload.get("task_id")) or (_id(task.get("id")) if isinstance(task, dict) else None)
        if task_id is None:
            raise CallbackRejected("MiniMax callback names no task.")
        return CallbackDelivery(job_id=task_id)
