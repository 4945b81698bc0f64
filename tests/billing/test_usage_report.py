"""The usage report's money comes from one grouped query over the range's ledger entries (fast
at 100,000 videos, bench/pages.py): its totals and breakdowns must be what a query per figure
gives, refunds, a running job's hold and several members included."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.billing import ledger, selectors
from apps.billing.models import EntryKind, UsageEntry
from apps.core.scoping import org_scope
from apps.generations import engine, services
from apps.generations.services import GenerationRequest

pytestmark = pytest.mark.django_db


def _create(tenants, user, seconds: int):
    return services.generation_create(
        org=tenants.org_a,
        user=user,
        request=GenerationRequest(model="sandbox-video", prompt=f"a priced fox, {seconds} s", seconds=seconds),
    )


def _per_figure(org, start, end) -> dict:
    """The figures as the report computed them before, one query each."""
    since, until = selectors.start_of_day(start), selectors.start_of_day(end + timezone.timedelta(days=1))
    entries = UsageEntry.objects.filter(
        organization=org, generation__created_at__gte=since, generation__created_at__lt=until
    )
    spent = entries.filter(kind__in=selectors.SPENT)
    videos = Count("id", filter=Q(kind=EntryKind.CHARGE))

    def rows(*fields):
        return sorted(
            (tuple(r[f] for f in fields), r["cost"], r["videos"])
            for r in spent.values(*fields).annotate(cost=Sum("amount"), videos=videos)
        )

    return {
        "total": spent.aggregate(t=Sum("amount"))["t"] or Decimal(0),
        "reserved": entries.filter(kind__in=selectors.RESERVED).aggregate(t=Sum("amount"))["t"] or Decimal(0),
        "provider": rows("provider"),
        "model": rows("provider", "model"),
        "member": rows("user__email"),
        "day": sorted(
            (r["day"], r["cost"])
            for r in spent.annotate(day=TruncDate("generation__created_at")).values("day").annotate(cost=Sum("amount"))
        ),
    }


def test_the_report_adds_up_what_a_query_per_figure_gives(tenants, priced_sandbox, monkeypatch):
    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)  # no worker: jobs stay where they are put
    today = timezone.localdate()
    with org_scope(tenants.org_a):
        done = [_create(tenants, tenants.bob, 8), _create(tenants, tenants.alice, 4), _create(tenants, tenants.bob, 2)]
        running = _create(tenants, tenants.alice, 12)  # its hold is still reserved
        for gen in done:
            ledger.settle(gen, gen.estimated_cost)
        ledger.refund(done[0], Decimal("0.50"), "partial")
        ledger.refund(done[0], Decimal("0.25"), "again")
        with CaptureQueriesContext(connection) as ctx:
            report = selectors.usage_report(org=tenants.org_a, start=today.replace(day=1), end=today)
        expected = _per_figure(tenants.org_a, today.replace(day=1), today)
    ledger_queries = [q for q in ctx.captured_queries if "generations_usageentry" in q["sql"]]
    assert len(ledger_queries) == 1
    # 8 + 4 + 2 s at $0.50/s charged, $0.75 refunded; the running 12 s job's $6 held
    assert report.total_cost == expected["total"] == Decimal("6.2500")
    assert report.reserved == expected["reserved"] == Decimal("6.0000") == running.estimated_cost
    assert sorted(((r["provider"],), r["cost"], r["videos"]) for r in report.by_provider) == expected["provider"]
    assert sorted(((r["provider"], r["model"]), r["cost"], r["videos"]) for r in report.by_model) == expected["model"]
    assert sorted(((r["user__email"],), r["cost"], r["videos"]) for r in report.by_member) == expected["member"]
    assert [(r["day"], r["cost"]) for r in report.by_day] == expected["day"] == [(today, Decimal("6.2500"))]
    assert expected["member"] == [
        (("alice@example.com",), Decimal("2.0000"), 1),
        (("bob@example.com",), Decimal("4.2500"), 2),
    ]
    assert [r["cost"] for r in report.by_member] == [Decimal("4.2500"), Decimal("2.0000")]  # biggest first
