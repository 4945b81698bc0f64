"""The cost ledger: holds, charges, releases and refunds, and the budget check (writes).

Append-only: rows are only ever inserted. A unique constraint allows one hold, one release and
one charge per generation, so a retried settle can never charge twice.

The job engine (``apps.generations.engine``) and the create service call this module; it needs
only a generation's attributes (organization, member, model, seconds, estimate), never the engine.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.accounts.models import Membership, Organization
from apps.billing.models import EntryKind, UsageEntry
from apps.core.errors import PaymentRequired

if TYPE_CHECKING:
    from apps.generations.models import Generation

ZERO = Decimal("0")


def period_of(day) -> date:
    return date(day.year, day.month, 1)


def video_day(generation: Generation) -> date:
    """The day a generation's ledger entries count on in the usage report: the day (in ``TIME_ZONE``)
    the video was created, whenever the entry is written. Its month is the entry's ``period``."""
    return timezone.localdate(generation.created_at)


def committed(*, org: Organization, period: date, user=None) -> Decimal:
    """Spent plus still reserved in ``period`` (what budgets are checked against)."""
    qs = UsageEntry.objects.filter(organization=org, period=period)
    if user is not None:
        qs = qs.filter(user=user)
    return qs.aggregate(total=Sum("amount"))["total"] or ZERO


def check_budget(*, org: Organization, membership: Membership, amount: Decimal, period: date) -> None:
    """Raise PaymentRequired (402) when ``amount`` more would overrun the org budget or the
    member's limit. Call it with the organization row locked, in the transaction that places the
    hold, so parallel requests cannot overrun together."""
    if org.monthly_budget is not None:
        used = committed(org=org, period=period)
        if used + amount > org.monthly_budget:
            raise PaymentRequired(
                f"This video (estimated ${amount:.2f}) would exceed {org.name}'s monthly budget of "
                f"${org.monthly_budget:.2f}: ${used:.2f} is already spent or reserved this month.",
                code="org_budget_exceeded",
            )
    limit = membership.effective_monthly_limit()
    if limit is not None:
        used = committed(org=org, period=period, user=membership.user)
        if used + amount > limit:
            raise PaymentRequired(
                f"This video (estimated ${amount:.2f}) would exceed your monthly limit of ${limit:.2f} "
                f"in {org.name}: ${used:.2f} is already spent or reserved this month.",
                code="member_limit_exceeded",
            )


def _entry(
    generation: Generation, kind: str, amount: Decimal, note: str = "", *, swallow_duplicate: bool = True
) -> UsageEntry | None:
    """The one constructor of ledger rows. Holds, releases and charges are one per generation:
    a second one hits the unique constraint and is ignored (settling is idempotent), returning
    None. Refunds may repeat (``swallow_duplicate=False``: any database error propagates)."""
    day = video_day(generation)
    fields = {
        "organization_id": generation.organization_id,
        "user_id": generation.user_id,
        "generation": generation,
        "kind": kind,
        "amount": amount,
        "provider": generation.provider,
        "model": generation.model,
        "seconds": generation.seconds,
        "price_version": generation.price_version,
        "period": period_of(day),
        "video_day": day,
        "note": note[:300],
    }
    if not swallow_duplicate:
        return UsageEntry.objects.create(**fields)
    try:
        with transaction.atomic():
            return UsageEntry.objects.create(**fields)
    except IntegrityError:
        return None  # already recorded: settling is idempotent


def hold(generation: Generation, *, new: bool = False) -> UsageEntry | None:
    """The generation's hold of its estimate. ``new``: the generation was inserted in this very
    transaction, so it cannot have a hold yet: no savepoint around the insert (two statements less
    on every create)."""
    return _entry(generation, EntryKind.HOLD, generation.estimated_cost, swallow_duplicate=not new)


def has_hold(generation: Generation) -> bool:
    return UsageEntry.objects.filter(generation=generation, kind=EntryKind.HOLD).exists()


def held_amount(generation: Generation) -> Decimal | None:
    """The hold with its adjustments (None: no hold)."""
    rows = list(
        UsageEntry.objects.filter(generation=generation, kind__in=(EntryKind.HOLD, EntryKind.ADJUST)).values_list(
            "kind", "amount"
        )
    )
    if not any(kind == EntryKind.HOLD for kind, _ in rows):
        return None
    return sum((amount for _, amount in rows), ZERO)


def release(generation: Generation) -> UsageEntry | None:
    """Return the hold, with its adjustments (on failure, cancel, or as the first half of settling)."""
    held = held_amount(generation)
    if held is None:
        return None
    return _entry(generation, EntryKind.RELEASE, -held)


def reprice_hold(*, generation: Generation, membership: Membership, amount: Decimal, note: str) -> Decimal:
    """Move the generation's hold to ``amount`` (the job moves to another supplier at its price).

    Call it in a transaction with the organization row locked. A higher price is checked against
    the budgets first (PaymentRequired when it does not fit; nothing is written); the difference
    is one ``adjust`` entry in the new supplier's name. Returns the difference."""
    held = held_amount(generation)
    if held is None:
        raise ValueError("The generation has no hold to re-price.")
    delta = amount - held
    if delta > 0:
        org = Organization.objects.get(pk=generation.organization_id)
        check_budget(org=org, membership=membership, amount=delta, period=period_of(video_day(generation)))
    if delta:
        _entry(generation, EntryKind.ADJUST, delta, note, swallow_duplicate=False)
    return delta


def settle(generation: Generation, amount: Decimal) -> None:
    """Turn the hold into a charge of ``amount`` (the video exists and is stored)."""
    release(generation)
    _entry(generation, EntryKind.CHARGE, amount)


def refundable(generation: Generation) -> Decimal | None:
    """What is left to refund of the generation's charge (None: it has no charge)."""
    charged = (
        UsageEntry.objects.filter(generation=generation, kind=EntryKind.CHARGE).values_list("amount", flat=True).first()
    )
    if not charged:
        return None
    refunded = -sum(
        UsageEntry.objects.filter(generation=generation, kind=EntryKind.REFUND).values_list("amount", flat=True),
        ZERO,
    )
    return charged - refunded


def refund(generation: Generation, amount: Decimal, note: str) -> UsageEntry:
    """An operator's refund: a new negative entry; the charge stays in the ledger."""
    return _entry(generation, EntryKind.REFUND, -abs(amount), note, swallow_duplicate=False)
