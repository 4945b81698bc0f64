"""The one check for uploaded input images (image-to-video), used by both APIs and the Playground.

An image is judged by its bytes, never by its name or declared type, and in this order, so a
small file that declares a huge picture (an "image bomb") is refused before anything is decoded:

1. its length in bytes (``INPUT_IMAGE_MAX_BYTES``);
2. its header only: ``Image.open`` is lazy and reads just the format and the declared size.
   Only the allowed formats are tried, so no other Pillow plugin parses untrusted bytes. The
   declared size must be within ``INPUT_IMAGE_MAX_SIDE`` on each side and
   ``INPUT_IMAGE_MAX_PIXELS`` in all; Pillow's own decompression-bomb check is an error here,
   its warning included;
3. only then the pixels: ``verify()`` (checksums, structure) and a full decode (``verify()``
   misses truncated pixel data), so the memory a decode can take is bounded by the limits
   above: at most 4 bytes a pixel, 160 MB at the default 40 megapixels. A JPEG is decoded at
   reduced scale, which reads every byte of it for a fraction of the memory; a WebP costs about
   four times as much a pixel, so it may have a quarter of the pixels (``PIXEL_COST``).

Errors are :class:`ApplicationError` naming ``input_reference`` (the API's name for the field;
the native API and the Playground rename it), so a bad image is a 400 or a form error, never a 500.
"""

from __future__ import annotations

import io
import warnings

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from apps.core.errors import ApplicationError

# Pillow format -> (content type, file extension): the images we accept and hand to providers
IMAGE_TYPES = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}
# Pillow decodes a WebP through libwebp's animation decoder, which keeps two canvases of its own
# besides the copy it hands over: about four times a PNG's memory a pixel (bench/image_upload.py),
# so a WebP may have a quarter of the pixels.
PIXEL_COST = {"WEBP": 4}
MIN_SIDE = 16
PARAM = "input_reference"


def _unreadable() -> ApplicationError:
    return ApplicationError("The image could not be read. Upload a PNG, JPEG or WebP file.", param=PARAM)


def max_pixels(fmt: str) -> int:
    return settings.INPUT_IMAGE_MAX_PIXELS // PIXEL_COST.get(fmt, 1)


def _too_large(fmt: str | None = None, width: int | None = None, height: int | None = None) -> ApplicationError:
    side, pixels = settings.INPUT_IMAGE_MAX_SIDE, max_pixels(fmt or "")
    declared = f"The image is {width}x{height} pixels" if width else "The image is too large"
    kind = " for WebP images" if fmt == "WEBP" else ""
    return ApplicationError(
        f"{declared}; the limit{kind} is {side} pixels on each side and {pixels / 1e6:g} megapixels in all.",
        param=PARAM,
        code="image_too_large",
    )


def validate_image(data: bytes, declared_type: str | None) -> tuple[bytes, str, str]:
    """Check an uploaded image is a PNG, JPEG or WebP within the limits, decoding it last.

    Returns (bytes, content type, extension). The type comes from the file's content."""
    limit = settings.INPUT_IMAGE_MAX_BYTES
    if len(data) > limit:
        raise ApplicationError(
            f"The image is {len(data) / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB.", param=PARAM
        )
    formats = tuple(IMAGE_TYPES)
    # The warning filter is process-wide state; the web and Celery workers are single-threaded
    # processes (gunicorn sync, prefork), and the filter only turns Pillow's warning into an error.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=formats) as img:  # the header only
                fmt, (width, height) = img.format, img.size
                content_type, extension = _check_header(fmt, width, height, declared_type)
                img.verify()
            with Image.open(io.BytesIO(data), formats=formats) as img:
                if fmt == "JPEG":
                    img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
                img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_large() from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            raise _unreadable() from None
    return data, content_type, extension


def _check_header(fmt: str, width: int, height: int, declared_type: str | None) -> tuple[str, str]:
    """The declared size and type, from the header alone. Returns (content type, extension)."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ApplicationError(f"The image must be at least {MIN_SIDE} pixels on each side.", param=PARAM)
    if max(width, height) > settings.INPUT_IMAGE_MAX_SIDE or width * height > max_pixels(fmt):
        raise _too_large(fmt, width, height)
    content_type, extension = IMAGE_TYPES[fmt]
    if declared_type and declared_type.split(";")[0].strip() not in (content_type, "application/octet-stream"):
        raise ApplicationError(f"The file says it is {declared_type} but it is a {fmt} image.", param=PARAM)
    return content_type, extension
