"""Serving a stored file (Django ``STORAGES['default']``: local files or S3) to the one who may see
it. The caller has checked that; this module only decides *how* the bytes get there."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect


@dataclass(frozen=True)
class Download:
    """A stored file to hand out: its storage key, the name the client saves it as, its type."""

    key: str
    filename: str
    content_type: str


def presigned_url(key: str, *, filename: str | None = None) -> str | None:
    """A short-lived direct URL where the backend offers one (S3), else None (stream it)."""
    if not hasattr(default_storage, "bucket_name"):
        return None
    params = {"ResponseContentDisposition": f'inline; filename="{filename}"'} if filename else None
    return default_storage.url(key, parameters=params)


def stored_file_response(download: Download) -> HttpResponse:
    """A short-lived presigned redirect on S3, else the file streamed from storage."""
    url = presigned_url(download.key, filename=download.filename)
    if url:
        return HttpResponseRedirect(url)
    return FileResponse(
        default_storage.open(download.key, "rb"), content_type=download.content_type, filename=download.filename
    )
