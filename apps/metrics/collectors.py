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
- ``mediarouter_webhook_deliveries{state}``: the outbound webhook backlog: deliveries ``pending``
  (waiting for their first try or a retry) and ``sending`` (a try in flight), and the ones
  ``failed`` (given up: retries exhausted or the endpoint disabled), in one query;
  ``mediarouter_webhook_deliveries_overdue`` / ``mediarouter_webhook_overdue_seconds``: how many of
  the backlog are past their due time (pending, or a send whose lease ran out: beat re-sends them)
  and how long the oldest has waited since; a sender that keeps up keeps both near 0;
- ``mediarouter_webhook_endpoints{status}``: endpoints ``active``, ``failing`` (active, the last
  tries failed: ``failing_since`` set) and ``disabled``, in one query.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
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


def webhook_backlog() -> dict[str, float]:
    """Outbound deliveries by state (not the delivered ones: they only grow), the overdue ones and
    the seconds the oldest overdue one has waited, in one query (the ``state`` index)."""
    from apps.webhooks.models import DeliveryState, WebhookDelivery

    now = timezone.now()
    waiting = Q(state__in=(DeliveryState.PENDING, DeliveryState.SENDING))
    overdue = waiting & (Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))
    totals = WebhookDelivery.all_orgs.filter(
        state__in=(DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.FAILED)
    ).aggregate(
        pending=Count("id", filter=Q(state=DeliveryState.PENDING)),
        sending=Count("id", filter=Q(state=DeliveryState.SENDING)),
        failed=Count("id", filter=Q(state=DeliveryState.FAILED)),
        overdue=Count("id", filter=overdue),
        oldest_due=Min("next_attempt_at", filter=overdue),
    )
    oldest = totals.pop("oldest_due")
    totals["overdue_seconds"] = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
    return totals


def webhook_endpoints() -> dict[str, int]:
    from apps.webhooks.models import WebhookEndpoint

    return WebhookEndpoint.all_orgs.aggregate(
        active=Count("id", filter=Q(disabled_at__isnull=True, failing_since__isnull=True)),
        failing=Count("id", filter=Q(disabled_at__isnull=True, failing_since__isnull=False)),
        disabled=Count("id", filter=Q(disabled_at__isnull=False)),
    )


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

        yield from self._webhooks()

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

    def _webhooks(self):
        backlog = webhook_backlog()
        deliveries = GaugeMetricFamily(
            "mediarouter_webhook_deliveries",
            "Outbound webhook deliveries pending, sending (the backlog) and failed (given up)",
            labels=["state"],
        )
        for state in ("pending", "sending", "failed"):
            deliveries.add_metric([state], backlog[state])
        yield deliveries
        yield GaugeMetricFamily(
            "mediarouter_webhook_deliveries_overdue",
            "Outbound webhook deliveries past their due time",
            value=backlog["overdue"],
        )
        yield GaugeMetricFamily(
            "mediarouter_webhook_overdue_seconds",
            "Seconds the oldest overdue outbound webhook delivery has waited past its due time",
            value=backlog["overdue_seconds"],
        )
        endpoints = GaugeMetricFamily(
            "mediarouter_webhook_endpoints", "Webhook endpoints active, failing and disabled", labels=["status"]
        )
        for status, n in webhook_endpoints().items():
            endpoints.add_metric([status], n)
        yield endpoints
