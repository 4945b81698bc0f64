"""Stream-parse a ``fetchPredictOperation`` answer whose video comes back inline (veo.md §3.3).

Without ``storageUri`` Vertex returns each video as ``response.videos[].bytesBase64Encoded``: tens
of MB of base64 inside one JSON string. The JSON libraries at hand (``json``, and the streaming
``ijson``/``json-stream``) hand a string value over whole, so this module reads the document
chunk by chunk and:

- keeps a small *skeleton* of the document (every other string verbatim, every structural byte),
  in which each inline video is replaced by the placeholder ``"__mr_inline_video_<n>__"``, so the
  operation can be read with :func:`json.loads` once the body has been consumed;
- feeds the first inline video to an incremental base64 decoder, returning decoded bytes as they
  arrive (``decode=True``), or only counts it (``decode=False``, for a status poll).

Memory stays bounded by the skeleton limit plus one chunk, whatever the video size. The only
escapes a JSON encoder may put into base64 are ``\\/`` (for ``/``) and line breaks; anything else
is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from apps.providers.base import ProviderError

PLACEHOLDER = "__mr_inline_video_"
TARGET_KEY = b"bytesBase64Encoded"
SKELETON_MAX = 1024 * 1024
_SPECIAL = re.compile(rb'["\\]')
_KEY_MAX = 64


def _bad(message: str) -> ProviderError:
    return ProviderError(f"Vertex answered with a malformed operation: {message}.", code="bad_response")


def placeholder(index: int) -> str:
    return f"{PLACEHOLDER}{index}__"


class OperationReader:
    """Feed the raw body with :meth:`feed` (any chunking), then read the operation with :meth:`result`."""

    def __init__(self, *, decode: bool, max_bytes: int | None = None, skeleton_max: int = SKELETON_MAX) -> None:
        self.decode = decode
        self.max_bytes = max_bytes
        self.skeleton_max = skeleton_max
        self.skeleton = bytearray()
        self.videos = 0  # inline videos seen so far
        self.decoded = 0  # bytes of the first video decoded so far
        self.encoded = 0  # base64 characters of every inline video seen so far
        self._in_string = False
        self._escape = False
        self._target = False  # the current string is an inline video
        self._streamed = False  # the current target is the first video (decoded when ``decode``)
        # what came between the last string and now: 0 nothing but whitespace, 1 exactly one ":",
        # 2 anything else (a value string follows its key only in state 1)
        self._between = 0
        self._current = bytearray()  # the current ordinary string (its first _KEY_MAX bytes)
        self._last = b""  # the last ordinary string that closed
        self._b64 = bytearray()  # base64 characters not decoded yet (fewer than 4 after a feed)
        self._done_first = False

    # --- input ---------------------------------------------------------------------------------

    def _keep(self, data: bytes) -> None:
        if data:
            self.skeleton += data
            if len(self.skeleton) > self.skeleton_max:
                raise _bad(f"more than {self.skeleton_max} bytes besides the video")

    def _video_chars(self, data: bytes, out: bytearray) -> None:
        self.encoded += len(data)
        if not (self.decode and self._streamed) or not data:
            return
        self._b64 += data
        whole = len(self._b64) // 4 * 4
        if whole:
            out += self._decode(bytes(self._b64[:whole]))
            del self._b64[:whole]

    def _decode(self, chars: bytes) -> bytes:
        try:
            data = base64.b64decode(chars, validate=True)
        except (binascii.Error, ValueError):
            raise _bad("the inline video is not valid base64") from None
        self.decoded += len(data)
        if self.max_bytes is not None and self.decoded > self.max_bytes:
            raise ProviderError(
                f"The inline video is larger than the {self.max_bytes}-byte limit.", code="too_large", permanent=True
            )
        return data

    def _video_escape(self, char: bytes, out: bytearray) -> None:
        if char == b"/":
            self._video_chars(b"/", out)
        elif char not in (b"n", b"r"):
            raise _bad("an unexpected escape inside the inline video")

    def _video_end(self, out: bytearray) -> None:
        if self.decode and self._streamed and self._b64:
            rest = bytes(self._b64) + b"=" * (-len(self._b64) % 4)
            self._b64.clear()
            out += self._decode(rest)
        if self._streamed:
            self._done_first = True

    def feed(self, data: bytes) -> bytes:
        """Consume the next piece of the body; return the video bytes it completed (maybe none)."""
        out = bytearray()
        pos, end = 0, len(data)
        while pos < end:
            if self._escape:
                char = data[pos : pos + 1]
                self._escape = False
                if self._target:
                    self._video_escape(char, out)
                else:
                    self._keep(char)
                    self._current += char
                pos += 1
                continue
            if not self._in_string:
                quote = data.find(b'"', pos)
                stop = end if quote < 0 else quote
                structural = data[pos:stop]
                self._keep(structural)
                stripped = structural.strip()
                if stripped:
                    self._between = 1 if self._between == 0 and stripped == b":" else 2
                if quote < 0:
                    break
                self._in_string = True
                self._target = self._between == 1 and self._last == TARGET_KEY
                self._between = 0
                if self._target:
                    self._keep(b'"' + placeholder(self.videos).encode() + b'"')
                    self._streamed = self.videos == 0
                    self.videos += 1
                else:
                    self._keep(b'"')
                    self._current.clear()
                pos = quote + 1
                continue
            match = _SPECIAL.search(data, pos)
            stop = end if match is None else match.start()
            piece = data[pos:stop]
            if self._target:
                self._video_chars(piece, out)
            else:
                self._keep(piece)
                if len(self._current) <= _KEY_MAX:
                    self._current += piece[: _KEY_MAX + 1]
            if match is None:
                break
            if data[stop] == 0x5C:  # backslash
                self._escape = True
                if not self._target:
                    self._keep(b"\\")
                    self._current += b"\\"
            else:  # the closing quote
                self._in_string = False
                if self._target:
                    self._video_end(out)
                    self._target = self._streamed = False
                    self._last = b""
                else:
                    self._keep(b'"')
                    self._last = bytes(self._current)
            pos = stop + 1
        return bytes(out)

    # --- output --------------------------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        """True once the first inline video has begun."""
        return self.videos > 0

    @property
    def first_complete(self) -> bool:
        return self._done_first

    def result(self) -> Any:
        """The operation as parsed JSON, inline videos replaced by their placeholders."""
        if self._in_string or self._escape:
            raise _bad("the body ended inside a string")
        try:
            return json.loads(bytes(self.skeleton))
        except ValueError:
            return None


__all__ = ["PLACEHOLDER", "OperationReader", "placeholder"]
