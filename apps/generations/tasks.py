"""Celery tasks: thin interfaces. Each takes ids, runs in the organization's scope (TenantTask),
and calls one step of the job engine (apps.generations.engine). Steps are idempotent and guard
their own state, so a message that is delivered twice, or sent again by the dispatcher, does no
harm (acks_late)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.core.tasks import TenantTask, UnscopedTask
from apps.generations import batches, engine, polling


@shared_task(base=TenantTask, name="generations.submit", acks_late=True)
def submit(*, generation_id: int, org_id: int) -> None:
    engine.generation_submit(generation_id=generation_id)


@shared_task(base=TenantTask, name="generations.reconcile", acks_late=True)
def reconcile(*, generation_id: int, org_id: int) -> None:
    engine.generation_reconcile_submit(generation_id=generation_id)


@shared_task(base=TenantTask, name="generations.poll", acks_late=True)
def poll(*, generation_id: int, org_id: int) -> None:
    """One job, now (a provider's callback, an operator's retry): every other poll is poll_due's."""
    engine.generation_poll(generation_id=generation_id)


@shared_task(base=UnscopedTask, name="generations.poll_due", acks_late=False)
def poll_due() -> int:
    """The batched poll step (apps.generations.polling), sent by beat every second. Not acked
    late: a step that dies leaves its jobs claimed only until their lease ends, then the next
    step polls them; a message delivered twice only runs one more step (it claims other jobs)."""
    return polling.poll_due(again=_poll_due_again)


def _poll_due_again() -> None:
    """Another step at once, for the backlog a full batch shows; stale if no worker takes it soon
    (like beat's ticks), so a backlog never piles up messages."""
    poll_due.apply_async(expires=max(settings.GENERATION_POLL_STEP_INTERVAL_SECONDS * 2, 2.0))


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
