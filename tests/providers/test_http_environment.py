"""The provider session reads the environment once: proxies and the CA bundle as ``requests``
would apply them, and never ``~/.netrc`` (apps.providers.http.ProviderSession)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses

from apps.providers import http
from apps.providers.base import ProviderError

NETRC_PASSWORD = "netrc-password-never-sent"


@pytest.fixture
def fresh_session(monkeypatch):
    """``http.session()`` made anew (under the environment the test sets), the old one restored."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setattr(http, "_session", None)


@pytest.fixture
def netrc(tmp_path, monkeypatch):
    path = tmp_path / "netrc"
    path.write_text(f"machine api.example.com login someone password {NETRC_PASSWORD}\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    return path


@responses.activate
def test_netrc_passwords_are_never_sent(fresh_session, netrc):
    responses.get("https://api.example.com/v1/videos/1", json={})
    # the control: a stock session would attach the netrc login to this host
    requests.Session().get("https://api.example.com/v1/videos/1")
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")
    http.request("GET", "https://api.example.com/v1/videos/1", headers={})
    assert "Authorization" not in responses.calls[1].request.headers


@responses.activate
def test_the_ca_bundle_from_the_environment_is_what_calls_verify_with(fresh_session, monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    responses.get("https://api.example.com/v1/videos/1", json={})
    http.request("GET", "https://api.example.com/v1/videos/1", headers={})
    assert responses.calls[0].request.req_kwargs["verify"] == str(bundle)


@responses.activate
def test_curl_ca_bundle_is_the_fallback_and_none_means_the_default_store(fresh_session, monkeypatch):
    responses.get("https://api.example.com/v1/videos/1", json={})
    http.request("GET", "https://api.example.com/v1/videos/1", headers={})
    assert responses.calls[0].request.req_kwargs["verify"] is True
    monkeypatch.setattr(http, "_session", None)
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/curl-bundle.pem")
    http.request("GET", "https://api.example.com/v1/videos/1", headers={})
    assert responses.calls[1].request.req_kwargs["verify"] == "/etc/ssl/certs/curl-bundle.pem"


class _Proxy:
    """A forward proxy on 127.0.0.1 that records the request lines it is sent and answers 200."""

    def __init__(self) -> None:
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.requestline)
                body = b'{"via": "proxy"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_proxies_from_the_environment_are_used_and_no_proxy_is_honoured(fresh_session, monkeypatch):
    with _Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "direct.invalid")
        answer = http.request("GET", "http://videos.invalid/v1/videos/1", headers={})
        assert answer.json() == {"via": "proxy"}
        assert proxy.seen == ["GET http://videos.invalid/v1/videos/1 HTTP/1.1"]
        # NO_PROXY: the call goes direct, and ``.invalid`` never resolves
        with pytest.raises(ProviderError):
            http.request("GET", "http://direct.invalid/v1/videos/1", headers={}, timeout=(1, 1))
        assert len(proxy.seen) == 1


def test_without_proxy_variables_calls_go_direct(fresh_session):
    with _Proxy() as proxy:
        assert http.session().env_proxies == {}
        with pytest.raises(ProviderError):
            http.request("GET", "http://videos.invalid/v1/videos/1", headers={}, timeout=(1, 1))
        assert proxy.seen == []
