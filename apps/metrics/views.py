"""``/metrics``: the Prometheus exposition, for operators' scrapers only.

Who may read it (decided here, documented in the README's configuration table):

- ``METRICS_TOKEN`` set: the request must carry ``Authorization: Bearer <token>`` (else 401);
- ``METRICS_ALLOWED_NETWORKS`` set (comma-separated networks, ``10.0.0.0/8,127.0.0.1``): the
  connecting address (``REMOTE_ADDR``, the scraper itself: Prometheus scrapes the app, not through
  the public proxy) must be in one of them (else 404);
- both set: both apply. Neither: 404 in production; in development and tests, loopback clients
  only (``make run`` listens on 127.0.0.1), 404 for anyone else.

The answer holds every process's counters and histograms (prometheus-client's multiprocess mode,
when ``PROMETHEUS_MULTIPROC_DIR`` is set) and the gauges computed at the scrape (collectors.py).
"""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from apps.metrics.collectors import ScrapeCollector

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _networks(value) -> list:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    return [ipaddress.ip_network(part, strict=False) for part in value or () if part]


def _client_in(request, networks) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _check_access(request) -> HttpResponse | None:
    """None when the request may read the metrics, else the refusal (or Http404)."""
    token = getattr(settings, "METRICS_TOKEN", "")
    networks = _networks(getattr(settings, "METRICS_ALLOWED_NETWORKS", ""))
    if networks and not _client_in(request, networks):
        raise Http404
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            refused = HttpResponse("A valid metrics token is required.\n", status=401, content_type="text/plain")
            refused["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return refused
        return None
    if networks:
        return None
    if settings.IS_PRODUCTION or not _client_in(request, LOOPBACK):
        raise Http404
    return None


def registry() -> CollectorRegistry:
    """This scrape's registry: every process's files in multiprocess mode, else this process's own."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        scrape = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(scrape, path=path)
    else:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Own())
    scrape.register(ScrapeCollector())
    return scrape


class _Own:
    """The default registry's metrics (this process's), inside a registry of our own."""

    def collect(self):
        return REGISTRY.collect()


@require_safe
def metrics(request) -> HttpResponse:
    refused = _check_access(request)
    if refused is not None:
        return refused
    response = HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
