"""The HTTP seam: timeouts, error translation, logging hygiene, URL checks, streamed downloads."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tracemalloc

import pytest
import requests
import responses

from apps.providers import http
from apps.providers.base import ProviderError
from tests.emulators.sora import OpenAIEmulator

from .conftest import PUBLIC_IP

KEY = "fake-key-test-emulator-openai-0000"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_shared_session_without_retries():
    assert http.session() is http.session()
    adapter = http.session().get_adapter("https://api.example.com/")
    assert adapter.max_retries.total == 0


def test_timeouts_come_from_settings(settings):
    settings.PROVIDER_CONNECT_TIMEOUT = 2
    settings.PROVIDER_READ_TIMEOUT = 7
    assert http.timeouts() == (2.0, 7.0)
    assert http.timeouts(3) == (2.0, 3.0)
    assert http.timeouts((1, 1)) == (1, 1)


def test_timeouts_have_defaults_without_settings(settings):
    del settings.PROVIDER_CONNECT_TIMEOUT
    del settings.PROVIDER_READ_TIMEOUT
    assert http.timeouts() == (5.0, 30.0)


@responses.activate
def test_it_passes_timeouts_and_returns_error_statuses():
    responses.post("https://api.example.com/v1/x", status=503, json={"e": 1})
    response = http.request("POST", "https://api.example.com/v1/x", headers={}, json={"a": 1}, timeout=(1, 2))
    assert response.status_code == 503
    assert responses.calls[0].request.req_kwargs["timeout"] == (1, 2)


@responses.activate
@pytest.mark.parametrize(
    ("exc", "method", "code", "uncertain"),
    [
        (requests.ConnectTimeout(), "POST", "connect_timeout", False),
        (requests.ReadTimeout(), "POST", "timeout", True),
        (requests.ReadTimeout(), "GET", "timeout", False),
        (requests.ConnectionError("connection aborted"), "POST", "connection_error", True),
        (requests.ConnectionError("connection aborted"), "GET", "connection_error", False),
        (requests.exceptions.ChunkedEncodingError(), "POST", "network_error", True),
    ],
)
def test_network_errors_become_transient_provider_errors(exc, method, code, uncertain):
    responses.add(method, "https://api.example.com/v1/x", body=exc)
    with pytest.raises(ProviderError) as info:
        http.request(method, "https://api.example.com/v1/x", headers={})
    assert info.value.code == code
    assert info.value.permanent is False
    assert info.value.uncertain is uncertain


def test_refused_connection_is_not_uncertain_even_for_post():
    with pytest.raises(ProviderError) as info:
        http.request("POST", f"http://127.0.0.1:{_closed_port()}/v1/videos", headers={}, json={})
    assert info.value.code == "connection_error"
    assert info.value.uncertain is False


def test_read_timeout_on_a_real_server_is_uncertain_for_post(settings):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    with OpenAIEmulator() as emu:
        emu.add_fault("create", delay=1.0)
        with pytest.raises(ProviderError) as info:
            http.request(
                "POST",
                f"{emu.base_url}/videos",
                headers={"Authorization": f"Bearer {emu.api_key}"},
                json={"prompt": "x"},
            )
        assert info.value.code == "timeout" and info.value.uncertain
        # the slow request still reached the provider: the job exists
        assert emu.stats()["calls"]["create"] == 1


@responses.activate
def test_logs_never_show_headers_query_or_body(caplog):
    responses.post("https://api.example.com/v1/videos", status=401, json={"error": {"message": KEY}})
    with caplog.at_level(logging.DEBUG, logger="apps.providers.http"):
        http.request(
            "POST",
            "https://api.example.com/v1/videos?sig=SIGNED-SECRET",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"prompt": "private prompt"},
        )
    text = caplog.text
    assert "POST https://api.example.com/v1/videos -> 401" in text
    for secret in (KEY, "SIGNED-SECRET", "private prompt", "Authorization"):
        assert secret not in text


@responses.activate
def test_a_successful_quick_read_is_debug_and_writes_errors_and_slow_reads_are_info(caplog, monkeypatch):
    responses.get("https://api.example.com/v1/videos/ok", json={"status": "in_progress"})
    responses.get("https://api.example.com/v1/videos/gone", status=404, json={})
    responses.post("https://api.example.com/v1/videos", json={"id": "v"})
    with caplog.at_level(logging.DEBUG, logger="apps.providers.http"):
        for method, path in (("GET", "videos/ok"), ("GET", "videos/gone"), ("POST", "videos")):
            http.request(method, f"https://api.example.com/v1/{path}", headers={})
        monkeypatch.setattr(http, "SLOW_READ_MS", -1.0)  # every read is "slow" now
        http.request("GET", "https://api.example.com/v1/videos/ok", headers={})
    levels = [(r.levelname, r.getMessage().split(" -> ")[0]) for r in caplog.records]
    assert levels == [
        ("DEBUG", "provider GET https://api.example.com/v1/videos/ok"),
        ("INFO", "provider GET https://api.example.com/v1/videos/gone"),
        ("INFO", "provider POST https://api.example.com/v1/videos"),
        ("INFO", "provider GET https://api.example.com/v1/videos/ok"),
    ]


def test_parse_retry_after_forms():
    assert http.parse_retry_after({"Retry-After": "7"}) == 7.0
    assert http.parse_retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert http.parse_retry_after({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, now=1792567670.0) == 10.0
    assert http.parse_retry_after({"Retry-After": "soon"}) is None
    assert http.parse_retry_after({}) is None


def test_scrub_removes_secrets():
    assert http.scrub(f"bad key {KEY}!", KEY) == "bad key ***!"
    assert http.scrub("nothing", None, "") == "nothing"


# --- URL checks -------------------------------------------------------------------------------


def test_https_public_url_is_allowed(public_dns):
    http.check_url("https://cdn.example.com/out.mp4")


def test_http_is_refused_unless_allowed(public_dns, settings):
    settings.PROVIDER_ALLOW_HTTP = False
    with pytest.raises(ProviderError) as info:
        http.check_url("http://cdn.example.com/out.mp4")
    assert info.value.code == "unsafe_url" and info.value.permanent
    settings.PROVIDER_ALLOW_HTTP = True
    http.check_url("http://cdn.example.com/out.mp4")


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher"])
def test_other_schemes_are_refused(scheme, public_dns):
    with pytest.raises(ProviderError) as info:
        http.check_url(f"{scheme}://cdn.example.com/out.mp4")
    assert info.value.code == "unsafe_url"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
    ],
)
def test_private_and_reserved_addresses_are_refused(address, monkeypatch):
    monkeypatch.setattr(http, "_resolve", lambda host, port: [address])
    with pytest.raises(ProviderError) as info:
        http.check_url("https://metadata.example.com/latest")
    assert info.value.code == "unsafe_url" and info.value.permanent


def test_one_private_address_among_public_ones_is_refused(monkeypatch):
    monkeypatch.setattr(http, "_resolve", lambda host, port: [PUBLIC_IP, "10.0.0.1"])
    with pytest.raises(ProviderError):
        http.check_url("https://cdn.example.com/x")


def test_ip_literal_hosts_are_checked():
    with pytest.raises(ProviderError) as info:
        http.check_url("https://127.0.0.1/x")
    assert info.value.code == "unsafe_url"


def test_the_providers_own_host_and_port_may_be_private():
    http.check_url("http://127.0.0.1:9101/v1/videos/x/content", allowed_private_hosts=["127.0.0.1:9101"])
    with pytest.raises(ProviderError):
        http.check_url("http://127.0.0.1:9102/x", allowed_private_hosts=["127.0.0.1:9101"])


def test_unresolvable_host_is_a_transient_error(monkeypatch):
    def fail(host, port):
        raise socket.gaierror("no DNS")

    monkeypatch.setattr(http, "_resolve", fail)
    with pytest.raises(ProviderError) as info:
        http.check_url("https://nowhere.example.com/x")
    assert info.value.code == "dns_error" and not info.value.permanent


# --- streamed downloads -----------------------------------------------------------------------


@responses.activate
def test_stream_download_yields_chunks(public_dns):
    responses.get("https://cdn.example.com/v.mp4", body=b"x" * 2500, content_type="video/mp4")
    with http.stream_download("https://cdn.example.com/v.mp4", max_bytes=10_000, chunk_size=1000) as download:
        chunks = list(download.chunks)
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert download.content_type == "video/mp4"


@responses.activate
def test_announced_size_over_the_limit_is_refused_up_front(public_dns):
    responses.get("https://cdn.example.com/v.mp4", body=b"x" * 2000, headers={"Content-Length": "2000"})
    with pytest.raises(ProviderError) as info:
        http.stream_download("https://cdn.example.com/v.mp4", max_bytes=1000)
    assert info.value.code == "too_large" and info.value.permanent


@responses.activate
def test_size_is_counted_while_streaming(public_dns):
    # no Content-Length: the limit can only be enforced while counting
    responses.get("https://cdn.example.com/v.mp4", body=b"y" * 1800)
    download = http.stream_download("https://cdn.example.com/v.mp4", max_bytes=1000, chunk_size=600)
    assert download.content_length is None
    first = next(download.chunks)
    assert len(first) == 600
    with pytest.raises(ProviderError) as info:
        list(download.chunks)
    assert info.value.code == "too_large"


@responses.activate
def test_error_status_becomes_download_failed(public_dns):
    responses.get("https://cdn.example.com/gone.mp4", status=403)
    responses.get("https://cdn.example.com/busy.mp4", status=503, headers={"Retry-After": "4"})
    with pytest.raises(ProviderError) as info:
        http.stream_download("https://cdn.example.com/gone.mp4", max_bytes=10)
    assert info.value.code == "download_failed" and info.value.permanent and info.value.status_code == 403
    with pytest.raises(ProviderError) as info:
        http.stream_download("https://cdn.example.com/busy.mp4", max_bytes=10)
    assert not info.value.permanent and info.value.retry_after == 4.0


@responses.activate
def test_redirects_are_checked_and_drop_credentials(monkeypatch):
    addresses = {"api.example.com": PUBLIC_IP, "cdn.example.com": PUBLIC_IP, "internal.example.com": "10.0.0.9"}
    monkeypatch.setattr(http, "_resolve", lambda host, port: [addresses[host]])
    responses.get("https://api.example.com/content", status=302, headers={"Location": "https://cdn.example.com/v.mp4"})
    responses.get("https://cdn.example.com/v.mp4", body=b"video")
    with http.stream_download(
        "https://api.example.com/content", headers={"Authorization": f"Bearer {KEY}"}, max_bytes=100
    ) as download:
        assert b"".join(download.chunks) == b"video"
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"
    assert "Authorization" not in responses.calls[1].request.headers

    responses.get(
        "https://api.example.com/evil", status=302, headers={"Location": "https://internal.example.com/admin"}
    )
    with pytest.raises(ProviderError) as info:
        http.stream_download("https://api.example.com/evil", max_bytes=100)
    assert info.value.code == "unsafe_url"
    assert not any("internal" in c.request.url for c in responses.calls)


def test_dns_rebinding_is_caught_by_the_peer_check(monkeypatch):
    """The name looked public when checked but the connection went to a loopback address."""
    monkeypatch.setattr(http, "_resolve", lambda host, port: [PUBLIC_IP])
    with OpenAIEmulator() as emu:
        with pytest.raises(ProviderError) as info:
            http.stream_download(f"{emu.root_url}/v1/videos", max_bytes=100)
    assert info.value.code == "unsafe_url"


def test_big_downloads_stream_in_constant_memory():
    size = 48 * 1024 * 1024
    with OpenAIEmulator(video_bytes=size) as emu:
        tracemalloc.start()
        total = 0
        try:
            with http.stream_download(
                f"{emu.root_url}/_emulator/video",
                max_bytes=size,
                allowed_private_hosts=[http.origin(emu.root_url)],
            ) as download:
                assert download.content_length == size
                for chunk in download.chunks:
                    total += len(chunk)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert total == size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes"


def _completed_video_url(emu: OpenAIEmulator) -> str:
    created = requests.post(
        f"{emu.base_url}/videos",
        json={"model": "sora-2", "prompt": "cut", "seconds": "4", "size": "1280x720"},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    ).json()
    emu.advance(3600)
    return f"{emu.base_url}/videos/{created['id']}/content"


def test_a_download_cut_mid_stream_fails_and_stores_nothing():
    """Content-Length announced, the connection dropped after 3 MiB: a transient error (retried),
    and nothing under the key, so a cut video is never taken for a complete one."""
    from django.core.files.storage import default_storage

    from apps.generations import storage

    key = "orgs/test-http/videos/vid_cut.mp4"
    size = 8 * 1024 * 1024
    with OpenAIEmulator(video_bytes=size) as emu:
        url = _completed_video_url(emu)
        emu.add_fault("content", truncate=3 * 1024 * 1024, times=1)
        with http.stream_download(
            url, headers={"Authorization": f"Bearer {KEY}"}, max_bytes=size, allowed_private_hosts=[http.origin(url)]
        ) as download:
            assert download.content_length == size
            with pytest.raises(ProviderError) as info:
                storage.save_stream(key, download.chunks)
        assert info.value.code == "download_interrupted" and not info.value.permanent
        assert "3145728 bytes" in info.value.message and KEY not in info.value.message
        assert not default_storage.exists(key)
        assert os.listdir(os.path.dirname(default_storage.path(key))) == []

        # the retry gets the whole video, stored with the emulator's exact bytes
        with http.stream_download(
            url, headers={"Authorization": f"Bearer {KEY}"}, max_bytes=size, allowed_private_hosts=[http.origin(url)]
        ) as download:
            stored = storage.save_stream(key, download.chunks)
        expected = requests.get(f"{emu.root_url}/_emulator/video", timeout=10).content
    try:
        assert stored.size == size == len(expected)
        assert stored.sha256 == hashlib.sha256(expected).hexdigest()
    finally:
        storage.delete(key)
