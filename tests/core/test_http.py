"""HTTP Range answers on a streamed file (apps.core.http.ranged_file_response), on their own: the
pages' content view is one caller (tests/pages/test_videos.py checks it end to end)."""

from __future__ import annotations

import pytest
from django.core.files import File
from django.http import FileResponse, HttpResponseRedirect
from django.test import RequestFactory

from apps.core.http import ranged_file_response

DATA = bytes(range(256)) * 8  # 2048 bytes


@pytest.fixture
def file_response(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(DATA)
    opened = []

    def make() -> FileResponse:
        fh = File(path.open("rb"))  # what storage.open() returns: it knows its size
        opened.append(fh)
        return FileResponse(fh, content_type="video/mp4", filename="clip.mp4")

    yield make
    for fh in opened:
        fh.close()


def _get(range_header: str | None = None):
    headers = {"Range": range_header} if range_header else {}
    return RequestFactory().get("/x", headers=headers)


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_range_is_answered_with_206_and_only_those_bytes(file_response):
    r = ranged_file_response(_get("bytes=10-19"), file_response())
    assert r.status_code == 206 and _body(r) == DATA[10:20]
    assert r["Content-Range"] == f"bytes 10-19/{len(DATA)}" and r["Content-Length"] == "10"
    assert r["Content-Type"] == "video/mp4" and r["Accept-Ranges"] == "bytes"
    assert 'filename="clip.mp4"' in r["Content-Disposition"]


def test_open_ended_suffix_and_overlong_ranges(file_response):
    assert _body(ranged_file_response(_get("bytes=2000-"), file_response())) == DATA[2000:]
    assert _body(ranged_file_response(_get("bytes=-48"), file_response())) == DATA[-48:]
    # an end past the file is cut to the file; a suffix longer than the file is the whole file
    r = ranged_file_response(_get("bytes=2040-99999"), file_response())
    assert r["Content-Range"] == f"bytes 2040-{len(DATA) - 1}/{len(DATA)}" and _body(r) == DATA[2040:]
    assert _body(ranged_file_response(_get("bytes=-99999"), file_response())) == DATA


def test_an_unsatisfiable_range_is_416(file_response):
    for header in (f"bytes={len(DATA)}-", "bytes=30-20"):
        r = ranged_file_response(_get(header), file_response())
        assert r.status_code == 416 and r["Content-Range"] == f"bytes */{len(DATA)}", header


def test_no_or_unparsable_range_streams_the_whole_file(file_response):
    for header in (None, "bytes=-", "items=0-10", "bytes=0-1,5-6"):
        r = ranged_file_response(_get(header), file_response())
        assert r.status_code == 200 and r["Accept-Ranges"] == "bytes", header
        assert _body(r) == DATA


def test_a_redirect_is_left_alone():
    """Presigned S3 redirects: S3 answers ranges itself."""
    redirect = HttpResponseRedirect("https://bucket.example/clip.mp4")
    assert ranged_file_response(_get("bytes=0-9"), redirect) is redirect
    assert not redirect.has_header("Accept-Ranges")
