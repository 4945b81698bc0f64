"""OpenAI Videos API (Sora 2) adapter, for any server speaking the contract (OPENAI_BASE_URL).

Wire contract: ``reference/providers/openai-videos.md``. The upstream was shut down on 2026-09-24;
gateways keep serving ``/v1/videos``. ``seconds`` is sent as a string and ``size`` as ``WxH``.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

import requests

from apps.providers import http
from apps.providers.base import Download, GenerationSpec, JobState, JobStatus, KeyField, ProviderError, VideoProvider

_STATES = {
    "queued": JobState.QUEUED,
    "in_progress": JobState.IN_PROGRESS,
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELED,
    "canceled": JobState.CANCELED,
}
_VARIANTS = {"video": "video", "thumbnail": "thumbnail"}
_PERMANENT_CODES = {"insufficient_quota", "billing_hard_limit_reached", "model_not_found", "moderation_blocked"}
_MESSAGE_LIMIT = 500


def _q(job_id: str) -> str:
    return quote(job_id, safe="")


def _text(value: Any) -> str:
    """A field of an error body as text: strings and numbers; anything else is ""."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


class SoraProvider(VideoProvider):
    slug = "sora"
    label = "OpenAI Sora"
    supports_remix = True
    supports_delete = True
    supports_thumbnail = True
    default_base_url = "https://api.openai.com/v1"
    base_url_aliases = ("OPENAI_BASE_URL",)  # the openai SDK's own name; includes /v1
    key_fields = (
        KeyField("api_key", "API key"),
        KeyField(
            "base_url",
            "Base URL (optional)",
            secret=False,
            kind="url",
            required=False,
            min_length=8,
            max_length=500,
            help="Your own OpenAI-compatible Videos API (for example a LiteLLM proxy), including /v1.",
        ),
    )
    key_shapes = (("api_key",),)

    @classmethod
    def serves_retired_models(cls, *, key_details, base_url: str) -> bool:
        """OpenAI shut its Sora 2 API down on 2026-09-24; the models live on at OpenAI-compatible
        gateways: a key's own ``base_url``, or an operator's base URL that is not OpenAI's."""
        return bool(key_details.get("base_url")) or base_url.rstrip("/") != cls.default_base_url.rstrip("/")

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.api_key}", "Accept": accept}

    def _error(self, response: requests.Response, *, creating: bool = False) -> ProviderError:
        status = response.status_code
        body = http.read_json(response)
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else {}
        # any JSON shape: a field that is not text (a list, an object) counts as absent
        upstream = _text(err.get("message"))
        upstream_code = _text(err.get("code")) or _text(err.get("type"))
        param = _text(err.get("param"))
        detail = http.scrub(upstream, self.credentials.api_key)[:_MESSAGE_LIMIT]
        if param:
            detail = f"{detail} (field: {param})"
        retry_after = http.parse_retry_after(response.headers)

        if status == 401:
            code, permanent, what = "invalid_api_key", True, "The API key was rejected"
        elif status == 403:
            code, permanent, what = "permission_denied", True, "The API key may not use this endpoint"
        elif status == 404 and "model" in (upstream + str(upstream_code)).lower():
            code, permanent, what = "model_not_found", True, "The server does not serve this model"
        elif status == 404:
            code, permanent, what = "not_found", True, "No such video"
        elif status == 429 and upstream_code in _PERMANENT_CODES:
            code, permanent, what = str(upstream_code), True, "The account's quota is exhausted"
        elif status in (408, 409, 429):
            code, permanent, what = "rate_limited" if status == 429 else "conflict", False, "Busy"
        elif status >= 500:
            code, permanent, what = "server_error", False, "The provider had a server error"
        elif 400 <= status < 500:
            code = str(upstream_code or "invalid_request")
            permanent, what = True, "The request was refused"
        else:
            code, permanent, what = "bad_response", False, "Unexpected answer"
        # x-should-retry: false on a failed create means the job may exist: reconcile, don't repeat
        uncertain = creating and not permanent and response.headers.get("x-should-retry") == "false"
        message = f"{what} (HTTP {status})" + (f": {detail}" if detail else ".")
        return ProviderError(
            message,
            code=code,
            permanent=permanent,
            retry_after=None if permanent else retry_after,
            status_code=status,
            uncertain=uncertain,
        )

    def _call(self, method: str, path: str, *, creating: bool = False, **kwargs: Any) -> dict[str, Any]:
        response = http.request(method, f"{self.base_url}{path}", headers=self._headers(), **kwargs)
        if not 200 <= response.status_code < 300:
            raise self._error(response, creating=creating)
        body = http.read_json(response)
        if not isinstance(body, dict):
            raise ProviderError(
                f"The provider answered {method} {path} with a body that is not a JSON object.",
                code="bad_response",
                uncertain=creating,
                status_code=response.status_code,
            )
        return body

    def _job_id(self, body: dict[str, Any]) -> str:
        video_id = body.get("id")
        if not isinstance(video_id, str) or not video_id:
            raise ProviderError(
                "The provider accepted the video but returned no id.", code="bad_response", uncertain=True
            )
        return video_id

    # --- interface ----------------------------------------------------------------------------

    def validate_key(self) -> None:
        self._call("GET", "/videos", params={"limit": 1})

    def submit(self, spec: GenerationSpec) -> str:
        if spec.remix_of:
            return self.remix(spec.remix_of, spec)
        fields = {"model": spec.model, "prompt": spec.prompt, "seconds": str(spec.seconds), "size": spec.size}
        image = spec.image
        if image is not None and image.data is not None:
            ext = (image.content_type or "image/png").rsplit("/", 1)[-1]
            files = {"input_reference": (f"input.{ext}", image.data, image.content_type or "image/png")}
            body = self._call("POST", "/videos", data=fields, files=files, creating=True)
        else:
            if image is not None and image.url:
                fields["input_reference"] = {"image_url": image.url}  # type: ignore[assignment]
            body = self._call("POST", "/videos", json=fields, creating=True)
        return self._job_id(body)

    def status(self, job_id: str, *, job_data=None) -> JobStatus:
        response = http.request("GET", f"{self.base_url}/videos/{_q(job_id)}", headers=self._headers())
        if not 200 <= response.status_code < 300:
            raise self._error(response)
        body = http.read_json(response)
        if not isinstance(body, dict):
            raise ProviderError("The provider returned a video that is not a JSON object.", code="bad_response")
        raw = str(body.get("status") or "")
        if raw == "expired":
            state = JobState.FAILED
        else:
            state = _STATES.get(raw, JobState.IN_PROGRESS)  # unknown: not finished, keep polling
        progress = body.get("progress")
        finite = isinstance(progress, int | float) and not isinstance(progress, bool) and math.isfinite(progress)
        progress = max(0, min(100, int(progress))) if finite else None
        if state is JobState.COMPLETED:
            progress = 100
        error_code = error_message = None
        if state is JobState.FAILED:
            err = body.get("error") if isinstance(body.get("error"), dict) else {}
            error_code = str(err.get("code") or ("expired" if raw == "expired" else "generation_failed"))
            error_message = str(
                err.get("message")
                or ("The video's files expired before they were downloaded." if raw == "expired" else "")
                or "The provider reported the video as failed without a reason."
            )[:_MESSAGE_LIMIT]
        hint = response.headers.get("openai-poll-after-ms")
        poll_after = None
        if hint:
            try:
                poll_after = max(float(hint) / 1000, 0.0)
            except ValueError:
                poll_after = None
        return JobStatus(
            state=state,
            progress=progress,
            raw_status=raw,
            error_code=error_code,
            error_message=error_message,
            poll_after=poll_after,
        )

    def download(self, job_id: str, *, url: str | None = None, variant: str = "video", job_data=None) -> Download:
        if variant not in _VARIANTS:
            raise ProviderError(f"Unknown download variant {variant!r}.", code="unsupported", permanent=True)
        if url is None:
            url = f"{self.base_url}/videos/{_q(job_id)}/content"
            params: dict[str, str] | None = {"variant": _VARIANTS[variant]}
        else:
            params = None
        # the key only ever travels to the configured server, never to a URL on another host
        own = http.origin(url) == http.origin(self.base_url)
        return http.stream_download(
            url,
            headers=self._headers(accept="application/binary") if own else {"Accept": "application/binary"},
            params=params,
            max_bytes=http.max_download_bytes(),
            allowed_private_hosts=self._private_hosts(),
            on_error=self._error,
        )

    def remix(self, job_id: str, spec: GenerationSpec) -> str:
        body = self._call("POST", f"/videos/{_q(job_id)}/remix", json={"prompt": spec.prompt}, creating=True)
        return self._job_id(body)

    def delete(self, job_id: str) -> None:
        self._call("DELETE", f"/videos/{_q(job_id)}")
