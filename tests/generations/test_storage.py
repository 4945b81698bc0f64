"""Local files: ``save_stream`` writes a temporary file beside the key (the writes on a helper
thread) and renames it over the key only when the whole stream arrived."""

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


def test_a_failed_write_stops_the_download_and_is_raised(key, monkeypatch):
    pulled = 0

    def counted():
        nonlocal pulled
        for chunk in _chunks(1000, 1024):
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
