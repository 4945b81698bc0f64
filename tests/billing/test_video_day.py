"""Every ledger entry carries the day its video was created (``UsageEntry.video_day``), whenever the
entry is written, and the usage report and its CSV count the entry on that day without joining the
entries to their videos. The migration fills the day in for the entries there were."""

from __future__ import annotations

import importlib
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.accounts.models import Membership
from apps.billing import ledger, selectors
from apps.billing.models import EntryKind, UsageEntry
from apps.core.scoping import org_scope
from apps.generations import engine, services
from apps.generations.models import Generation
from apps.generations.services import GenerationRequest

OCT_31_LATE = timezone.make_aware(datetime(2026, 10, 31, 23, 59, 30), timezone.get_default_timezone())


def _create_on(tenants, user, seconds: int, created_at: datetime) -> Generation:
    gen = services.generation_create(
        org=tenants.org_a,
        user=user,
        request=GenerationRequest(model="sandbox-video", prompt=f"a priced owl, {seconds} s", seconds=seconds),
    )
    Generation.objects.filter(pk=gen.pk).update(created_at=created_at)
    day = timezone.localdate(created_at)  # its hold was written then
    UsageEntry.objects.filter(generation=gen).update(video_day=day, period=day.replace(day=1))
    gen.refresh_from_db()
    return gen


@pytest.mark.django_db
def test_every_writer_puts_the_videos_day_on_its_entry_and_the_report_counts_it_there(
    tenants, priced_sandbox, monkeypatch
):
    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)  # no worker: the job stays where it is put
    with org_scope(tenants.org_a):
        # created at 23:59:30 on Oct 31; its hold was placed then. Everything after it is written
        # "now" (December), and must still count on Oct 31.
        gen = _create_on(tenants, tenants.bob, 4, OCT_31_LATE)  # 4 s at $0.50: $2.00 held
        bob = Membership.objects.get(organization=tenants.org_a, user=tenants.bob)
        assert ledger.reprice_hold(generation=gen, membership=bob, amount=Decimal("1.00"), note="cheaper") == Decimal(
            "-1.00"
        )
        ledger.settle(gen, Decimal("2.50"))
        ledger.refund(gen, Decimal("0.40"), "partial")
        other = _create_on(tenants, tenants.alice, 2, OCT_31_LATE + timezone.timedelta(seconds=31))  # Nov 1, 00:00:01
        ledger.settle(other, Decimal("1.00"))

        running = _create_on(tenants, tenants.alice, 4, OCT_31_LATE)  # $2.00 held, still running
        alice = Membership.objects.get(organization=tenants.org_a, user=tenants.alice)
        ledger.reprice_hold(generation=running, membership=alice, amount=Decimal("2.50"), note="dearer supplier")

        entries = {e.kind: e for e in UsageEntry.objects.filter(generation=gen)}
        assert {kind: (e.amount, e.video_day, e.period) for kind, e in entries.items()} == {
            EntryKind.HOLD: (Decimal("2.0000"), date(2026, 10, 31), date(2026, 10, 1)),
            EntryKind.ADJUST: (Decimal("-1.0000"), date(2026, 10, 31), date(2026, 10, 1)),
            EntryKind.RELEASE: (Decimal("-1.0000"), date(2026, 10, 31), date(2026, 10, 1)),
            EntryKind.CHARGE: (Decimal("2.5000"), date(2026, 10, 31), date(2026, 10, 1)),
            EntryKind.REFUND: (Decimal("-0.4000"), date(2026, 10, 31), date(2026, 10, 1)),
        }
        assert {e.video_day for e in UsageEntry.objects.filter(generation=other)} == {date(2026, 11, 1)}
        assert all(e.created_at.date() > date(2026, 11, 1) for e in entries.values() if e.kind != EntryKind.HOLD)

        october = selectors.usage_report(org=tenants.org_a, start=date(2026, 10, 1), end=date(2026, 10, 31))
        november = selectors.usage_report(org=tenants.org_a, start=date(2026, 11, 1), end=date(2026, 11, 30))
        rows = selectors.usage_rows(org=tenants.org_a, start=date(2026, 10, 30), end=date(2026, 11, 2))
    # spent: 2.50 - 0.40; reserved: the running job's hold with its adjustment (settled ones net to 0)
    assert (october.total_cost, october.reserved) == (Decimal("2.1000"), Decimal("2.5000"))
    assert october.by_day == [{"day": date(2026, 10, 31), "cost": Decimal("2.1000")}]
    assert october.by_member == [{"user__email": "bob@example.com", "cost": Decimal("2.1000"), "videos": 1}]
    assert november.total_cost == Decimal("1.0000")
    assert november.by_member == [{"user__email": "alice@example.com", "cost": Decimal("1.0000"), "videos": 1}]
    assert [(r["day"], r["user__email"], r["cost"], r["videos"], r["seconds"]) for r in rows] == [
        (date(2026, 10, 31), "bob@example.com", Decimal("2.1000"), 1, 4),
        (date(2026, 11, 1), "alice@example.com", Decimal("1.0000"), 1, 2),
    ]


@pytest.mark.django_db
def test_the_report_reads_the_ledger_in_two_queries_without_a_join(tenants, priced_sandbox, monkeypatch):
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)
    today = timezone.localdate()
    with org_scope(tenants.org_a):
        ledger.settle(_create_on(tenants, tenants.bob, 2, timezone.now()), Decimal("1.00"))
        with CaptureQueriesContext(connection) as ctx:
            report = selectors.usage_report(org=tenants.org_a, start=today, end=today)
    ledger_sql = [q["sql"] for q in ctx.captured_queries if "generations_usageentry" in q["sql"]]
    assert len(ledger_sql) == 2 and not any("JOIN" in sql.upper() for sql in ledger_sql)
    assert report.by_member == [{"user__email": "bob@example.com", "cost": Decimal("1.0000"), "videos": 1}]


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_in_the_day_of_every_entry_in_batches(monkeypatch):
    migration = importlib.import_module("apps.billing.migrations.0005_usage_video_day")
    monkeypatch.setattr(migration, "BATCH", 2)  # five entries: three batches
    executor = MigrationExecutor(connection)
    executor.migrate([("billing", "0004_perf_indexes")])
    try:
        old = MigrationExecutor(connection).loader.project_state([("billing", "0004_perf_indexes")]).apps
        user = old.get_model("accounts", "User").objects.create(email="d@example.com", password="x")
        org = old.get_model("accounts", "Organization").objects.create(name="D", slug="d")
        days = {}
        for n, created in enumerate([OCT_31_LATE, OCT_31_LATE + timezone.timedelta(seconds=31)]):
            gen = old.get_model("generations", "Generation").objects.create(
                organization=org,
                public_id=f"video_day{n}",
                user=user,
                provider="sandbox",
                model="sandbox-video",
                prompt="p",
                seconds=2,
                size="1280x720",
                deadline_at=timezone.now(),
                estimated_cost=Decimal("1"),
            )
            old.get_model("generations", "Generation").objects.filter(pk=gen.pk).update(created_at=created)
            days[gen.pk] = created.date()
            for kind, amount in [("hold", "1"), ("release", "-1"), ("charge", "1")][: 3 - n]:
                old.get_model("billing", "UsageEntry").objects.create(
                    organization=org,
                    user=user,
                    generation=gen,
                    kind=kind,
                    amount=Decimal(amount),
                    provider="sandbox",
                    model="sandbox-video",
                    seconds=2,
                    period=created.date().replace(day=1),
                )
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    filled = list(UsageEntry.all_orgs.values_list("generation_id", "video_day"))
    assert len(filled) == 5
    assert all(day == days[gen_id] for gen_id, day in filled)
    assert sorted({day for _, day in filled}) == [date(2026, 10, 31), date(2026, 11, 1)]
    with connection.cursor() as cursor:
        columns = {c.name: c for c in connection.introspection.get_table_description(cursor, "generations_usageentry")}
        indexes = connection.introspection.get_constraints(cursor, "generations_usageentry")
    assert columns["video_day"].null_ok is False
    assert "usage_org_day_spent" in indexes
    assert "usage_org_day_cover" not in indexes and "usage_gen_kind_cover" not in indexes
