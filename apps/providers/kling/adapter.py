"""Kling adapter, legacy design (model in the body: ``/v1/videos/{text2video,image2video}``).

Wire contract: ``reference/providers/kling.md`` §2-§3 and §7. The legacy design is the one that
accepts both key shapes (a plain API key, or an access key + secret key signed into an HS256 JWT).

- Success is ``code == 0`` in the envelope, even on HTTP 200; business codes are mapped in
  :func:`_classify`.
- ``size`` ``WxH`` becomes ``aspect_ratio`` (text to video only; image to video follows the image)
  and ``mode``: ``pro`` when the short side is 1080 px or more, else ``std`` (720p).
- Job ids are ``t2v:<task_id>`` or ``i2v:<task_id>`` because the status path depends on the
  endpoint. A bare id (no prefix) is looked up on both endpoints.
- ``spec.client_reference`` is sent as ``external_task_id`` so :meth:`find_by_reference` can
  reconcile an uncertain submit.
- Kling documents no progress: ``JobStatus.progress`` is None.
- Callbacks: ``callback_url`` is sent when ``spec.callback_url`` is set (§6). Kling's signature is an
  optional console setting whose secret MediaRouter cannot fetch, so a delivery is proved by the
  per-generation token in the URL (``callback_verification = "token"``); :meth:`verify_callback`
  only reads the task id (legacy ``task_id``, new design ``id``) and the engine re-reads the task.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from typing import Any
from urllib.parse import quote

import jwt
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
    VideoProvider,
)

TOKEN_LIFETIME = 1800  # seconds; kling.md §2
TOKEN_RENEW_MARGIN = 300  # renew this long before expiry
NOT_BEFORE_SKEW = 5
_MESSAGE_LIMIT = 500
_KINDS = {"t2v": "text2video", "i2v": "image2video"}

_STATES = {
    "submitted": JobState.QUEUED,
    "processing": JobState.IN_PROGRESS,
    "succeed": JobState.COMPLETED,
    "succeeded": JobState.COMPLETED,
    "failed": JobState.FAILED,
}

# business code -> (our code, permanent, what it means for a person)
_CODES: dict[int, tuple[str, bool, str]] = {
    1000: ("authentication_error", True, "Kling rejected the credentials"),
    1001: ("authentication_error", True, "Kling received no credentials"),
    1002: ("authentication_error", True, "Kling rejected the credentials as invalid"),
    1003: ("authentication_error", True, "Kling's token is not valid yet (check the server clock)"),
    1004: ("authentication_error", True, "Kling's token has expired (check the server clock)"),
    1100: ("account_error", True, "The Kling account has a problem; check it in the Kling console"),
    1101: ("account_in_arrears", True, "The Kling account is in arrears; settle the bill in the Kling console"),
    1102: (
        "insufficient_balance",
        True,
        "The Kling resource pack is used up or expired; buy or renew a pack in the Kling console",
    ),
    1103: ("permission_denied", True, "This Kling key has no access to this API or model"),
    1200: ("invalid_request", True, "Kling refused the request parameters"),
    1201: ("invalid_request", True, "Kling refused a parameter value"),
    1202: ("not_found", True, "Kling does not know this method"),
    1203: ("not_found", True, "Kling does not know this resource (task or model)"),
    1300: ("content_policy", True, "Kling's platform policy refused the request"),
    1301: ("content_policy", True, "Kling's content safety policy refused the prompt or image"),
    1302: ("rate_limited", False, "Kling says requests are coming too fast"),
    1303: ("concurrency_limit", False, "Kling's concurrent task limit for the resource pack is reached"),
    1304: ("permission_denied", True, "Kling refused the request by its IP allow-list policy"),
    5000: ("server_error", False, "Kling had an internal error"),
    5001: ("server_error", False, "Kling is under maintenance"),
    5002: ("server_error", False, "Kling timed out (backlog)"),
}
_MIN_BACKOFF = {1302: 1.0, 1303: 1.0}  # kling.md §8: back off for at least 1 s


def _q(value: str) -> str:
    return quote(value, safe="")


def aspect_ratio_for(size: str) -> str:
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()) or not int(width) or not int(height):
        raise ProviderError(f"Size {size!r} is not WxH.", code="invalid_request", permanent=True)
    w, h = int(width), int(height)
    g = math.gcd(w, h)
    return f"{w // g}:{h // g}"


def mode_for(size: str) -> str:
    """``pro`` (1080p) when the short side is at least 1080 px, else ``std`` (720p)."""
    width, _, height = size.partition("x")
    return "pro" if min(int(width), int(height)) >= 1080 else "std"


class KlingProvider(VideoProvider):
    slug = "kling"
    label = "Kling"
    supports_lookup = True
    supports_callbacks = True
    callback_verification = "token"  # unsigned to us (§6): the URL's per-generation token is the proof
    key_fields = (
        KeyField("api_key", "API key", help="A Kling API key, or the access key and secret key pair below."),
        KeyField("access_key", "Access key", help="With the secret key: signed into a short-lived JWT per call."),
        KeyField("secret_key", "Secret key"),
    )
    key_shapes = (("api_key",), ("access_key", "secret_key"))
    default_base_url = "https://api-singapore.klingai.com"

    def __init__(self, credentials: Credentials | None, base_url: str, **kwargs: Any) -> None:
        super().__init__(credentials, base_url, **kwargs)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()

    # --- auth -------------------------------------------------------------------------------

    def _bearer(self) -> str:
        creds = self.credentials
        if creds.api_key:
            return creds.api_key
        if not (creds.access_key and creds.secret_key):
            raise ProviderError(
                "Kling needs an API key, or an access key and a secret key.",
                code="missing_credentials",
                permanent=True,
            )
        with self._token_lock:
            now = time.time()
            if self._token is None or now >= self._token_expires - TOKEN_RENEW_MARGIN:
                exp = int(now) + TOKEN_LIFETIME
                payload = {"iss": creds.access_key, "exp": exp, "nbf": int(now) - NOT_BEFORE_SKEW}
                self._token = jwt.encode(payload, creds.secret_key, algorithm="HS256", headers={"typ": "JWT"})
                self._token_expires = float(exp)
            return self._token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"}

    def _secrets(self) -> tuple[str | None, ...]:
        c = self.credentials
        return (c.api_key, c.access_key, c.secret_key, self._token)

    # --- errors -----------------------------------------------------------------------------

    def _classify(self, status: int, code: int | None, message: str, headers: Any) -> ProviderError:
        detail = http.scrub(message, *self._secrets())[:_MESSAGE_LIMIT]
        known = _CODES.get(code) if code is not None else None
        if known is not None:
            our_code, permanent, what = known
        elif status == 401:
            our_code, permanent, what = "authentication_error", True, "Kling rejected the credentials"
        elif status >= 500 or status == 429:
            our_code, permanent, what = "server_error", False, "Kling is busy or had a server error"
        else:
            our_code, permanent, what = "provider_error", True, "Kling refused the request"
        retry_after = None
        if not permanent:
            retry_after = http.parse_retry_after(headers)
            floor = _MIN_BACKOFF.get(code or 0)
            if floor is not None:
                retry_after = max(retry_after or 0.0, floor)
        label = f"HTTP {status}" + (f", code {code}" if code is not None else "")
        return ProviderError(
            f"{what} ({label})" + (f": {detail}" if detail else "."),
            code=our_code,
            permanent=permanent,
            retry_after=retry_after,
            status_code=status,
        )

    def _call(self, method: str, path: str, *, creating: bool = False, **kwargs: Any) -> Any:
        response = http.request(method, f"{self.base_url}{path}", headers=self._headers(), **kwargs)
        return self._unwrap(response, creating=creating)

    def _unwrap(self, response: requests.Response, *, creating: bool = False) -> Any:
        body = http.read_json(response)
        if not isinstance(body, dict) or "code" not in body:
            if not 200 <= response.status_code < 300:
                raise self._classify(response.status_code, None, "", response.headers)
            raise ProviderError(
                "Kling answered with a body that is not its JSON envelope.",
                code="bad_response",
                uncertain=creating,
                status_code=response.status_code,
            )
        try:
            code = int(body["code"])  # any JSON: a list, 1e400 (inf), "x" are not a code
        except (TypeError, ValueError, OverflowError):
            code = -1
        if code != 0 or not 200 <= response.status_code < 300:
            message = body.get("message")
            message = message if isinstance(message, str) else ""
            raise self._classify(response.status_code, code, message, response.headers)
        return body.get("data")

    # --- mapping ----------------------------------------------------------------------------

    def _image_field(self, spec: GenerationSpec) -> str:
        image = spec.image
        assert image is not None
        if image.url:
            return image.url
        if not image.data:
            raise ProviderError("The input image is empty.", code="invalid_request", permanent=True)
        return base64.b64encode(image.data).decode("ascii")  # raw base64, no data: prefix

    @staticmethod
    def _split(job_id: str) -> tuple[str | None, str]:
        prefix, sep, task_id = job_id.partition(":")
        if sep and prefix in _KINDS:
            return _KINDS[prefix], task_id
        return None, job_id

    # --- interface ----------------------------------------------------------------------------

    def validate_key(self) -> None:
        self._call("GET", "/v1/videos/text2video", params={"pageNum": 1, "pageSize": 1})

    def submit(self, spec: GenerationSpec) -> str:
        model = self._catalog_model(spec)
        self._require_image_if_image_only(model, spec)
        body: dict[str, Any] = {
            "model_name": model.provider_model if model else spec.model,
            "prompt": spec.prompt,
            "mode": mode_for(spec.size),
            "duration": str(spec.seconds),
        }
        if spec.negative_prompt:
            body["negative_prompt"] = spec.negative_prompt
        if spec.client_reference:
            body["external_task_id"] = spec.client_reference
        if spec.callback_url:
            body["callback_url"] = spec.callback_url
        if spec.image is not None:
            body["image"] = self._image_field(spec)
            kind = "i2v"
        else:
            body["aspect_ratio"] = aspect_ratio_for(spec.size)
            kind = "t2v"
        data = self._call("POST", f"/v1/videos/{_KINDS[kind]}", json=body, creating=True)
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("Kling accepted the task but returned no task_id.", code="bad_response", uncertain=True)
        return f"{kind}:{task_id}"

    def _query(self, endpoint: str, task_id: str) -> dict[str, Any] | None:
        """The task, or None when Kling does not know it (HTTP 404 / code 1203)."""
        try:
            data = self._call("GET", f"/v1/videos/{endpoint}/{_q(task_id)}")
        except ProviderError as exc:
            if exc.status_code == 404 or exc.code == "not_found":
                return None
            raise
        return data if isinstance(data, dict) else None

    def _task(self, job_id: str) -> tuple[str, dict[str, Any]]:
        endpoint, task_id = self._split(job_id)
        for candidate in (endpoint,) if endpoint else tuple(_KINDS.values()):
            task = self._query(candidate, task_id)
            if task is not None:
                return candidate, task
        raise ProviderError(f"Kling has no task {job_id!r}.", code="not_found", permanent=True, status_code=404)

    def status(self, job_id: str, *, job_data=None) -> JobStatus:
        _endpoint, task = self._task(job_id)
        raw = str(task.get("task_status") or task.get("status") or "")
        state = _STATES.get(raw.lower(), JobState.IN_PROGRESS)  # unknown: keep polling
        outputs: tuple[str, ...] = ()
        error_code = error_message = None
        if state is JobState.COMPLETED:
            result = task.get("task_result") if isinstance(task.get("task_result"), dict) else {}
            videos = result.get("videos") or task.get("outputs") or []
            videos = videos if isinstance(videos, list) else []
            outputs = tuple(
                v["url"] for v in videos if isinstance(v, dict) and isinstance(v.get("url"), str) and v["url"]
            )
            if not outputs:
                state = JobState.FAILED
                error_code, error_message = "no_output", "Kling reported success but returned no video URL."
        elif state is JobState.FAILED:
            error_code = "generation_failed"
            reason = task.get("task_status_msg") or task.get("message")
            error_message = str(reason or "Kling reported the task as failed without a reason.")[:_MESSAGE_LIMIT]
        return JobStatus(
            state=state,
            progress=None,
            raw_status=raw,
            output_urls=outputs,
            error_code=error_code,
            error_message=error_message,
        )

    def find_by_reference(self, client_reference: str) -> str | None:
        """The job id of the task submitted with ``external_task_id == client_reference``."""
        for prefix, endpoint in _KINDS.items():
            task = self._query(endpoint, client_reference)
            if task is None:
                continue
            info = task.get("task_info") if isinstance(task.get("task_info"), dict) else {}
            if info.get("external_task_id") not in (None, client_reference):
                continue
            task_id = task.get("task_id")
            if isinstance(task_id, str) and task_id:
                return f"{prefix}:{task_id}"
        return None

    def download(self, job_id: str, *, url: str | None = None, variant: str = "video", job_data=None) -> Download:
        if variant != "video":
            raise ProviderError("Kling has no thumbnails.", code="unsupported", permanent=True)
        return self._download_output(job_id, url)

    # --- callbacks ----------------------------------------------------------------------------

    def verify_callback(self, *, headers, body: bytes, secret: str | None = None) -> CallbackDelivery:
        """The task id the push names (legacy ``task_id``, new design ``id``): the bare id, while the
        engine keeps ``t2v:``/``i2v:`` in front of it. Nothing else in the body is used."""
        try:
            task = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise CallbackRejected("Kling callback body is not JSON.") from None
        task_id = (task.get("task_id") or task.get("id")) if isinstance(task, dict) else None
        if not isinstance(task_id, str | int) or isinstance(task_id, bool) or not str(task_id).strip():
            raise CallbackRejected("Kling callback body names no task.")
        return CallbackDelivery(job_id=str(task_id).strip())
