"""The one HTTP seam for provider adapters (healthchecks ``hc/lib/curl.py`` style).

Every byte an adapter sends or receives goes through :func:`request` or :func:`stream_download`:

- one shared :class:`requests.Session` per process, with urllib3 retries switched off (retrying is
  the generation engine's job, and an automatic retry of a POST can create a second paid job);
- explicit connect/read timeouts from settings (``PROVIDER_CONNECT_TIMEOUT``,
  ``PROVIDER_READ_TIMEOUT``);
- network failures become :class:`ProviderError` (transient; a POST whose outcome is unknown is
  ``uncertain``);
- logs carry the method, host and path, status and elapsed time only: never headers, query strings
  or bodies, which may hold keys or signed URLs;
- downloads from provider-supplied URLs are checked (scheme, public address unless the host is the
  provider's own configured base URL), size-capped and streamed in constant memory.

Tests patch this module (``apps.providers.http.request``) or mock HTTP with ``responses``.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import logging
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from .base import Download, ProviderError

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024**3
MAX_REDIRECTS = 5
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})

# a provider read slower than this is logged at INFO (faster successful reads at DEBUG)
SLOW_READ_MS = 1000.0

_session: requests.Session | None = None
_session_lock = threading.Lock()

Timeout = float | tuple[float, float] | None


class ProviderSession(requests.Session):
    """A session that reads the environment once, when it is made, instead of on every call.

    ``requests`` with ``trust_env`` on looks at the environment and the file system on every call:
    it reads ``~/.netrc`` and the proxy and CA-bundle variables. At thousands of status calls a
    minute that was 12.5 % of a poll worker's time (py-spy, bench/RESULTS.md). Here:

    - **proxies** (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) are honoured per URL
      exactly as ``requests`` honours them, whenever the environment named one at start; with none
      (the usual case) nothing is looked up per call;
    - **the CA bundle** (``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``) is the session's default
      ``verify``, as ``requests`` would make it;
    - **``~/.netrc`` is never read.** Providers and webhook endpoints are authenticated by the
      headers the adapters set; a netrc password for a host would otherwise be sent to any
      provider-supplied download URL or customer webhook URL on that host.

    The environment is read when the process first calls a provider: set these variables before
    the process starts (as for any other setting).
    """

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # no per-call look-ups; the two below are read once instead
        self.env_proxies = urllib.request.getproxies()
        self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.env_proxies:
            no_proxy = (proxies or {}).get("no_proxy")
            merged["proxies"] = {**requests.utils.get_environ_proxies(url, no_proxy=no_proxy), **merged["proxies"]}
        return merged


def session() -> requests.Session:
    """The process-wide session (created on first use; connection pooling across adapters)."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                s = ProviderSession()
                # read=False: urllib3 re-raises read timeouts as such (requests' own default)
                retry = Retry(total=0, connect=0, read=False, redirect=0, status=0, raise_on_status=False)
                adapter = HTTPAdapter(max_retries=retry, pool_connections=16, pool_maxsize=32)
                s.mount("https://", adapter)
                s.mount("http://", adapter)
                s.headers["User-Agent"] = "MediaRouter/1 (+provider-adapter)"
                _session = s
    return _session


def timeouts(timeout: Timeout = None) -> tuple[float, float]:
    """``(connect, read)`` seconds: the explicit value, else the settings."""
    if isinstance(timeout, tuple):
        return timeout
    connect = float(getattr(settings, "PROVIDER_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT))
    read = float(getattr(settings, "PROVIDER_READ_TIMEOUT", DEFAULT_READ_TIMEOUT))
    if timeout is not None:
        read = float(timeout)
    return (connect, read)


def max_download_bytes() -> int:
    return int(getattr(settings, "VIDEO_MAX_BYTES", DEFAULT_MAX_DOWNLOAD_BYTES))


def redacted(url: str) -> str:
    """``scheme://host[:port]/path`` only: query strings of signed URLs are credentials too."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def origin(url: str) -> str:
    """``host:port`` of a URL, lower-cased, with the scheme's default port filled in."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so the request cannot have arrived."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _network_error(method: str, url: str, exc: requests.RequestException) -> ProviderError:
    where = redacted(url)
    sent_maybe = method.upper() not in _IDEMPOTENT_METHODS
    if isinstance(exc, requests.ConnectTimeout):
        return ProviderError(
            f"Could not connect to {where} in time; the provider may be down or unreachable.",
            code="connect_timeout",
        )
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.Timeout) or isinstance(reason, ReadTimeoutError):
        return ProviderError(
            f"The provider did not answer {method} {where} in time.",
            code="timeout",
            uncertain=sent_maybe,
        )
    if isinstance(exc, requests.ConnectionError):
        never = _never_sent(exc)
        return ProviderError(
            f"Network error talking to {where}: "
            + ("could not connect." if never else "the connection broke before the answer."),
            code="connection_error",
            uncertain=sent_maybe and not never,
        )
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return ProviderError(f"Invalid provider URL {where}.", code="bad_url", permanent=True)
    return ProviderError(
        f"HTTP error talking to {where}: {type(exc).__name__}.",
        code="network_error",
        uncertain=sent_maybe,
    )


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json: Any = None,
    data: Any = None,
    files: Any = None,
    params: Mapping[str, Any] | None = None,
    timeout: Timeout = None,
    stream: bool = False,
    allow_redirects: bool = False,
) -> requests.Response:
    """Send one request; return the response whatever its status (adapters map statuses).

    Raises :class:`ProviderError` only for network failures. A read timeout or a broken connection
    on a non-idempotent method (POST) is ``uncertain``: the provider may have acted on it.
    """
    started = time.monotonic()
    try:
        response = session().request(
            method,
            url,
            headers=dict(headers),
            json=json,
            data=data,
            files=files,
            params=params,
            timeout=timeouts(timeout),
            stream=stream,
            allow_redirects=allow_redirects,
        )
    except requests.RequestException as exc:
        elapsed = (time.monotonic() - started) * 1000
        logger.warning(
            "provider %s %s failed after %.0f ms: %s",
            method,
            redacted(url),
            elapsed,
            type(exc).__name__,
        )
        raise _network_error(method, url, exc) from None
    elapsed = (time.monotonic() - started) * 1000
    # a successful read (a status poll: thousands a minute at scale) is DEBUG; every write, every
    # error answer and every slow read stays INFO. At INFO, 16 poll threads logging each call spent
    # a third of their samples waiting on the log handler's lock (py-spy, bench/RESULTS.md).
    quiet = method == "GET" and response.status_code < 400 and elapsed < SLOW_READ_MS
    logger.log(
        logging.DEBUG if quiet else logging.INFO,
        "provider %s %s -> %s in %.0f ms",
        method,
        redacted(url),
        response.status_code,
        elapsed,
    )
    return response


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``Retry-After`` (seconds or HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def read_json(response: requests.Response) -> Any:
    """The JSON body, or None when it is absent or malformed (callers decide what that means)."""
    try:
        return response.json()
    except ValueError:
        return None


# --- URL checks and streamed downloads ---------------------------------------------------------


def _resolve(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to (a separate function so tests can replace it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def check_url(url: str, *, allowed_private_hosts: Iterable[str] = ()) -> None:
    """Refuse provider-supplied URLs we must not fetch (``unsafe_url``, permanent).

    Only https (http too when ``PROVIDER_ALLOW_HTTP``). Every address the host resolves to must be
    public, unless ``host:port`` is one of ``allowed_private_hosts`` (the provider's own configured
    base URL, e.g. an emulator or a self-hosted gateway on the local network).
    """
    parts = urlsplit(url)
    allowed_schemes = {"https"}
    if getattr(settings, "PROVIDER_ALLOW_HTTP", False):
        allowed_schemes.add("http")
    if parts.scheme not in allowed_schemes:
        raise ProviderError(
            f"Refusing to download from {redacted(url)}: only "
            f"{' and '.join(sorted(allowed_schemes))} URLs are allowed.",
            code="unsafe_url",
            permanent=True,
        )
    if not parts.hostname:
        raise ProviderError("Refusing to download from a URL without a host.", code="unsafe_url", permanent=True)
    if origin(url) in {h.lower() for h in allowed_private_hosts}:
        return
    try:
        addresses = _resolve(parts.hostname, parts.port or 443)
    except (OSError, UnicodeError):
        raise ProviderError(f"Could not resolve the download host {parts.hostname!r}.", code="dns_error") from None
    if not addresses or not all(_is_public(a) for a in addresses):
        raise ProviderError(
            f"Refusing to download from {redacted(url)}: the host resolves to a private or reserved address.",
            code="unsafe_url",
            permanent=True,
        )


def check_tenant_url(url: str) -> None:
    """Refuse a base URL that a tenant typed (a key's own gateway URL): https only (http too when
    ``PROVIDER_ALLOW_HTTP``), and a host that resolves only to public addresses, unless
    ``TENANT_URL_ALLOW_PRIVATE_ADDRESSES`` (development and tests). Raises a permanent
    ``ProviderError`` (``unsafe_url``)."""
    allowed = ()
    if getattr(settings, "TENANT_URL_ALLOW_PRIVATE_ADDRESSES", False):
        allowed = (origin(url),)
    check_url(url, allowed_private_hosts=allowed)


def _check_peer(response: requests.Response, url: str, allowed: set[str]) -> None:
    """Defence against DNS rebinding: check the address we actually connected to."""
    if origin(url) in allowed:
        return
    conn = getattr(response.raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return
    if not _is_public(peer):
        response.close()
        raise ProviderError(
            f"Refusing to download from {redacted(url)}: it connected to a private address.",
            code="unsafe_url",
            permanent=True,
        )


def download_failed(status: int, headers: Mapping[str, str], message: str) -> ProviderError:
    """A download answered with HTTP ``status``: transient for 5xx, 408 and 429 (with the
    provider's ``Retry-After``), permanent otherwise. ``message`` says what failed."""
    transient = status >= 500 or status in (408, 429)
    return ProviderError(
        message,
        code="download_failed",
        permanent=not transient,
        retry_after=parse_retry_after(headers) if transient else None,
        status_code=status,
    )


def _download_error(response: requests.Response, url: str) -> ProviderError:
    status = response.status_code
    hint = " The URL may have expired; re-read the job for a fresh one." if status in (403, 404, 410) else ""
    return download_failed(status, response.headers, f"Download from {redacted(url)} failed with HTTP {status}.{hint}")


def _iter_limited(response: requests.Response, url: str, max_bytes: int, chunk_size: int) -> Iterator[bytes]:
    received = 0
    try:
        for chunk in response.iter_content(chunk_size=chunk_size):
            if not chunk:
                continue
            received += len(chunk)
            if received > max_bytes:
                raise ProviderError(
                    f"The download from {redacted(url)} is larger than the {max_bytes}-byte limit.",
                    code="too_large",
                    permanent=True,
                )
            yield chunk
    except requests.RequestException as exc:
        raise ProviderError(
            f"The download from {redacted(url)} was interrupted after {received} bytes ({type(exc).__name__}).",
            code="download_interrupted",
        ) from None
    finally:
        response.close()


def stream_download(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    max_bytes: int,
    allowed_private_hosts: Iterable[str] = (),
    chunk_size: int = 1024 * 1024,
    params: Mapping[str, Any] | None = None,
    timeout: Timeout = None,
    on_error: Callable[[requests.Response], ProviderError] | None = None,
) -> Download:
    """Open a streamed download of ``url``; iterate ``Download.chunks`` to read it.

    Redirects are followed by hand (at most 5), each hop checked with :func:`check_url`; headers
    (``Authorization``) are only sent to the original ``host:port``. Raises ``too_large`` when the
    announced or the received size exceeds ``max_bytes``. A non-2xx answer becomes ``on_error``'s
    ProviderError (the adapter's own error envelope), else a generic ``download_failed``.
    """
    allowed = {h.lower() for h in allowed_private_hosts}
    first_origin = origin(url)
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        check_url(current, allowed_private_hosts=allowed)
        send_headers = dict(headers or {}) if origin(current) == first_origin else {}
        response = request(
            "GET",
            current,
            headers=send_headers,
            params=params if current == url else None,
            stream=True,
            timeout=timeout,
        )
        _check_peer(response, current, allowed)
        if response.is_redirect:
            location = response.headers.get("Location", "")
            response.close()
            current = urljoin(current, location)
            continue
        if not 200 <= response.status_code < 300:
            try:
                error = on_error(response) if on_error else _download_error(response, current)
            finally:
                response.close()
            raise error
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if length is not None and length > max_bytes:
            response.close()
            raise ProviderError(
                f"The download from {redacted(current)} is {length} bytes, over the {max_bytes}-byte limit.",
                code="too_large",
                permanent=True,
            )
        return Download(
            chunks=_iter_limited(response, current, max_bytes, chunk_size),
            content_type=response.headers.get("Content-Type"),
            content_length=length,
            _close=response.close,
        )
    raise ProviderError(
        f"Too many redirects downloading from {redacted(url)}.", code="too_many_redirects", permanent=True
    )


def _echoed_forms(secret: str) -> list[str]:
    """The secret as a provider may echo it: as is, URL-encoded, and base64 (standard and
    URL-safe, e.g. in a Basic header or a JWT) at each of the three alignments it can take in a
    longer encoded text (the characters that depend on the secret's bytes alone). Longest first."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * pad + secret.encode()).decode()
            stable = encoded[4 if pad else 0 : -4]
            if len(stable) >= 8:
                forms.add(stable)
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, *secrets: str | None) -> str:
    """Remove any secret that a provider echoed back (e.g. the key in an auth error message),
    also base64- or URL-encoded."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            for form in _echoed_forms(secret) if len(secret) >= 12 else [secret]:
                text = text.replace(form, "***")
    return text


__all__ = [
    "check_url",
    "download_failed",
    "max_download_bytes",
    "origin",
    "parse_retry_after",
    "read_json",
    "redacted",
    "request",
    "scrub",
    "session",
    "stream_download",
    "timeouts",
]
