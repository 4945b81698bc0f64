"""Runway developer API adapter (``X-Runway-Version: 2024-11-06``).

Wire contract: ``reference/providers/runway.md``. Creates return only ``{"id"}``; the task is polled
at ``GET /v1/tasks/{id}`` and its ``output`` URLs (which expire) are downloaded as they are.
``WxH`` sizes become pixel-pair ratios (``1280x720`` -> ``1280:720``).
"""

from __future__ import annotations

import base64
import math
from typing import Any
from urllib.parse import quote

import requests

from apps.providers import http
from apps.providers.base import Download, GenerationSpec, JobState, JobStatus, ProviderError, VideoProvider

API_VERSION = "2024-11-06"
DATA_URI_MAX_BYTES = 5 * 1024 * 1024  # runway.md §3: a data URI may be at most 5 MB
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
_MESSAGE_LIMIT = 500

_STATES = {
    "PENDING": JobState.QUEUED,
    "THROTTLED": JobState.QUEUED,
    "QUEUED": JobState.QUEUED,
    "RUNNING": JobState.IN_PROGRESS,
    "SUCCEEDED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "CANCELLED": JobState.CANCELED,
    "CANCELED": JobState.CANCELED,
}


def _q(job_id: str) -> str:
    return quote(job_id, safe="")


def ratio_for(size: str) -> str:
    """``1280x720`` -> ``1280:720`` (API version 2024-11-06 takes pixel pairs)."""
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ProviderError(f"Size {size!r} is not WxH.", code="invalid_request", permanent=True)
    return f"{width}:{height}"


def _text(value: object) -> str:
    """A field of an error body as text: strings and numbers; anything else is ""."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _issue_path(path: object) -> str:
    """An issue's ``path``: a list of keys and indexes (``["promptImage", 0]``), or a lone key."""
    if isinstance(path, list):
        return ".".join(_text(p) for p in path)
    return _text(path)


def progress_percent(value: object) -> int | None:
    """Runway's ``progress`` is 0-1 per its SDK, but 0-100 has been seen: accept both."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    percent = value * 100 if value <= 1 else value
    return max(0, min(100, round(percent)))


class RunwayProvider(VideoProvider):
    slug = "runway"
    label = "Runway"
    supports_cancel = True
    supports_delete = True
    default_base_url = "https://api.dev.runwayml.com"

    # --- plumbing ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.credentials.api_key}",
            "X-Runway-Version": API_VERSION,
            "Accept": "application/json",
        }

    def _error(self, response: requests.Response) -> ProviderError:
        status = response.status_code
        body = http.read_json(response)
        detail = ""
        if isinstance(body, dict):
            # any JSON shape: fields that are not what the docs say count as absent
            detail = _text(body.get("error"))
            issues = body.get("issues")
            if isinstance(issues, list):
                parts = [
                    f"{_issue_path(i.get('path'))}: {_text(i.get('message'))}" for i in issues if isinstance(i, dict)
                ]
                if parts:
                    detail = f"{detail} ({'; '.join(parts)})" if detail else "; ".join(parts)
        detail = http.scrub(detail, self.credentials.api_key)[:_MESSAGE_LIMIT]
        if status == 401:
            code, permanent, what = "invalid_api_key", True, "Runway rejected the API key"
        elif status == 403:
            code, permanent, what = "permission_denied", True, "The Runway key may not do this"
        elif status == 404:
            code, permanent, what = "not_found", True, "Runway has no such task or resource"
        elif status == 429:
            code, permanent, what = "rate_limited", False, "Runway's rate or daily generation limit was reached"
        elif status >= 500 or status == 408:
            code, permanent, what = "server_error", False, "Runway is overloaded or had a server error"
        elif 400 <= status < 500:
            code, permanent, what = "invalid_request", True, "Runway refused the request"
        else:
            code, permanent, what = "bad_response", False, "Unexpected answer from Runway"
        return ProviderError(
            f"{what} (HTTP {status})" + (f": {detail}" if detail else "."),
            code=code,
            permanent=permanent,
            retry_after=None if permanent else http.parse_retry_after(response.headers),
            status_code=status,
        )

    def _call(self, method: str, path: str, *, creating: bool = False, **kwargs: Any) -> Any:
        response = http.request(method, f"{self.base_url}{path}", headers=self._headers(), **kwargs)
        if not 200 <= response.status_code < 300:
            raise self._error(response)
        if method == "DELETE":
            return None
        body = http.read_json(response)
        if not isinstance(body, dict):
            raise ProviderError(
                f"Runway answered {method} {path} with a body that is not a JSON object.",
                code="bad_response",
                uncertain=creating,
            )
        return body

    def _prompt_image(self, spec: GenerationSpec) -> str:
        image = spec.image
        assert image is not None
        if image.url:
            return image.url
        if not image.data:
            raise ProviderError("The input image is empty.", code="invalid_request", permanent=True)
        content_type = (image.content_type or "").lower()
        if content_type not in IMAGE_TYPES:
            raise ProviderError(
                f"Runway accepts JPEG, PNG or WebP images, not {content_type or 'unknown type'}.",
                code="invalid_request",
                permanent=True,
            )
        uri = f"data:{content_type};base64,{base64.b64encode(image.data).decode('ascii')}"
        if len(uri) > DATA_URI_MAX_BYTES:
            raise ProviderError(
                "The input image is too large for Runway (a data URI may be at most 5 MB); use a "
                "smaller image or an https URL.",
                code="invalid_request",
                permanent=True,
            )
        return uri

    # --- interface ----------------------------------------------------------------------------

    def validate_key(self) -> None:
        self._call("GET", "/v1/organization")

    def submit(self, spec: GenerationSpec) -> str:
        model = self._catalog_model(spec)
        self._require_image_if_image_only(model, spec, hint=" or use gen4.5")
        provider_model = model.provider_model if model else spec.model
        body: dict[str, Any] = {
            "model": provider_model,
            "ratio": ratio_for(spec.size),
            "duration": int(spec.seconds),
        }
        if spec.prompt:
            body["promptText"] = spec.prompt
        if spec.seed is not None:
            body["seed"] = spec.seed
        if spec.image is not None:
            body["promptImage"] = self._prompt_image(spec)
            path = "/v1/image_to_video"
        else:
            path = "/v1/text_to_video"
        task = self._call("POST", path, json=body, creating=True)
        task_id = task.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("Runway accepted the task but returned no id.", code="bad_response", uncertain=True)
        return task_id

    def status(self, job_id: str, *, job_data=None) -> JobStatus:
        task = self._call("GET", f"/v1/tasks/{_q(job_id)}")
        raw = str(task.get("status") or "")
        state = _STATES.get(raw.upper(), JobState.IN_PROGRESS)  # unknown: keep polling
        progress = progress_percent(task.get("progress"))
        outputs: tuple[str, ...] = ()
        error_code = error_message = None
        if state is JobState.COMPLETED:
            progress = 100
            output = task.get("output")
            outputs = tuple(u for u in output if isinstance(u, str)) if isinstance(output, list) else ()
            if not outputs:
                state = JobState.FAILED
                error_code, error_message = "no_output", "Runway reported success but returned no video URL."
        elif state is JobState.FAILED:
            error_code = str(task.get("failureCode") or "generation_failed")
            error_message = str(task.get("failure") or "Runway reported the task as failed without a reason.")[
                :_MESSAGE_LIMIT
            ]
        elif state is JobState.QUEUED:
            progress = 0 if progress is None else progress
        return JobStatus(
            state=state,
            progress=progress,
            raw_status=raw,
            output_urls=outputs,
            error_code=error_code,
            error_message=error_message,
        )

    def download(self, job_id: str, *, url: str | None = None, variant: str = "video", job_data=None) -> Download:
        if variant != "video":
            raise ProviderError("Runway has no thumbnails.", code="unsupported", permanent=True)
        return self._download_output(job_id, url)

    def cancel(self, job_id: str, *, job_data=None) -> None:
        """Cancel a running task. A 404 means it is already cancelled or deleted: success."""
        try:
            self._call("DELETE", f"/v1/tasks/{_q(job_id)}")
        except ProviderError as exc:
            if exc.status_code != 404:
                raise

    def delete(self, job_id: str) -> None:
        self.cancel(job_id)
