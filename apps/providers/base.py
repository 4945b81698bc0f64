"""The provider family: one interface, plain dataclasses in and out, one exception type.

Adapters never touch the database or tenant data. They are built with a decrypted key and a base
URL, speak one provider's wire contract, and raise only :class:`ProviderError`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar


class JobState(enum.StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True)
class InputImage:
    """An input image for image-to-video: bytes with their content type, or a URL."""

    data: bytes | None = None
    content_type: str | None = None
    url: str | None = None

    def __repr__(self) -> str:  # never dump image bytes into logs
        size = len(self.data) if self.data is not None else 0
        return f"InputImage(content_type={self.content_type!r}, bytes={size}, url={self.url!r})"


@dataclass(frozen=True)
class GenerationSpec:
    """What to generate, in MediaRouter's provider-neutral terms.

    ``model`` is the provider's own model id (no ``provider/`` prefix). ``size`` is ``WxH`` in pixels
    (e.g. ``1280x720``); adapters map it to their aspect ratio / resolution / mode.
    ``client_reference`` is MediaRouter's generation id, passed to providers that can store it
    (Kling ``external_task_id``) so an uncertain submit can be looked up instead of repeated.
    """

    model: str
    prompt: str
    seconds: int
    size: str
    image: InputImage | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    remix_of: str | None = None  # provider job id of the source video, for remix
    client_reference: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    progress: int | None = None  # 0-100
    raw_status: str = ""
    output_urls: tuple[str, ...] = ()
    thumbnail_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    poll_after: float | None = None  # seconds, the provider's hint for the next poll


@dataclass(frozen=True)
class Download:
    """A streamed download. Iterate ``chunks`` once; call ``close()`` when done (or use ``with``)."""

    chunks: Iterator[bytes]
    content_type: str | None = None
    content_length: int | None = None
    _close: Any = None

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProviderError(Exception):
    """The only exception an adapter raises.

    ``permanent`` errors (bad key, validation, moderation, balance exhausted) must not be retried;
    transient ones (429, 5xx, timeouts, connection errors) may be, after ``retry_after`` seconds
    when the provider said so. ``uncertain`` marks a request whose outcome is unknown (a timeout
    after the request was sent): the caller must reconcile, never blindly repeat it.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "provider_error",
        permanent: bool = False,
        retry_after: float | None = None,
        status_code: int | None = None,
        uncertain: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent
        self.retry_after = retry_after
        self.status_code = status_code
        self.uncertain = uncertain

    @property
    def is_auth_error(self) -> bool:
        return self.code in ("invalid_api_key", "authentication_error", "permission_denied")

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.message!r}, code={self.code!r}, permanent={self.permanent}, "
            f"retry_after={self.retry_after}, status_code={self.status_code})"
        )


@dataclass(frozen=True)
class Credentials:
    """A decrypted provider key. ``repr`` never shows the secret."""

    api_key: str | None = None
    access_key: str | None = None
    secret_key: str | None = None

    def __repr__(self) -> str:
        return "Credentials(***)"

    __str__ = __repr__


class VideoProvider:
    """Base class of every adapter. Subclasses set the class attributes and implement the methods."""

    slug: ClassVar[str]
    label: ClassVar[str]
    requires_key: ClassVar[bool] = True
    supports_cancel: ClassVar[bool] = False
    supports_remix: ClassVar[bool] = False
    supports_delete: ClassVar[bool] = False
    supports_thumbnail: ClassVar[bool] = False
    # how the key form looks: a list of field names, one list per accepted shape
    key_shapes: ClassVar[tuple[tuple[str, ...], ...]] = (("api_key",),)
    # where the base URL comes from: a settings name and its default (no setting: no network)
    base_url_setting: ClassVar[str | None] = None
    default_base_url: ClassVar[str] = ""

    def __init__(self, credentials: Credentials | None, base_url: str) -> None:
        self.credentials = credentials or Credentials()
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base_url={self.base_url!r}>"

    def validate_key(self) -> None:
        """A cheap authenticated call. Returns None when the key works, raises ProviderError."""
        raise NotImplementedError

    def submit(self, spec: GenerationSpec) -> str:
        """Create the job at the provider and return its job id."""
        raise NotImplementedError

    def status(self, job_id: str) -> JobStatus:
        raise NotImplementedError

    def download(self, job_id: str, *, url: str | None = None, variant: str = "video") -> Download:
        """Stream the finished output (``variant`` ``video`` or ``thumbnail``)."""
        raise NotImplementedError

    def _catalog_model(self, spec: GenerationSpec):
        """The catalog entry of ``spec.model`` for this provider, or None for an id the catalog
        does not know (sent upstream as is)."""
        from apps.providers import catalog

        try:
            return catalog.get_model(f"{self.slug}/{spec.model}")
        except catalog.UnknownModel:
            return None

    @staticmethod
    def _require_image_if_image_only(model, spec: GenerationSpec, hint: str = "") -> None:
        """Refuse, before any request, a text-only call to a model that needs an input image."""
        from apps.providers import catalog

        if spec.image is None and model is not None and catalog.TEXT_TO_VIDEO not in model.capabilities:
            raise ProviderError(
                f"{model.label} makes videos from an image only; add an input image{hint}.",
                code="invalid_request",
                permanent=True,
            )

    def _download_output(self, job_id: str, url: str | None) -> Download:
        """For providers whose finished job lists output URLs (which expire): stream ``url``, or
        re-read the job for a fresh one. The provider's own host may be private (an emulator, a
        gateway on the same network); any other host must be public."""
        from apps.providers import http

        if url is None:
            job = self.status(job_id)
            if job.state is not JobState.COMPLETED or not job.output_urls:
                raise ProviderError(
                    f"{self.label} task {job_id} is {job.raw_status or 'not finished'}; nothing to download yet.",
                    code="not_ready",
                )
            url = job.output_urls[0]
        return http.stream_download(
            url, max_bytes=http.max_download_bytes(), allowed_private_hosts=(http.origin(self.base_url),)
        )

    def find_by_reference(self, client_reference: str) -> str | None:
        """Look up a job by MediaRouter's reference after an uncertain submit; None if absent."""
        return None

    def cancel(self, job_id: str) -> None:
        raise ProviderError("This provider cannot cancel jobs.", code="unsupported", permanent=True)

    def remix(self, job_id: str, spec: GenerationSpec) -> str:
        raise ProviderError("This provider cannot remix videos.", code="unsupported", permanent=True)

    def delete(self, job_id: str) -> None:
        raise ProviderError("This provider cannot delete jobs.", code="unsupported", permanent=True)


__all__ = [
    "Credentials",
    "Download",
    "GenerationSpec",
    "InputImage",
    "JobState",
    "JobStatus",
    "ProviderError",
    "VideoProvider",
]
