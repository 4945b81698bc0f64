"""The API's request parsers (settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]): DRF's, strict.
Their errors reach the client as a 400 in the API's envelope (apps.core.api.exception_handler).
Kept apart from apps.core.api, which imports rest_framework.views (that module reads the parser
setting while it loads)."""

from __future__ import annotations

import json
import re

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http.multipartparser import MultiPartParserError
from rest_framework import exceptions, parsers

from apps.core.errors import ApplicationError

JSON_MAX_DEPTH = 32  # no request body of this API nests deeper; 5,000 levels overflowed the stack


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether the JSON text nests arrays/objects deeper than ``limit`` (brackets inside strings
    do not count), checked before ``json.loads`` recurses into it."""
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return True
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing (400) bodies nested deeper than ``JSON_MAX_DEPTH`` instead of
    letting the decoder overflow the stack (a RecursionError, a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if "\\u0000" in text:  # NUL: no database text column holds it (PostgreSQL refuses it)
            raise exceptions.ParseError("JSON parse error - strings must not contain NUL (\\u0000).")
        if _json_depth_exceeds(text, JSON_MAX_DEPTH):
            raise exceptions.ParseError(f"JSON nests deeper than {JSON_MAX_DEPTH} levels.")
        try:
            data = super().parse(_Replay(text.encode(encoding)), media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON nests deeper than {JSON_MAX_DEPTH} levels.") from None
        if _SURROGATE_ESCAPE.search(text):
            # "\ud800" alone decodes to a string no UTF-8 response (nor database) can hold
            try:
                json.dumps(data, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise exceptions.ParseError("JSON parse error - a string holds an unpaired surrogate.") from None
        return data


class _Replay:
    """A consumed body handed to the parent parser again."""

    def __init__(self, data: bytes):
        self._data = data

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data, self._data = self._data, b""
        else:
            data, self._data = self._data[:size], self._data[size:]
        return data


class _TailStream:
    """Reads through to the request body, keeping its last bytes (to find the closing boundary)."""

    KEEP = 8192

    def __init__(self, stream):
        self._stream = stream
        self.tail = b""

    def read(self, *args) -> bytes:
        data = self._stream.read(*args)
        self.tail = (self.tail + data)[-self.KEEP :]
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, strict: a body cut short (no closing boundary) is refused rather
    than parsed as far as it goes (it created paid jobs), and Django's size and count limits
    (``DATA_UPLOAD_MAX_MEMORY_SIZE``, ``DATA_UPLOAD_MAX_NUMBER_FIELDS``/``FILES``) answer a 400 in
    the API's envelope instead of Django's HTML page."""

    def parse(self, stream, media_type=None, parser_context=None):
        media_type = media_type or ""
        boundary = None
        for part in media_type.split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "boundary":
                boundary = value.strip().strip('"').encode("latin-1", "replace")
        tail = _TailStream(stream)
        try:
            parsed = super().parse(tail, media_type, parser_context)
        except exceptions.ParseError:
            raise
        except RequestDataTooBig:
            raise ApplicationError(
                "The request body is too large: send images as a file part or an image URL, and text "
                "fields under the documented limits.",
                param=None,
                code="request_too_large",
            ) from None
        except (TooManyFieldsSent, TooManyFilesSent) as exc:
            raise ApplicationError(str(exc), code="too_many_fields") from None
        except MultiPartParserError as exc:
            raise exceptions.ParseError(f"Multipart form parse error - {exc}") from None
        if not boundary or b"--" + boundary + b"--" not in tail.tail:
            raise exceptions.ParseError("The multipart body is incomplete: its closing boundary is missing.")
        return parsed
