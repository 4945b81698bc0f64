"""Celery tasks: thin interfaces. Each takes ids, runs in the organization's scope (TenantTask),
and calls one step of the job engine (apps.generations.engine). Steps are idempotent and guard
their own state, so a message that is delivered twice, or sent again by the dispatcher, does no
harm (acks_late)."""

from __future__ import annotations

from celery import shared_task

from apps.core.tasks import TenantTask, UnscopedTask
from apps.generations import batches, engine


@shared_task(base=TenantTask, name="generations.submit", acks_late=True)
def submit(*, generation_id: int, org_id: int) -> None:
    engine.generation_submit(generation_id=generation_id)


@shared_task(base=TenantTask, name="generations.reconcile", acks_late=True)
def reconcile(*, generation_id: int, org_id: int) -> None:
    engine.generation_reconcile_submit(generation_id=generation_id)


@shared_task(base=TenantTask, name="generations.poll", acks_late=True)
def poll(*, generation_id: int, org_id: int) -> None:
    engine.generation_poll(generation_id=generation_id)


@shared_task(base=TenantTask, name="generations.download", acks_late=True)
def download(*, generation_id: int, org_id: int) -> None:
    engine.generation_download(generation_id=generation_id)


@shared_task(base=UnscopedTask, name="generations.dispatch_due", acks_late=False)
def dispatch_due() -> int:
    return engine.generation_dispatch_due()


@shared_task(base=UnscopedTask, name="generations.dispatch_batches", acks_late=False)
def dispatch_batches() -> int:
    return batches.batch_dispatch_waiting()


STEPS = {"submit": submit, "reconcile": reconcile, "poll": poll, "download": download}
