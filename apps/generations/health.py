"""Service health figures for operators (read-only, across organizations)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from apps.generations import routing
from apps.generations.models import ACTIVE_STATES, Generation, State
from apps.providers import registry


@dataclass
class ProviderWindow:
    provider: str
    finished: int = 0
    failed: int = 0
    durations: list[float] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.durations) if self.durations else None


def queue_depth() -> int | None:
    """Messages waiting in all of the Celery queues (None when the broker cannot be asked)."""
    from apps.metrics.collectors import queue_depths  # each queue's, as /metrics shows them

    try:
        return sum(queue_depths().values())
    except Exception:  # noqa: BLE001 - the page shows "unknown"; the broker's health is /healthz's job
        return None


def by_state() -> dict[str, int]:
    counts = dict(Generation.all_orgs.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    return {state: counts.get(state, 0) for state in State.values}


def stuck(*, now=None, limit: int = 50) -> list[Generation]:
    """Active generations past their deadline, or whose next step is a minute overdue."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=60)
    qs = Generation.all_orgs.select_related("organization").filter(state__in=ACTIVE_STATES)
    return list(
        (qs.filter(deadline_at__lte=now) | qs.filter(next_poll_at__lte=overdue)).order_by("next_poll_at")[:limit]
    )


def provider_windows(*, since) -> list[ProviderWindow]:
    rows = Generation.all_orgs.filter(
        completed_at__gte=since, state__in=[State.COMPLETED, State.FAILED, State.CANCELED]
    ).values_list("provider", "state", "created_at", "completed_at")
    windows: dict[str, ProviderWindow] = {}
    for provider, state, created, completed in rows.iterator():
        w = windows.setdefault(provider, ProviderWindow(provider))
        w.finished += 1
        if state == State.FAILED:
            w.failed += 1
        elif state == State.COMPLETED:
            w.durations.append((completed - created).total_seconds())
    return sorted(windows.values(), key=lambda w: w.provider)


def snapshot(*, now=None) -> dict:
    now = now or timezone.now()
    return {
        "now": now,
        "queue_depth": queue_depth(),
        "by_state": by_state(),
        "stuck": stuck(now=now),
        "last_hour": provider_windows(since=now - timedelta(hours=1)),
        "last_day": provider_windows(since=now - timedelta(days=1)),
        # each supplier's circuit (the router skips an open one)
        "circuits": routing.circuits(registry.enabled_slugs()),
    }
