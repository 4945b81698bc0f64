"""Batches: many generations asked for at once, held as a whole, run a few at a time (writes).

A batch is created whole or not at all. Every item goes through the create path of
:mod:`apps.generations.services` (``generation_prepare``: the same prompt, catalog, image and key
checks as a single create), then the *total* is checked against the organization's budget and
the member's limit under the organization's lock, and every item is inserted with its own hold
in that one transaction. A bad item refuses the batch, naming the item (``requests[i]``); a total
over a budget refuses it naming the total and what remains. Nothing is held then.

Items wait (state ``created``, ``batch_waiting``, no alarm: held, not sent) until the batch has a
free slot: at most ``Batch.concurrency`` items of a batch are with the engine at once.
:func:`release_waiting` fills the free slots under a row lock on the batch, so two items ending
together never release more than there is room for. It runs when the batch is created, when an
item ends (``engine.transition`` calls :func:`on_item_finished` after the commit) and, as the
safety net for a lost call (a worker killed between the commit and the hook), from beat
(:func:`batch_dispatch_waiting`). Each item settles on its own, as any generation does: charged
when its video is stored, released when it fails or is canceled.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, Organization
from apps.billing import ledger
from apps.core.errors import ApplicationError, Conflict, PaymentRequired, PermissionDeniedError, ValidationFailed
from apps.core.ids import public_id
from apps.generations import engine, services, storage
from apps.generations.models import ACTIVE_STATES, Batch, Generation, State
from apps.generations.resolve import GenerationRequest, resolve_request

logger = logging.getLogger(__name__)

RETRYABLE_STATES = (State.FAILED, State.CANCELED)


class BatchItemError(ApplicationError):
    """One item of a batch was refused: the whole batch is. ``index`` is the item's position
    (0-based, as in ``requests[i]``); ``param`` names it, ``requests[2].seconds``."""

    def __init__(self, index: int, exc: ApplicationError) -> None:
        field = f"requests[{index}]" + (f".{exc.param}" if exc.param else "")
        super().__init__(f"requests[{index}]: {exc.message}", param=field, code=exc.code, retryable=exc.retryable)
        self.status_code, self.error_type = exc.status_code, exc.error_type
        self.index = index
        self.cause = exc
        self.item_message = exc.message
        self.errors = exc.errors if isinstance(exc, ValidationFailed) else {exc.param: exc.message}


def _limits() -> tuple[int, int, int]:
    return settings.BATCH_MAX_ITEMS, settings.BATCH_DEFAULT_CONCURRENCY, settings.BATCH_MAX_CONCURRENCY


def _check_shape(requests: list[GenerationRequest], concurrency: int | None) -> int:
    max_items, default, most = _limits()
    if not requests:
        raise ApplicationError("A batch needs at least one request.", param="requests")
    if len(requests) > max_items:
        raise ApplicationError(
            f"A batch is limited to {max_items} requests; this one has {len(requests)}.", param="requests"
        )
    if concurrency is None:
        return default
    if not 1 <= concurrency <= most:
        raise ApplicationError(f"concurrency must be between 1 and {most}.", param="concurrency")
    return concurrency


def _prepare_all(membership: Membership, requests: list[GenerationRequest], *, first_index: int = 0) -> list:
    """Every item through the single create's checks; the first refusal refuses the batch."""
    prepared = []
    for offset, request in enumerate(requests):
        try:
            prepared.append(services.generation_prepare(membership=membership, request=request))
        except BatchItemError:
            raise
        except ApplicationError as exc:
            raise BatchItemError(first_index + offset, exc) from None
    return prepared


def _fingerprint(prepared: list, concurrency: int) -> str:
    body = {"items": [p.fingerprint for p in prepared], "concurrency": concurrency}
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def _check_total(*, org: Organization, membership: Membership, total: Decimal, count: int) -> None:
    """The budget check for the whole batch (with the organization row locked). Refused: the
    budget error, naming the batch's total and what remains of the budget it would overrun."""
    period = ledger.period_of(timezone.now())
    try:
        ledger.check_budget(org=org, membership=membership, amount=total, period=period)
    except PaymentRequired as exc:
        videos = f"{count} video{'s' if count != 1 else ''}"
        if exc.code == "member_limit_exceeded":
            limit = membership.effective_monthly_limit()
            left = max(limit - ledger.committed(org=org, period=period, user=membership.user), Decimal("0"))
            whose = f"your monthly limit of ${limit:.2f} in {org.name}"
        else:
            limit = org.monthly_budget
            left = max(limit - ledger.committed(org=org, period=period), Decimal("0"))
            whose = f"{org.name}'s monthly budget of ${limit:.2f}"
        raise PaymentRequired(
            f"This batch of {videos} (estimated ${total:.2f} in total) would exceed {whose}: "
            f"${left:.2f} remains this month. Nothing was started or held.",
            code=exc.code,
        ) from None


def _insert_items(batch: Batch, prepared: list, indexes: list[int]) -> list[Generation]:
    """Insert the items (waiting, each with its hold) inside the caller's transaction. A batch item
    with an uploaded image (a data URI) has it written first, and removed if the batch is refused."""
    written: list[str] = []
    items = []
    try:
        for item, index in zip(prepared, indexes, strict=True):
            gen_id = public_id("video")
            input_key, input_type = services.save_input_image(item, gen_id)
            if input_key:
                written.append(input_key)
            items.append(
                services.generation_insert(
                    prepared=item,
                    gen_id=gen_id,
                    input_key=input_key,
                    input_type=input_type,
                    batch=batch,
                    batch_index=index,
                )
            )
    except BaseException:
        for key in written:
            services.discard_input(key)
        raise
    return items


def batch_create(
    *,
    by: Membership,
    requests: list[GenerationRequest],
    concurrency: int | None = None,
    idempotency_key: str = "",
) -> Batch:
    """Create a batch: every item checked, the whole estimated and held, or nothing.

    With an ``idempotency_key`` the same requests (and concurrency) return the batch made the
    first time (nothing new held); different ones with the same key are a 409."""
    if not by.can_generate:
        raise PermissionDeniedError("Viewers cannot generate videos. Ask an owner or admin for the member role.")
    concurrency = _check_shape(requests, concurrency)
    org = by.organization
    prepared = _prepare_all(by, requests)
    fingerprint = _fingerprint(prepared, concurrency)
    total = sum((p.estimate for p in prepared), Decimal("0"))
    from apps.audit.services import audit_record

    with transaction.atomic():
        locked_org = Organization.objects.select_for_update().get(pk=org.pk)
        if idempotency_key:
            existing = Batch.objects.filter(
                organization=org, created_by=by.user, idempotency_key=idempotency_key
            ).first()
            if existing is not None:
                if existing.request_fingerprint != fingerprint:
                    raise Conflict(
                        "This Idempotency-Key was already used with a different batch.",
                        code="idempotency_key_reused",
                    )
                return existing
        _check_total(org=locked_org, membership=by, total=total, count=len(prepared))
        batch = Batch.objects.create(
            organization=org,
            public_id=public_id("batch"),
            created_by=by.user,
            concurrency=concurrency,
            item_count=len(prepared),
            estimated_cost=total,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
        )
        _insert_items(batch, prepared, list(range(len(prepared))))
        release_waiting(batch_id=batch.pk, org_id=org.pk)
        audit_record(
            org=org,
            actor=by.user,
            action="batch.created",
            target=batch.public_id,
            detail={"items": len(prepared), "concurrency": concurrency, "estimated_cost": str(total)},
        )
    logger.info(
        "batch %s created: %d items, $%s held, concurrency %d", batch.public_id, len(prepared), total, concurrency
    )
    return batch


def _request_of(gen: Generation) -> GenerationRequest:
    """A failed item asked again: what it asked for the first time (its stored input image too)."""
    image = None
    if gen.input_image:
        with storage.open_for_read(gen.input_image) as fh:
            image = fh.read()
    return GenerationRequest(
        model=gen.requested_model or gen.supplier_model,
        prompt=gen.prompt,
        seconds=gen.seconds,
        size=gen.size,
        seed=gen.seed,
        negative_prompt=gen.negative_prompt,
        image=image,
        image_content_type=gen.input_image_type or None,
        image_url=gen.input_image_url or None,
        audio=gen.audio,
    )


def batch_retry(*, by: Membership, batch: Batch) -> list[Generation]:
    """Ask again for every item whose latest attempt failed or was canceled: a new generation at
    the same position of the batch, checked and held as a whole like a new batch."""
    from apps.audit.services import audit_record
    from apps.generations import selectors

    if not by.can_generate:
        raise PermissionDeniedError("Viewers cannot generate videos.")
    if not (by.can_manage or batch.created_by_id == by.user_id):
        raise PermissionDeniedError("Only the member who started the batch, an owner or an admin can retry it.")
    failed = [g for g in selectors.batch_current_items(batch=batch) if g.state in RETRYABLE_STATES]
    if not failed:
        raise ApplicationError("No item of this batch failed: there is nothing to retry.", code="invalid_state")
    prepared = []
    for gen in failed:
        try:
            prepared.append(services.generation_prepare(membership=by, request=_request_of(gen)))
        except ApplicationError as exc:
            raise BatchItemError(gen.batch_index, exc) from None
    total = sum((p.estimate for p in prepared), Decimal("0"))
    with transaction.atomic():
        locked_org = Organization.objects.select_for_update().get(pk=batch.organization_id)
        _check_total(org=locked_org, membership=by, total=total, count=len(prepared))
        items = _insert_items(batch, prepared, [g.batch_index for g in failed])
        for old, new in zip(failed, items, strict=True):
            engine.note(old, f"Retried in its batch as {new.public_id}.")
        release_waiting(batch_id=batch.pk, org_id=batch.organization_id)
        audit_record(
            org=batch.organization_id,
            actor=by.user,
            action="batch.retried",
            target=batch.public_id,
            detail={"items": len(items), "estimated_cost": str(total)},
        )
    return items


# --- running: the concurrency limit ----------------------------------------------------------


def release_waiting(*, batch_id: int, org_id: int) -> int:
    """Send as many waiting items as the batch has free slots (in their batch order). Under a row
    lock on the batch (PostgreSQL; SQLite's write transactions are serial), so concurrent calls
    count the running items one after the other and never overfill. Returns how many were sent."""
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.all_orgs.select_for_update().filter(pk=batch_id, organization_id=org_id).first()
        if batch is None:
            return 0
        items = Generation.all_orgs.filter(organization_id=org_id, batch_id=batch_id)
        running = items.filter(state__in=ACTIVE_STATES, batch_waiting=False).count()
        free = batch.concurrency - running
        if free <= 0:
            return 0
        waiting = list(items.filter(batch_waiting=True, state=State.CREATED).order_by("batch_index", "id")[:free])
        sent = 0
        for gen in waiting:
            released = Generation.all_orgs.filter(pk=gen.pk, batch_waiting=True, state=State.CREATED).update(
                batch_waiting=False,
                next_poll_at=engine.alarm(0),
                # the job's deadline counts from when it is sent, not from when the batch was made
                deadline_at=now + timedelta(seconds=settings.GENERATION_DEADLINE_SECONDS),
                updated_at=now,
            )
            if released:
                engine.note(gen, f"Sent: a slot of batch {batch.public_id} is free.")
                engine.schedule("submit", gen, 0)
                sent += 1
    return sent


def on_item_finished(gen: Generation) -> None:
    """An item reached a terminal state (called by ``engine.transition`` after the commit): its
    slot is free. Never raises into the engine: a failure here is the safety net's to repair."""
    try:
        release_waiting(batch_id=gen.batch_id, org_id=gen.organization_id)
    except Exception:
        logger.warning("batch %s: releasing waiting items failed", gen.batch_id, exc_info=True)


def batch_dispatch_waiting(*, limit: int = 200) -> int:
    """The safety net, run by beat across organizations: every batch with an item still waiting
    gets its free slots filled (a release lost with a killed worker). Returns how many were sent."""
    rows = (
        Generation.all_orgs.filter(batch_waiting=True, state=State.CREATED)
        .order_by()
        .values_list("batch_id", "organization_id")
        .distinct()[:limit]
    )
    sent = sum(release_waiting(batch_id=batch_id, org_id=org_id) for batch_id, org_id in list(rows))
    if sent:
        logger.info("batch dispatcher sent %d waiting items", sent)
    return sent


# --- the estimate (a read, for the Playground's batch mode) ----------------------------------


@dataclass(frozen=True)
class BatchEstimate:
    total: Decimal
    count: int
    errors: dict[int, str]  # item index -> the first problem found


def batch_estimate(*, org: Organization, requests: list[GenerationRequest]) -> BatchEstimate:
    """What the batch would hold, with each item's catalog problems (no key or budget checks:
    those are the create's). Items that do not resolve count nothing."""
    total, errors = Decimal("0"), {}
    for index, request in enumerate(requests):
        try:
            total += resolve_request(org=org, request=request).estimate
        except ApplicationError as exc:
            errors[index] = exc.message
    return BatchEstimate(total=total, count=len(requests), errors=errors)
