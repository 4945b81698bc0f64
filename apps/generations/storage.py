"""Where videos live: the team's storage (Django ``STORAGES['default']``: local files or S3).

Keys are deterministic (``orgs/<org-slug>/videos/<video_id>.mp4``), so a retried download
overwrites instead of duplicating. Streams are written chunk by chunk: memory stays constant
whatever the size of the video.

Local files (``FileSystemStorage``) are written by :func:`_save_file`, not through Django's
``save``: into a temporary file next to the final one, renamed over it only once the stream ended
whole, so a cut download never leaves a partial file under the key nor replaces a good one. Files
are not fsynced (neither were they by ``FileSystemStorage``); ``os.replace`` is atomic for readers.
The writes run on a helper thread, overlapping the socket reads and the SHA-256 of the next
chunks: profiled (bench/RESULTS.md), the serial loop's time was the kernel's page-cache writes,
SHA-256 and the socket reads, one after the other; the Python per-chunk overhead is a few per cent.

Where the platform has it, the temporary file is written with ``O_DIRECT`` (:class:`_FileWriter`):
8 MiB blocks from one reused, page-aligned buffer go straight to the device, bypassing the page
cache. Profiled at 2 GiB (``perf``: 94 % of a buffered ``dd`` in ``copy_folio_from_iter_atomic``),
a buffered write of a large file is paced by the first touch of every new page-cache page, which
on a VM whose freed memory goes back to the host runs at 250-800 MB/s; direct writes ran at
1.2-2.1 GB/s whatever the memory state, and a video just stored is not read back at once. A file
system that refuses ``O_DIRECT`` (at the open or the first write) is written buffered instead.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import mmap
import os
import queue
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.storage.filesystem import safe_makedirs
from django.core.files.utils import validate_file_name

HEARTBEAT_BYTES = 16 * 1024 * 1024
# chunks (1 MiB from http.stream_download) read ahead of the writer thread: bounds the memory
WRITE_QUEUE_CHUNKS = 8
# O_DIRECT: bypass the page cache for local files (False: buffered writes, as Django's own save)
DIRECT_IO = hasattr(os, "O_DIRECT")
DIRECT_BLOCK_BYTES = 8 * 1024 * 1024  # one write per block; a multiple of DIRECT_ALIGN
DIRECT_ALIGN = 4096  # O_DIRECT's buffers, offsets and lengths: multiples of the device's block


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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _FileWriter:
    """Writes the chunks of one file to ``fd``, directly (``O_DIRECT``) or through the page cache.

    Direct writes must start, end and sit in memory on ``DIRECT_ALIGN`` boundaries, which the
    socket's chunks do not: they are copied into an aligned block (an anonymous ``mmap``, reused:
    its pages stay resident) written once full. The last block is padded with zeros to the
    alignment and the file cut back to its length. A file system that answers ``EINVAL`` to the
    first direct write gets the same blocks buffered (``O_DIRECT`` cleared on the descriptor)."""

    def __init__(self, fd: int, *, direct: bool) -> None:
        self.fd = fd
        self.direct = direct
        self.written = 0
        self._fill = 0
        self._block = mmap.mmap(-1, DIRECT_BLOCK_BYTES) if direct else None
        self._view = memoryview(self._block) if direct else None

    def write(self, chunk: bytes) -> None:
        if self._view is None:
            _write_all(self.fd, chunk)
            self.written += len(chunk)
            return
        data = memoryview(chunk)
        while data:
            n = min(len(data), DIRECT_BLOCK_BYTES - self._fill)
            self._view[self._fill : self._fill + n] = data[:n]
            self._fill += n
            data = data[n:]
            if self._fill == DIRECT_BLOCK_BYTES:
                self._flush(DIRECT_BLOCK_BYTES)

    def _flush(self, length: int) -> None:
        try:
            _write_all(self.fd, self._view[:length])
        except OSError as exc:
            if exc.errno != errno.EINVAL or self.written or not self.direct:
                raise
            self._buffered()
            _write_all(self.fd, self._view[:length])
        self.written += length
        self._fill = 0

    def _buffered(self) -> None:
        import fcntl  # POSIX only, as O_DIRECT: imported where it is needed

        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        self.direct = False

    def finish(self) -> None:
        """Write what is left of the last block and cut the padding off."""
        if self._view is None or not self._fill:
            return
        size = self.written + self._fill
        padded = -(-self._fill // DIRECT_ALIGN) * DIRECT_ALIGN
        self._view[self._fill : padded] = bytes(padded - self._fill)
        self._flush(padded)
        os.ftruncate(self.fd, size)
        self.written = size

    def close(self) -> None:
        if self._view is not None:
            self._view.release()
            # a failed write's traceback may still hold a slice of the block: then it is unmapped
            # when that goes, not now
            with contextlib.suppress(BufferError):
                self._block.close()
            self._view = self._block = None


def _write_pipelined(fd: int, chunks: Iterator[bytes], *, direct: bool = False) -> None:
    """Write ``chunks`` to ``fd`` on a helper thread while this one reads (and hashes) the next:
    ``os.write`` and ``hashlib`` release the GIL, so the writes overlap the socket reads and the
    SHA-256. Whatever fails (the stream or a write) is raised here, after the thread ended."""
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=WRITE_QUEUE_CHUNKS)
    failed: list[BaseException] = []
    stop = threading.Event()
    out = _FileWriter(fd, direct=direct)

    def writer() -> None:
        while (chunk := pending.get()) is not None:
            if stop.is_set():
                continue  # drain: the reader never blocks on a dead writer
            try:
                out.write(chunk)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the reading thread
                failed.append(exc)
                stop.set()

    thread = threading.Thread(target=writer, name="save-stream-writer", daemon=True)
    thread.start()
    try:
        for chunk in chunks:
            if stop.is_set():
                break
            pending.put(chunk)
    except BaseException:
        stop.set()
        raise
    finally:
        pending.put(None)
        thread.join()
    try:
        if failed:
            raise failed[0]
        out.finish()
    finally:
        out.close()


def _open_new(path: str) -> tuple[int, bool]:
    """Create ``path`` for writing: (descriptor, whether it is ``O_DIRECT``). A file system that
    refuses ``O_DIRECT`` at the open (some create the file first) gets a buffered one."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    if DIRECT_IO:
        try:
            return os.open(path, flags | os.O_DIRECT, 0o666), True
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return os.open(path, flags, 0o666), False


def _save_file(storage: FileSystemStorage, key: str, stream: StreamingFile) -> None:
    """Write ``stream`` to a temporary file beside ``key``'s path, then rename it over the path."""
    validate_file_name(key, allow_relative_path=True)
    path = storage.path(key)  # safe_join: refuses a key outside the storage's location
    directory = os.path.dirname(path)
    if storage.directory_permissions_mode is not None:
        safe_makedirs(directory, storage.directory_permissions_mode, exist_ok=True)
    else:
        os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.{secrets.token_hex(6)}.part"
    fd, direct = _open_new(temporary)
    try:
        try:
            _write_pipelined(fd, stream.chunks(), direct=direct)  # hashed and counted as they pass
        finally:
            os.close(fd)
        if storage.file_permissions_mode is not None:
            os.chmod(temporary, storage.file_permissions_mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _direct_to_file(key: str) -> bool:
    """The storage is Django's own FileSystemStorage (``_save`` not overridden), overwriting."""
    backend = default_storage.__class__  # the LazyObject proxies __class__ (not type()) to the backend
    return (
        issubclass(backend, FileSystemStorage)
        and backend._save is FileSystemStorage._save
        and default_storage.get_available_name(key) == key
    )


def save_stream(key: str, chunks: Iterable[bytes], *, on_progress: Callable[[int], None] | None = None) -> StoredFile:
    """Stream ``chunks`` into storage at ``key`` (overwriting), returning size and SHA-256.

    Whatever the ``chunks`` raise (a download cut short, over its size cap) is raised here, and
    then nothing is stored under ``key`` (local files; S3 aborts its multipart upload)."""
    stream = StreamingFile(chunks, on_progress=on_progress)
    if _direct_to_file(key):
        _save_file(default_storage, key, stream)
        return StoredFile(key=key, size=stream.size, sha256=stream.sha256.hexdigest())
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


READ_CHUNK = 1024 * 1024


def iter_chunks(key: str, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
    """The stored file as chunks, one in memory at a time. On S3 the object's body is read as it
    arrives (django-storages' file would first copy the whole object into a temporary file);
    elsewhere the storage's file is read piece by piece."""
    bucket = getattr(default_storage, "bucket", None) if hasattr(default_storage, "bucket_name") else None
    if bucket is not None:
        from storages.utils import clean_name

        # the object's name as django-storages' own _open computes it (its location prefix)
        body = bucket.Object(default_storage._normalize_name(clean_name(key))).get()["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()
        return
    with default_storage.open(key, "rb") as fh:
        while chunk := fh.read(chunk_size):
            yield chunk
