"""``/inputs/<signed>/``: a stored input image, for the supplier that was given the signed URL."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from apps.generations.inputs import key_from_token

_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


@require_GET
def input_image(request: HttpRequest, token: str) -> FileResponse:
    key = key_from_token(token)
    if key is None or not default_storage.exists(key):
        raise Http404
    content_type = _TYPES.get(key.rsplit(".", 1)[-1].lower())
    if content_type is None:
        raise Http404
    response = FileResponse(default_storage.open(key, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response
