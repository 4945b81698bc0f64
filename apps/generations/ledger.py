"""The cost ledger: holds, charges, releases and refunds, and the budget check.

Append-only: rows are only ever inserted. A unique constraint allows one hold, one release and
one charge per generation, so a retried settle can never charge twice.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum

from apps.accounts.models import Membership, Organization
from apps.core.errors import PaymentRequired
from apps.generations.models import EntryKind, Generation, UsageEntry

ZERO = Decimal("0")


def period_of(day) -> date:
    return date(day.year, day.month, 1)


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


def _entry(generation: Generation, kind: str, amount: Decimal, note: str = "") -> UsageEntry | None:
    try:
        with transaction.atomic():
            return UsageEntry.objects.create(
                organization_id=generation.organization_id,
                user_id=generation.user_id,
                generation=generation,
                kind=kind,
                amount=amount,
                provider=generation.provider,
                model=generation.model,
                seconds=generation.seconds,
                price_version=generation.price_version,
                period=period_of(generation.created_at),
                note=note[:300],
            )
    except IntegrityError:
        return None  # already recorded: settling is idempotent


def hold(generation: Generation) -> UsageEntry | None:
    return _entry(generation, EntryKind.HOLD, generation.estimated_cost)


def release(generation: Generation) -> UsageEntry | None:
    """Return the hold (on failure, cancel, or as the first half of settling)."""
    held = (
        UsageEntry.objects.filter(generation=generation, kind=EntryKind.HOLD).values_list("amount", flat=True).first()
    )
    if held is None:
        return None
    return _entry(generation, EntryKind.RELEASE, -held)


def settle(generation: Generation, amount: Decimal) -> None:
    """Turn the hold into a charge of ``amount`` (the video exists and is stored)."""
    release(generation)
    _entry(generation, EntryKind.CHARGE, amount)


def refund(generation: Generation, amount: Decimal, note: str) -> UsageEntry:
    """An operator's refund: a new negative entry; the charge stays in the ledger."""
    return UsageEntry.objects.create(
        organization_id=generation.organization_id,
        user_id=generation.user_id,
        generation=generation,
        kind=EntryKind.REFUND,
        amount=-abs(amount),
        provider=generation.provider,
        model=generation.model,
        seconds=generation.seconds,
        price_version=generation.price_version,
        period=period_of(generation.created_at),
        note=note[:300],
    )
