"""Where videos live: the team's storage (Django ``STORAGES['default']``: local files or S3).

Keys are deterministic (``orgs/<org-slug>/videos/<video_id>.mp4``), so a retried download
overwrites instead of duplicating. Streams are written chunk by chunk: memory stays constant
whatever the size of the video.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.core.files.storage import default_storage

HEARTBEAT_BYTES = 16 * 1024 * 1024


def video_key(org_slug: str, public_id: str) -> str:
    return f"orgs/{org_slug}/videos/{public_id}.mp4"


def thumbnail_key(org_slug: str, public_id: str, extension: str = "jpg") -> str:
    return f"orgs/{org_slug}/thumbnails/{public_id}.{extension}"


def input_key(org_slug: str, public_id: str, extension: str) -> str:
    return f"orgs/{org_slug}/inputs/{public_id}.{extension}"


class StreamingFile(io.RawIOBase):
    """A read-once, file-like view of an iterator of byte chunks that hashes and counts what
    passes through. Storage backends read it with ``chunks()`` (filesystem) or ``read(n)`` (S3
    multipart upload); neither ever holds more than one chunk."""

    def __init__(self, chunks: Iterable[bytes], on_progress: Callable[[int], None] | None = None) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._on_progress = on_progress
        self._next_heartbeat = HEARTBEAT_BYTES
        self.name = "stream"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def _account(self, data: bytes) -> bytes:
        self.sha256.update(data)
        self.size += len(data)
        if self._on_progress is not None and self.size >= self._next_heartbeat:
            self._next_heartbeat += HEARTBEAT_BYTES
            self._on_progress(self.size)
        return data

    def chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        if self._buffer:
            data, self._buffer = self._buffer, b""
            yield self._account(data)
        for chunk in self._chunks:
            if chunk:
                yield self._account(chunk)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(self.chunks())
        # gather whole chunks and join once: ``buffer += chunk`` would copy the growing buffer for
        # every chunk (S3 reads 8 MiB parts out of 1 MiB chunks)
        parts, have = [self._buffer], len(self._buffer)
        while have < size:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if len(data) > size:
            data, self._buffer = data[:size], data[size:]
        else:
            self._buffer = b""
        return self._account(data) if data else b""


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    sha256: str


def save_stream(key: str, chunks: Iterable[bytes], *, on_progress: Callable[[int], None] | None = None) -> StoredFile:
    """Stream ``chunks`` into storage at ``key`` (overwriting), returning size and SHA-256."""
    stream = StreamingFile(chunks, on_progress=on_progress)
    saved = default_storage.save(key, stream)
    if saved != key:  # a backend that refuses to overwrite would break idempotent retries
        default_storage.delete(saved)
        raise RuntimeError(f"storage renamed {key!r} to {saved!r}; configure it to overwrite")
    return StoredFile(key=key, size=stream.size, sha256=stream.sha256.hexdigest())


def save_bytes(key: str, data: bytes) -> StoredFile:
    return save_stream(key, [data])


def delete(key: str) -> None:
    if key and default_storage.exists(key):
        default_storage.delete(key)


def open_for_read(key: str):
    return default_storage.open(key, "rb")
