"""Local files: ``save_stream`` writes a temporary file beside the key (the writes on a helper
thread, ``O_DIRECT`` where the file system takes it, else buffered) and renames it over the key
only when the whole stream arrived."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest
from django.core.files.storage import default_storage

from apps.generations import storage

KEY = "orgs/test-storage/videos/vid_storage.mp4"


@pytest.fixture
def key():
    yield KEY
    storage.delete(KEY)


def _entries(key: str) -> list[str]:
    return sorted(os.listdir(os.path.dirname(default_storage.path(key))))


def _chunks(n: int, size: int = 1024 * 1024):
    for i in range(n):
        yield bytes([i % 251]) * size


def test_a_stream_is_stored_whole_with_its_size_and_sha256(key):
    data = b"".join(_chunks(20, 300_001))
    stored = storage.save_stream(key, _chunks(20, 300_001))
    assert stored.key == key and stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    with default_storage.open(key, "rb") as fh:
        assert fh.read() == data
    assert _entries(key) == ["vid_storage.mp4"]  # no temporary file left behind


def test_a_retry_overwrites_the_same_key(key):
    storage.save_stream(key, [b"first attempt, longer than the second"])
    stored = storage.save_stream(key, [b"second"])
    with default_storage.open(key, "rb") as fh:
        assert fh.read() == b"second"
    assert stored.size == 6 and _entries(key) == ["vid_storage.mp4"]


def test_a_stream_cut_short_stores_nothing_and_keeps_the_previous_file(key):
    storage.save_stream(key, [b"a good earlier copy"])

    def cut():
        yield from _chunks(3)
        raise ConnectionError("cut mid-stream")

    with pytest.raises(ConnectionError):
        storage.save_stream(key, cut())
    with default_storage.open(key, "rb") as fh:
        assert fh.read() == b"a good earlier copy"
    assert _entries(key) == ["vid_storage.mp4"]


def test_a_first_download_cut_short_leaves_no_file(key):
    def cut():
        yield b"x" * 1000
        raise ConnectionError("cut")

    with pytest.raises(ConnectionError):
        storage.save_stream(key, cut())
    assert not default_storage.exists(key)
    assert _entries(key) == []


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
def test_a_failed_write_stops_the_download_and_is_raised(key, monkeypatch, direct):
    monkeypatch.setattr(storage, "DIRECT_IO", direct)
    pulled = 0

    def counted():
        nonlocal pulled
        for chunk in _chunks(1000, 64 * 1024):  # 64 MB: eight direct blocks
            pulled += 1
            yield chunk

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "_write_all", disk_full)
    with pytest.raises(OSError) as info:
        storage.save_stream(key, counted())
    assert info.value.errno == errno.ENOSPC
    assert pulled < 1000  # reading stopped soon after the writer failed (not the whole video)
    assert not default_storage.exists(key) and _entries(key) == []


def test_progress_is_reported_every_heartbeat(key):
    seen = []
    storage.save_stream(key, _chunks(40), on_progress=seen.append)
    assert seen == [16 * 1024 * 1024, 32 * 1024 * 1024]


def test_file_permissions_mode_of_the_storage_applies(key, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "file_permissions_mode": 0o640},
        },
    }
    storage.save_stream(key, [b"mode"])
    assert os.stat(default_storage.path(key)).st_mode & 0o777 == 0o640


def test_a_key_outside_the_storage_is_refused():
    from django.core.exceptions import SuspiciousFileOperation

    with pytest.raises(SuspiciousFileOperation):
        storage.save_stream("../outside.mp4", [b"x"])


def test_other_backends_still_go_through_their_own_save(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    stored = storage.save_stream(KEY, _chunks(3, 1000))
    with default_storage.open(KEY, "rb") as fh:
        data = fh.read()
    assert data == b"".join(_chunks(3, 1000)) and stored.sha256 == hashlib.sha256(data).hexdigest()


# --- O_DIRECT ----------------------------------------------------------------------------------


@pytest.fixture
def small_blocks(monkeypatch):
    """Direct blocks of 64 KiB, so that a few hundred KiB cross several of them."""
    monkeypatch.setattr(storage, "DIRECT_BLOCK_BYTES", 64 * 1024)


@pytest.fixture
def opened(monkeypatch):
    """What each temporary file was opened as: (direct reported, O_DIRECT set on the descriptor)."""
    seen: list[tuple[bool, bool]] = []
    real = storage._open_new

    def spy(path):
        fd, direct = real(path)
        seen.append((direct, bool(_flags(fd) & os.O_DIRECT)))
        return fd, direct

    monkeypatch.setattr(storage, "_open_new", spy)
    return seen


def _flags(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_GETFL)


def _odd_chunks(total: int):
    """``total`` bytes of a non-repeating pattern in chunks of uneven sizes (1 byte to ~100 KiB)."""
    sizes, sent, i = [1, 4095, 100_003, 7, 65_536, 33_333], 0, 0
    while sent < total:
        n = min(sizes[i % len(sizes)], total - sent)
        yield bytes((sent + j) * 7 % 256 for j in range(n)) if n < 64 else os.urandom(n)
        sent, i = sent + n, i + 1


def test_the_platform_writes_local_files_directly():
    assert hasattr(os, "O_DIRECT") and storage.DIRECT_IO is True  # the supported platform: Linux


@pytest.mark.parametrize("total", [0, 1, 4095, 4096, 4097, 65_535, 65_536, 65_537, 300_001])
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
def test_every_length_is_stored_exactly_whatever_the_blocks(key, monkeypatch, small_blocks, opened, total, direct):
    monkeypatch.setattr(storage, "DIRECT_IO", direct)
    chunks = list(_odd_chunks(total))
    data = b"".join(chunks)
    stored = storage.save_stream(key, iter(chunks))
    assert (stored.size, stored.sha256) == (total, hashlib.sha256(data).hexdigest())
    with default_storage.open(key, "rb") as fh:
        assert fh.read() == data  # the zero padding of the last direct block was cut off
    assert os.path.getsize(default_storage.path(key)) == total
    assert _entries(key) == ["vid_storage.mp4"]
    ((reported, flagged),) = opened
    assert reported == flagged  # what the writer was told matches the descriptor
    assert reported == direct  # the test media root (ext4, tmpfs) takes O_DIRECT


def test_a_file_system_refusing_o_direct_at_the_open_gets_a_buffered_file(key, monkeypatch, opened):
    """Some file systems create the file and then refuse the flag: the refused file is removed."""
    real_open = os.open
    refused = []

    def picky_open(path, flags, mode=0o777, **kwargs):
        if flags & getattr(os, "O_DIRECT", 0):
            os.close(real_open(path, flags & ~os.O_DIRECT, mode))
            refused.append(path)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(storage, "DIRECT_IO", True)
    monkeypatch.setattr(storage.os, "open", picky_open)
    stored = storage.save_stream(key, _chunks(3, 100_000))
    assert len(refused) == 1 and opened == [(False, False)]
    assert stored.size == 300_000 and os.path.getsize(default_storage.path(key)) == 300_000
    assert _entries(key) == ["vid_storage.mp4"]  # neither the refused file nor a temporary one


def test_a_file_system_refusing_direct_writes_gets_the_same_blocks_buffered(key, monkeypatch, small_blocks):
    real_write_all = storage._write_all
    refusals = []

    def picky_write_all(fd, data):
        if _flags(fd) & os.O_DIRECT:
            refusals.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        real_write_all(fd, data)

    monkeypatch.setattr(storage, "DIRECT_IO", True)
    monkeypatch.setattr(storage, "_write_all", picky_write_all)
    chunks = list(_odd_chunks(200_001))
    stored = storage.save_stream(key, iter(chunks))
    assert refusals == [64 * 1024]  # the first block only: then O_DIRECT is cleared
    with default_storage.open(key, "rb") as fh:
        assert fh.read() == b"".join(chunks)
    assert stored.size == 200_001 and _entries(key) == ["vid_storage.mp4"]


def test_a_later_einval_is_an_error_not_a_silent_switch(key, monkeypatch, small_blocks):
    real_write_all = storage._write_all
    calls = []

    def fails_second(fd, data):
        calls.append(len(data))
        if len(calls) == 2:
            raise OSError(errno.EINVAL, "Invalid argument")
        real_write_all(fd, data)

    monkeypatch.setattr(storage, "DIRECT_IO", True)
    monkeypatch.setattr(storage, "_write_all", fails_second)
    with pytest.raises(OSError) as info:
        storage.save_stream(key, _chunks(4, 100_000))
    assert info.value.errno == errno.EINVAL and len(calls) == 2
    assert not default_storage.exists(key) and _entries(key) == []
