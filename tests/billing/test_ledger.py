"""The ledger's one entry constructor: holds, releases and charges once per generation, refunds
as often as an operator grants them, each row carrying the generation's money facts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.billing import ledger, selectors
from apps.billing.models import EntryKind, UsageEntry
from apps.core.scoping import org_scope
from apps.generations import engine, services
from apps.generations.services import GenerationRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def priced_gen(tenants, priced_sandbox, monkeypatch):
    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)  # no worker here
    with org_scope(tenants.org_a):
        return services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=GenerationRequest(model="sandbox-video", prompt="a priced fox", seconds=8),
        )


def _entries(gen) -> list[tuple[str, Decimal]]:
    return [(e.kind, e.amount) for e in UsageEntry.all_orgs.filter(generation=gen).order_by("id")]


def test_hold_release_charge_are_once_each_and_refunds_repeat(tenants, priced_gen):
    gen = priced_gen
    assert gen.estimated_cost == Decimal("4.0000")  # 8 s at $0.50/s
    with org_scope(tenants.org_a):
        assert ledger.hold(gen) is None  # the create placed it already
        ledger.settle(gen, gen.estimated_cost)
        ledger.settle(gen, gen.estimated_cost)  # a retried settle charges nothing more
        assert ledger.refundable(gen) == Decimal("4.0000")
        first = ledger.refund(gen, Decimal("0.50"), "partial")
        second = ledger.refund(gen, Decimal("0.25"), "x" * 400)
        assert ledger.refundable(gen) == Decimal("3.2500")
    assert _entries(gen) == [
        (EntryKind.HOLD, Decimal("4.0000")),
        (EntryKind.RELEASE, Decimal("-4.0000")),
        (EntryKind.CHARGE, Decimal("4.0000")),
        (EntryKind.REFUND, Decimal("-0.5000")),
        (EntryKind.REFUND, Decimal("-0.2500")),
    ]
    for entry in (first, second):
        entry.refresh_from_db()
        assert (entry.organization_id, entry.user_id, entry.provider, entry.model, entry.seconds) == (
            tenants.org_a.pk,
            tenants.bob.pk,
            "sandbox",
            "sandbox-video",
            8,
        )
        assert entry.period == ledger.period_of(gen.created_at) and entry.price_version == gen.price_version
    assert len(second.note) == 300
    # spent: the charge less the refunds; nothing reserved once the hold is released
    spent, reserved = selectors.organization_usage(org=tenants.org_a)
    assert (spent, reserved) == (Decimal("3.2500"), Decimal("0"))


def test_a_generation_without_a_charge_has_nothing_to_refund(tenants, priced_gen):
    with org_scope(tenants.org_a):
        assert ledger.has_hold(priced_gen)
        assert ledger.refundable(priced_gen) is None
        engine.fail(priced_gen, code="x", message="failed")
        assert ledger.refundable(priced_gen) is None
    assert _entries(priced_gen) == [(EntryKind.HOLD, Decimal("4.0000")), (EntryKind.RELEASE, Decimal("-4.0000"))]


def test_monthly_totals_for_operators(tenants, priced_gen):
    with org_scope(tenants.org_a):
        ledger.settle(priced_gen, priced_gen.estimated_cost)
        ledger.refund(priced_gen, Decimal("0.5"), "goodwill")
    totals = selectors.ledger_monthly_totals()
    (org_row,) = totals.by_org
    assert org_row["organization__slug"] == tenants.org_a.slug
    assert (org_row["spent"], org_row["reserved"], org_row["videos"]) == (Decimal("3.5"), Decimal("0"), 1)
    (member_row,) = totals.by_member
    assert member_row["user__email"] == "bob@example.com" and member_row["spent"] == Decimal("3.5")
