"""The request parser both API shapes share: strict field types, images (data URIs and URLs,
OpenAI's ``input_reference``), sizes and aspect ratios, integer and date query parameters, the
``Idempotency-Key`` header and the member behind a token. Errors are ApplicationErrors naming the
parameter, so they reach the client as a 400 in the error envelope.

Parsing is strict because a lenient guess spends money: a prompt must be a JSON string (``5`` is
refused, not turned into ``"5"``), numbers are JSON integers or ASCII digits (never ``"²"`` or
fullwidth digits), and an ambiguous image (a file part *and* an image URL) is refused."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date

from django.conf import settings
from rest_framework import serializers

from apps.accounts.models import Membership
from apps.billing.forms import DATE_MAX, DATE_MIN  # the dates a query may name (the pages' bounds)
from apps.core.errors import ApplicationError

IDEMPOTENCY_KEY_MAX = 200  # what the database keeps; a longer key is refused, never cut
SIZE_RE = re.compile(r"^[0-9]{1,5}x[0-9]{1,5}$")
ASCII_INT_RE = re.compile(r"^[+-]?[0-9]{1,18}$")


class StrictCharField(serializers.CharField):
    """A JSON string (or a form part) only: DRF's CharField turns ``5`` or ``true`` into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class SecondsField(StrictCharField):
    """OpenAI's ``seconds``: a string (the contract), or a JSON integer (SDKs send 8); booleans,
    floats and other types are refused. ``parse_seconds`` then wants ASCII digits."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, or ASCII digits in a form part. DRF's IntegerField also takes ``true``,
    ``4.0`` and other scripts' digits (``int()`` reads fullwidth digits)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and not ASCII_INT_RE.match(data.strip()):
            self.fail("invalid")
        return super().to_internal_value(data)


def idempotency_key(request) -> str:
    """The ``Idempotency-Key`` header, stripped ("" if none). A key longer than
    ``IDEMPOTENCY_KEY_MAX`` is refused: cutting it would make two different keys collide."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise ApplicationError(
            f"Idempotency-Key is limited to {IDEMPOTENCY_KEY_MAX} characters.",
            param="Idempotency-Key",
            code="invalid_value",
        )
    return key


def membership(request) -> Membership:
    """The token's member of the request's organization."""
    return Membership.objects.select_related("organization", "user").get(
        organization=request.organization, user=request.user
    )


def token_membership(request) -> Membership | None:
    """The member the API token authenticated (read with the token, no query; possibly from the
    identity cache): what a create checks before its lock, to read it again under the lock."""
    return getattr(request.auth, "membership", None)


def decode_image(value: str, *, param: str = "image") -> tuple[bytes | None, str | None, str | None]:
    """An https URL or a ``data:<type>;base64,...`` URI. Returns (bytes, type, url)."""
    if value.startswith("data:"):
        header, _, payload = value.partition(",")
        if ";base64" not in header:
            raise ApplicationError(f"{param} data URIs must be base64-encoded.", param=param)
        # refuse an oversized payload from its length, before decoding it into memory
        limit = settings.INPUT_IMAGE_MAX_BYTES
        if len(payload) // 4 * 3 > limit + 2:
            raise ApplicationError(
                f"The image is about {len(payload) * 3 / 4e6:.1f} MB; the limit is {limit / 1e6:.0f} MB.", param=param
            )
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ApplicationError(f"{param} is not valid base64.", param=param) from None
        return data, header[5:].split(";")[0] or None, None
    if value.startswith(("https://", "http://")):
        return None, None, value
    raise ApplicationError(f"{param} must be an https URL or a data: URI.", param=param)


_REF_FIELDS = ("image_url", "file_id")
_REF_KEYS = tuple(f"input_reference[{name}]" for name in _REF_FIELDS)  # multipart's bracketed keys


def input_reference(request) -> tuple[bytes | None, str | None]:
    """OpenAI's ``input_reference`` as (image bytes, image URL): a multipart file part, an object
    ``{"image_url": ...}`` in JSON, or bracketed multipart keys ``input_reference[image_url]``."""
    upload = request.FILES.get("input_reference")
    if upload is not None:
        form = request.POST  # the text parts only (request.data also holds the files)
        if any(form.get(k) not in (None, "") for k in ("input_reference", *_REF_KEYS)):
            raise ApplicationError(
                "Send input_reference once: a file upload or an image_url, not both.", param="input_reference"
            )
        # the image's type is sniffed from its bytes by the service; the SDK's part type is a guess.
        # One byte past the limit at most: the service reports the size, never more memory.
        return upload.read(settings.INPUT_IMAGE_MAX_BYTES + 1), None
    data = request.data
    if not hasattr(data, "get"):
        raise ApplicationError("The request body must be a JSON object.")
    ref = data.get("input_reference")
    if ref in (None, ""):
        ref = {name: data.get(f"input_reference[{name}]") for name in _REF_FIELDS}
        ref = {k: v for k, v in ref.items() if v not in (None, "")} or None
    if ref is None:
        return None, None
    if not isinstance(ref, dict):
        raise ApplicationError(
            'input_reference must be a file upload or an object {"image_url": ...}.', param="input_reference"
        )
    if bool(ref.get("image_url")) == bool(ref.get("file_id")):
        raise ApplicationError("input_reference needs exactly one of image_url and file_id.", param="input_reference")
    if ref.get("file_id"):
        raise ApplicationError(
            "input_reference.file_id is not supported here: upload the image or pass an image_url.",
            param="input_reference",
            code="unsupported_value",
        )
    if not isinstance(ref["image_url"], str):
        raise ApplicationError("input_reference.image_url must be a string.", param="input_reference")
    image, _type, url = decode_image(ref["image_url"], param="input_reference")
    if image is not None:
        return image, None
    return None, url


def parse_aspect_ratio(text: str) -> tuple[int, int]:
    """``16:9`` (or a pixel pair such as ``1280:720``, or ``WxH``) as (width, height)."""
    text = text.strip().lower().replace("x", ":")
    try:
        w, h = (int(part) for part in text.split(":"))
    except ValueError:
        raise ApplicationError("aspect_ratio must look like 16:9.", param="aspect_ratio") from None
    if w <= 0 or h <= 0:
        raise ApplicationError("aspect_ratio must look like 16:9.", param="aspect_ratio")
    return w, h


def parse_size(value: str) -> str:
    """A ``WxH`` size (a serializer field's validator: raises serializers.ValidationError)."""
    value = value.strip().lower()
    if not SIZE_RE.match(value):
        raise serializers.ValidationError("size must look like 1280x720 (width x height).")
    return value


def parse_seconds(value: str) -> int:
    """OpenAI's ``seconds``, a string of whole seconds (a serializer field's validator)."""
    value = value.strip()
    # ASCII digits only: str.isdigit() is also true for "²" (int() then fails) and fullwidth digits
    if not re.fullmatch(r"[0-9]{1,4}", value) or int(value) <= 0:
        raise serializers.ValidationError('seconds must be a whole number of seconds, like "4".')
    return int(value)


def int_param(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    if not ASCII_INT_RE.match(raw.strip()):
        raise ApplicationError(f"{name} must be an integer.", param=name)
    value = int(raw)
    if not low <= value <= high:
        raise ApplicationError(f"{name} must be between {low} and {high}.", param=name)
    return value


def bool_param(request, name: str) -> bool | None:
    """``?name=true`` / ``false`` (None when absent); anything else is a 400 naming the parameter,
    never silently "no filter"."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise ApplicationError(f"{name} must be true or false.", param=name, code="invalid_value")
    return value == "true"


def date_param(request, name: str, default: date) -> date:
    raw = request.query_params.get(name)
    if not raw:
        return default
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ApplicationError(f"{name} must be a date like 2026-11-01.", param=name) from None
    if not DATE_MIN <= value <= DATE_MAX:
        raise ApplicationError(f"{name} must be between {DATE_MIN} and {DATE_MAX}.", param=name)
    return value
