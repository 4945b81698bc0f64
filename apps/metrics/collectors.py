"""What a scrape of ``/metrics`` computes when it happens (gauges: no process has to keep them).

- ``mediarouter_generations{provider,state}``: rows by supplier and state (one grouped query);
- ``mediarouter_ledger_holds_outstanding_usd`` / ``mediarouter_ledger_holds_outstanding``: the
  amount and number of holds not yet released (holds + adjustments + releases, one query). A job
  that has ended with its hold still outstanding is a bug; the figure should follow the active jobs;
- ``mediarouter_circuit_state{provider,state}``: 1 for each supplier's current circuit state
  (``closed``, ``open``, ``half_open``; ``apps.generations.routing.circuit_state``), 0 for the others;
- ``mediarouter_celery_queue_depth{queue}``: messages waiting in each Celery queue, asked of the
  broker (``LLEN`` of the queue's lists on Redis, the count of the queue's message files on the
  embedded filesystem broker); steps a worker already holds with a countdown are not waiting.
  ``mediarouter_celery_broker_up`` is 0 when the broker did not answer (the depths are then absent).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models import Count, Q, Sum
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CIRCUIT_STATES = ("closed", "open", "half_open")


def generations_by_state() -> dict[tuple[str, str], int]:
    from apps.generations.models import Generation

    rows = Generation.all_orgs.order_by().values_list("provider", "state").annotate(n=Count("id"))
    return {(provider, state): n for provider, state, n in rows}


def holds_outstanding() -> tuple[float, int]:
    """(USD, number) of ledger holds that have not been released, in one query."""
    from apps.billing.models import EntryKind, UsageEntry

    totals = UsageEntry.all_orgs.filter(kind__in=(EntryKind.HOLD, EntryKind.ADJUST, EntryKind.RELEASE)).aggregate(
        amount=Sum("amount"),
        holds=Count("id", filter=Q(kind=EntryKind.HOLD)),
        releases=Count("id", filter=Q(kind=EntryKind.RELEASE)),
    )
    return float(totals["amount"] or 0), totals["holds"] - totals["releases"]


def circuit_states() -> dict[str, str]:
    from apps.generations import routing
    from apps.providers import registry

    return routing.circuits(registry.PROVIDERS)


def queue_depths() -> dict[str, int]:
    """{queue: messages waiting} for every configured queue, over one broker connection."""
    from kombu.exceptions import ChannelError

    from mediarouter.celery import app as celery_app

    depths = {}
    with celery_app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in dict.fromkeys(settings.CELERY_QUEUE_NAMES.values()):
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # Redis: a queue with no message has no list at all
                depths[queue] = 0
    return depths


class ScrapeCollector(Collector):
    """The scrape-time gauges above, for a registry built per scrape (apps.metrics.views)."""

    def collect(self):
        generations = GaugeMetricFamily(
            "mediarouter_generations", "Generations by supplier and state", labels=["provider", "state"]
        )
        counts = generations_by_state()
        from apps.generations.models import State

        for provider in sorted({provider for provider, _ in counts}):
            for state in State.values:  # every state, so a series does not vanish at zero
                generations.add_metric([provider, state], counts.get((provider, state), 0))
        yield generations

        amount, number = holds_outstanding()
        yield GaugeMetricFamily(
            "mediarouter_ledger_holds_outstanding_usd", "USD held by ledger holds not yet released", value=amount
        )
        yield GaugeMetricFamily("mediarouter_ledger_holds_outstanding", "Ledger holds not yet released", value=number)

        circuits = GaugeMetricFamily(
            "mediarouter_circuit_state",
            "Each supplier's circuit: 1 for its current state",
            labels=["provider", "state"],
        )
        for provider, current in circuit_states().items():
            for state in CIRCUIT_STATES:
                circuits.add_metric([provider, state], 1 if state == current else 0)
        yield circuits

        try:
            depths = queue_depths()
        except Exception as exc:  # noqa: BLE001 - the broker's own health is /healthz's; report it down
            logger.warning("metrics: the broker did not answer: %s", type(exc).__name__)
            depths = None
        yield GaugeMetricFamily(
            "mediarouter_celery_broker_up",
            "1 when the Celery broker answered this scrape",
            value=int(depths is not None),
        )
        if depths is not None:
            depth = GaugeMetricFamily("mediarouter_celery_queue_depth", "Messages waiting per queue", labels=["queue"])
            for queue, n in depths.items():
                depth.add_metric([queue], n)
            yield depth
