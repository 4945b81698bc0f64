"""Thin Celery tasks: send one delivery (in its organization's scope); beat's dispatcher."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import TenantTask, UnscopedTask
from apps.webhooks import services


@shared_task(name="webhooks.deliver", base=TenantTask, ignore_result=True, acks_late=True)
def deliver(*, delivery_id: str, org_id: int) -> None:
    services.delivery_send(delivery_id=delivery_id)


@shared_task(name="webhooks.dispatch_due", base=UnscopedTask, ignore_result=True)
def dispatch_due() -> int:
    return services.deliveries_dispatch_due()
