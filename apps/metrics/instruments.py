"""What the job engine observes while it works: counters and histograms (prometheus-client).

They are written in the process that observes them, usually a Celery worker. With
``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` sets it under ``MEDIAROUTER_VAR_DIR``; see the README)
every process writes its values into files there and ``/metrics`` adds up all of them; without it
a process's values stay in that process. Observing never raises into the engine.

- ``mediarouter_detection_lag_seconds{provider}``: observed when a poll finds a job completed, as
  the time since the previous poll (the row's last write before this poll: the earlier poll, or the
  provider's acceptance of the job). The job completed somewhere in that window, so this is an
  upper bound of how late MediaRouter noticed (the providers' status answers carry no completion
  time today).
- ``mediarouter_poll_seconds{provider}``: one status call of a poll step, failed calls included.
- ``mediarouter_download_seconds{provider}`` and ``mediarouter_download_bytes_total{provider}``: a
  completed video's copy into storage (the transfer, hashing and writing), successful ones only.
- ``mediarouter_provider_errors_total{provider,code,permanent}``: every ``ProviderError`` a step
  met (submit, poll, download), by its code.
- ``mediarouter_webhook_attempts_total{outcome,answer}``: every recorded try of an outbound webhook
  delivery (``apps.webhooks.services``): ``outcome`` is ``delivered``, ``retrying`` (failed, tried
  again later) or ``gave_up`` (failed for the last time); ``answer`` the receiver's status class
  (``2xx`` … ``5xx``) or ``none`` (timeout, refused, dropped connection, address refused). Delivery
  failures are the attempts whose outcome is not ``delivered``; the backlog is a scrape gauge
  (collectors.py), since it lives in the database.
- ``mediarouter_webhook_attempt_seconds``: how long the receiver took to answer (or fail).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from prometheus_client import Counter, Histogram

logger = logging.getLogger(__name__)

_LAG_BUCKETS = (0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 45, 60, 120, 300, 900)
_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_DOWNLOAD_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

DETECTION_LAG = Histogram(
    "mediarouter_detection_lag_seconds",
    "Seconds from the previous poll to the poll that found the job completed (an upper bound of the lag)",
    ["provider"],
    buckets=_LAG_BUCKETS,
)
POLL_SECONDS = Histogram(
    "mediarouter_poll_seconds", "Seconds per provider status call of a poll step", ["provider"], buckets=_CALL_BUCKETS
)
DOWNLOAD_SECONDS = Histogram(
    "mediarouter_download_seconds",
    "Seconds to copy a completed video into storage",
    ["provider"],
    buckets=_DOWNLOAD_BUCKETS,
)
DOWNLOAD_BYTES = Counter("mediarouter_download_bytes", "Bytes of videos copied into storage", ["provider"])
PROVIDER_ERRORS = Counter(
    "mediarouter_provider_errors", "Provider errors met by the engine's steps", ["provider", "code", "permanent"]
)
WEBHOOK_ATTEMPTS = Counter(
    "mediarouter_webhook_attempts",
    "Outbound webhook delivery attempts by outcome (delivered, retrying, gave_up) and answer class",
    ["outcome", "answer"],
)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "mediarouter_webhook_attempt_seconds", "Seconds per outbound webhook attempt", buckets=_CALL_BUCKETS
)
WEBHOOK_OUTCOMES = ("delivered", "retrying", "gave_up")


def observe_detection_lag(provider: str, *, previous_poll: datetime | None, now: datetime) -> None:
    if previous_poll is not None:
        _safely(DETECTION_LAG.labels(provider).observe, max((now - previous_poll).total_seconds(), 0.0))


def clock() -> float:
    """A start time for :func:`observe_download`."""
    return time.monotonic()


def observe_download(provider: str, *, started: float, size: int) -> None:
    _safely(DOWNLOAD_SECONDS.labels(provider).observe, time.monotonic() - started)
    _safely(DOWNLOAD_BYTES.labels(provider).inc, size)


def provider_error(provider: str, exc) -> None:
    """Count a ``ProviderError`` (its ``code``, and whether it is permanent)."""
    code = exc.code or "provider_error"
    _safely(PROVIDER_ERRORS.labels(provider, code, "true" if exc.permanent else "false").inc)


def webhook_attempt(*, outcome: str, status_code: int | None, latency_ms: int) -> None:
    """Count one recorded webhook attempt (``outcome``: one of ``WEBHOOK_OUTCOMES``)."""
    answer = f"{status_code // 100}xx" if status_code else "none"
    _safely(WEBHOOK_ATTEMPTS.labels(outcome, answer).inc)
    _safely(WEBHOOK_ATTEMPT_SECONDS.observe, max(latency_ms, 0) / 1000)


def _safely(observe, *args) -> None:
    try:
        observe(*args)
    except Exception:
        logger.exception("could not record a metric")
