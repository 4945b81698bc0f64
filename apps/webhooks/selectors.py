"""Reads for team webhooks. Every tenant read takes the organization (or its endpoint)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch

from apps.webhooks.models import (
    DeliveryState,
    VideoWebhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

ATTEMPTS_SHOWN = 10


def endpoint_list(*, org) -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.filter(organization=org))


def endpoint_get(*, org, public_id: str) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(organization=org, public_id=public_id).first()


def active_endpoints(*, org_id: int) -> list[WebhookEndpoint]:
    """The organization's enabled endpoints (one query; the engine calls this on state changes,
    in or out of a tenant scope, hence the explicit organization filter)."""
    return list(WebhookEndpoint.all_orgs.filter(organization_id=org_id, disabled_at=None))


def default_endpoint(*, org_id: int) -> WebhookEndpoint | None:
    """The oldest enabled endpoint: its secret signs per-request ``webhook_url`` deliveries."""
    return (
        WebhookEndpoint.all_orgs.filter(organization_id=org_id, disabled_at=None).order_by("created_at", "id").first()
    )


def delivery_list(*, endpoint: WebhookEndpoint, limit: int = 50) -> list[WebhookDelivery]:
    attempts = WebhookAttempt.objects.order_by("-at", "-id")
    rows = list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related(Prefetch("attempt_log", queryset=attempts))[:limit]
    )
    for row in rows:
        row.recent_attempts = list(row.attempt_log.all())[:ATTEMPTS_SHOWN]
    return rows


def delivery_get(*, endpoint: WebhookEndpoint, public_id: str) -> WebhookDelivery | None:
    return WebhookDelivery.objects.filter(endpoint=endpoint, public_id=public_id).select_related("event").first()


def delivery_for_send(*, public_id: str) -> WebhookDelivery | None:
    return WebhookDelivery.objects.filter(public_id=public_id).select_related("event").first()


def events_between(*, org, since: datetime, until: datetime, limit: int) -> list[WebhookEvent]:
    return list(
        WebhookEvent.objects.filter(organization=org, created_at__gte=since, created_at__lt=until).order_by(
            "created_at", "id"
        )[:limit]
    )


def due_deliveries(*, before: datetime, limit: int) -> list[tuple[str, int]]:
    """(public id, organization id) of deliveries due before ``before``, across organizations."""
    return list(
        WebhookDelivery.all_orgs.filter(
            state__in=[DeliveryState.PENDING, DeliveryState.SENDING], next_attempt_at__lte=before
        )
        .order_by("next_attempt_at")
        .values_list("public_id", "organization_id")[:limit]
    )


def disabled_endpoints(*, org) -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.filter(organization=org, disabled_at__isnull=False))


def video_webhook_urls(*, org_id: int, video_id: str) -> list[str]:
    """The per-request ``webhook_url`` of a video (the native create's), if any."""
    return list(VideoWebhook.all_orgs.filter(organization_id=org_id, video_id=video_id).values_list("url", flat=True))
