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
    # the ledger in two reads (spent, grouped; the running videos' holds, summed), the videos in
    # one, no joins
    ledger_queries = [q["sql"] for q in ctx.captured_queries if "generations_usageentry" in q["sql"]]
    video_queries = [
        q["sql"]
        for q in ctx.captured_queries
        if 'FROM "generations_generation"' in q["sql"] and "generations_usageentry" not in q["sql"]
    ]
    assert len(ledger_queries) == 2 and len(video_queries) == 1
    assert not any("JOIN" in sql.upper() for sql in ledger_queries + video_queries)
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


def _old_video_figures(gens) -> dict:
    """The video figures as the report computed them before the columns: from the JSON the
    suppliers and the probe wrote, a query (or a parse) per figure."""
    completed = gens.filter(state="completed")
    reported: dict = {}
    rows = completed.exclude(provider_usage={}).values_list("provider", "model", "provider_usage")
    for provider, model, usage in rows:
        try:
            amount = Decimal(str(usage["cost_usd"])) if "cost_usd" in usage else None
        except ArithmeticError:
            amount = None
        if amount is not None:
            reported[(provider, model)] = reported.get((provider, model), Decimal(0)) + amount
    verified = list(
        completed.exclude(media_probe={})
        .values("provider", "model")
        .annotate(videos=Count("id"), mismatched=Count("id", filter=~Q(output_mismatch=[])))
        .order_by("-mismatched", "provider", "model")
    )
    return {
        "count": gens.count(),
        "completed": completed.count(),
        "failed": gens.filter(state__in=["failed", "canceled"]).count(),
        "seconds": completed.aggregate(s=Sum("seconds"))["s"] or 0,
        "reported": reported,
        "verified": verified,
    }


def test_the_video_figures_read_from_columns_are_what_the_json_gives(tenants, priced_sandbox, monkeypatch):
    from apps.generations import media
    from apps.generations.models import Generation, reported_cost

    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)
    today = timezone.localdate()
    probe = {"duration": 4.0, "width": 1280, "height": 720, "has_audio": True}
    mismatch = [{"field": "seconds", "asked": 8, "delivered": 4, "message": "4 s, not 8."}]
    # (state, supplier's usage, probe, mismatches): numbers, numeric strings, garbage and nothing
    shapes = [
        ("completed", {"cost_usd": "1.20"}, probe, []),
        ("completed", {"cost_usd": 0.8}, probe, mismatch),
        ("completed", {"cost_usd": "n/a"}, {}, []),
        ("completed", {"units": 3}, probe, []),
        ("completed", {}, {}, []),
        ("failed", {"cost_usd": "9.99"}, {}, []),  # a failed job's report is not counted
        ("canceled", {}, {}, []),
        ("in_progress", {}, {}, []),
    ]
    with org_scope(tenants.org_a):
        for n, (state, usage, probed, found) in enumerate(shapes):
            gen = _create(tenants, tenants.bob if n % 2 else tenants.alice, (2, 4, 8, 12)[n % 4])
            Generation.objects.filter(pk=gen.pk).update(
                state=state,
                provider_usage=usage,
                provider_cost=reported_cost(usage),
                **media.probe_fields(probed, found),
            )
        gens = Generation.objects.filter(organization=tenants.org_a)
        ledger.settle(gens.filter(state="completed").first(), Decimal("1.00"))
        report = selectors.usage_report(org=tenants.org_a, start=today, end=today)
        old = _old_video_figures(gens)
        mine = selectors.usage_report(org=tenants.org_a, start=today, end=today, user=tenants.alice)
        old_mine = _old_video_figures(gens.filter(user=tenants.alice))
    assert (
        (report.count, report.completed, report.failed, report.seconds)
        == (
            old["count"],
            old["completed"],
            old["failed"],
            old["seconds"],
        )
        == (8, 5, 2, 2 + 4 + 8 + 12 + 2)
    )
    assert (
        report.verified
        == old["verified"]
        == [{"provider": "sandbox", "model": "sandbox-video", "videos": 3, "mismatched": 1}]
    )
    assert [r["provider_reported"] for r in report.by_model] == [old["reported"][("sandbox", "sandbox-video")]]
    assert old["reported"][("sandbox", "sandbox-video")] == Decimal("2.00")
    # one member's view: the same figures over her videos only
    assert (mine.count, mine.completed, mine.seconds) == (old_mine["count"], old_mine["completed"], old_mine["seconds"])
    assert mine.verified == old_mine["verified"]
