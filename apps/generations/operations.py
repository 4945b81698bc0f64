"""Operator actions and housekeeping: what the Django admin and the maintenance commands call.

They go through the same state machine as everything else (``engine.transition``,
``engine.fail``, the ledger) and each records an audit event. They work across organizations,
so each one activates the generation's own organization scope.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Organization
from apps.audit.services import audit_record
from apps.billing import ledger
from apps.core.errors import ApplicationError
from apps.core.scoping import org_scope
from apps.generations import engine, services, storage
from apps.generations.models import ACTIVE_STATES, POLLING_STATES, Generation, State

logger = logging.getLogger(__name__)


def generation_retry(*, generation: Generation, operator) -> str:
    """Resume a failed or stuck job. With a provider job id it is polled again (never submitted a
    second time); without one it is submitted. Returns what was done."""
    with org_scope(generation.organization):
        generation.refresh_from_db()
        if generation.state == State.COMPLETED or generation.state == State.CANCELED:
            raise ApplicationError(f"A {generation.state} generation cannot be retried.", code="invalid_state")
        if generation.deleted_at:
            raise ApplicationError("A deleted generation cannot be retried.", code="invalid_state")
        now = timezone.now()
        deadline = max(generation.deadline_at, now + timedelta(hours=1))
        with transaction.atomic():
            if generation.provider_job_id:
                step, to = "poll", State.QUEUED
            else:
                step, to = "submit", State.CREATED
            moved = engine.transition(
                generation,
                from_states=[State.FAILED, *ACTIVE_STATES],
                to=to,
                message=f"Retried by operator {operator.email}.",
                error_code="",
                error_message="",
                submit_uncertain=False,
                transient_errors=0,
                completed_at=None,
                deadline_at=deadline,
                next_poll_at=engine.alarm(0),
            )
            if not moved:
                raise ApplicationError("The generation changed meanwhile; reload and try again.", code="conflict")
            if not ledger.has_hold(generation):
                ledger.hold(generation)
            engine.schedule(step, generation, 0)
            audit_record(
                org=generation.organization,
                actor=operator,
                action="generation.retried",
                target=generation.public_id,
                detail={"step": step, "provider_job_id": generation.provider_job_id or None},
            )
    return step


def generation_operator_cancel(*, generation: Generation, operator) -> None:
    with org_scope(generation.organization):
        generation.refresh_from_db()
        services.generation_cancel_unchecked(generation=generation, reason=f"Canceled by operator {operator.email}.")
        audit_record(
            org=generation.organization, actor=operator, action="generation.canceled", target=generation.public_id
        )


def generation_mark_failed(*, generation: Generation, operator, reason: str) -> None:
    """End a job by hand and release its hold (no charge)."""
    reason = reason.strip() or "Marked failed by an operator."
    with org_scope(generation.organization):
        generation.refresh_from_db()
        if not engine.fail(generation, code="operator_failed", message=reason):
            raise ApplicationError("Only an unfinished generation can be marked failed.", code="invalid_state")
        audit_record(
            org=generation.organization,
            actor=operator,
            action="generation.marked_failed",
            target=generation.public_id,
            detail={"reason": reason},
        )


def generation_refund(*, generation: Generation, operator, amount: Decimal | None = None, note: str = "") -> Decimal:
    """Refund (part of) a charge as a new ledger entry; the charge itself stays."""
    with org_scope(generation.organization), transaction.atomic():
        left = ledger.refundable(generation)
        if left is None:
            raise ApplicationError("This generation has no charge to refund.", code="nothing_to_refund")
        amount = left if amount is None else amount
        if amount <= 0 or amount > left:
            raise ApplicationError(f"A refund must be more than 0 and at most ${left}.", param="amount")
        ledger.refund(generation, amount, note or f"Refund by {operator.email}")
        audit_record(
            org=generation.organization,
            actor=operator,
            action="generation.refunded",
            target=generation.public_id,
            detail={"amount": str(amount), "note": note},
        )
    return amount


# --- housekeeping ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    generation: Generation
    problem: str
    action: str


def find_stuck(*, now=None, limit: int = 1000) -> list[Finding]:
    """Active generations whose next step is overdue (a dead worker, a lost message), uncertain
    submits, and jobs past their deadline.

    A polling job's ``next_poll_at`` is when it is due (the batched poll step takes it then, with
    no message to lose), so it counts as stuck only once it is later than the lease grace; other
    states carry the grace in their alarm already (``engine.alarm``)."""
    now = now or timezone.now()
    grace = timedelta(seconds=float(settings.GENERATION_LEASE_GRACE_SECONDS))
    rows = (
        Generation.all_orgs.select_related("organization", "provider_key", "remix_of")
        .filter(state__in=ACTIVE_STATES)
        .filter(
            Q(state__in=POLLING_STATES, next_poll_at__lte=now - grace)
            | (~Q(state__in=POLLING_STATES) & Q(next_poll_at__lte=now))
            | Q(deadline_at__lte=now)
        )
        .order_by("next_poll_at")[:limit]
    )
    findings = []
    for gen in rows:
        if now >= gen.deadline_at:
            problem = "past its deadline"
        elif gen.state == State.SUBMITTING:
            problem = "uncertain submit" if gen.submit_uncertain else "submit not confirmed"
        else:
            late = (now - gen.next_poll_at).total_seconds()
            problem = f"{gen.state}, step overdue by {late:.0f}s"
        findings.append(Finding(gen, problem, engine.STEP_FOR_STATE[gen.state]))
    return findings


def reconcile(*, dry_run: bool = False, now=None) -> list[Finding]:
    """Resolve every stuck generation now, through the provider, by running its step inline.
    Steps are idempotent and claim their row, so running this twice (or beside the workers) is safe."""
    findings = find_stuck(now=now)
    if dry_run:
        return findings
    for finding in findings:
        gen = finding.generation
        with org_scope(gen.organization):
            claimed = Generation.objects.filter(pk=gen.pk, state=gen.state, next_poll_at=gen.next_poll_at).update(
                next_poll_at=timezone.now() + timedelta(seconds=60)
            )
            if claimed:
                engine.STEPS[finding.action](generation_id=gen.pk)
    return findings


def media_to_purge(*, older_than_days: int | None, now=None) -> list[Generation]:
    """Stored videos past their retention: the organization's own setting where it has one,
    else ``older_than_days`` (None: only organizations with a setting)."""
    now = now or timezone.now()
    found: list[Generation] = []
    for org in Organization.objects.all().order_by("pk"):
        days = org.retention_days or older_than_days
        if not days:
            continue
        cutoff = now - timedelta(days=days)
        found.extend(
            Generation.all_orgs.select_related("organization")
            .filter(organization=org, created_at__lt=cutoff, deleted_at=None)
            .exclude(video_file="", thumbnail_file="", input_image="")
            .order_by("created_at")
        )
    return found


def purge_media(*, older_than_days: int | None, dry_run: bool = False, now=None) -> list[Generation]:
    """Delete stored files past retention; ledger rows and metadata stay. Idempotent."""
    found = media_to_purge(older_than_days=older_than_days, now=now)
    if dry_run:
        return found
    for gen in found:
        for key in (gen.video_file, gen.thumbnail_file, gen.input_image):
            storage.delete(key)
        Generation.all_orgs.filter(pk=gen.pk).update(video_file="", thumbnail_file="", input_image="")
        with org_scope(gen.organization):
            engine.note(gen, "Stored files purged by retention.")
    return found
