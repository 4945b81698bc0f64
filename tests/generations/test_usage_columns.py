"""The usage report's columns: ``reported_cost`` reads what suppliers send, and migration 0011
fills ``provider_cost``, ``output_probed`` and ``output_flagged`` in for the rows there are."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.generations.models import Generation, reported_cost

BEFORE = [("generations", "0010_perf_indexes")]


@pytest.mark.parametrize(
    "usage, expected",
    [
        ({"cost_usd": "4.8000"}, Decimal("4.8")),
        ({"cost_usd": 0.25}, Decimal("0.25")),
        ({"cost_usd": 3}, Decimal("3")),
        ({"cost_usd": "n/a"}, None),
        ({"cost_usd": "NaN"}, None),
        ({"cost_usd": "Infinity"}, None),
        ({"cost_usd": True}, None),
        ({"cost_usd": None}, None),
        ({"cost_usd": {"amount": 1}}, None),
        ({"units": 3}, None),
        ({}, None),
        (None, None),
        (["cost_usd"], None),
    ],
)
def test_reported_cost_reads_numbers_and_numeric_strings_and_nothing_else(usage, expected):
    assert reported_cost(usage) == expected


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_the_columns_in_batches(monkeypatch):
    migration = importlib.import_module("apps.generations.migrations.0011_usage_columns")
    monkeypatch.setattr(migration, "BATCH", 2)  # five videos: three batches
    probe = {"duration": 4.0, "width": 1280, "height": 720}
    mismatch = [{"field": "duration", "asked": 8, "delivered": 4, "message": "4 s, not 8."}]
    shapes = [  # (provider_usage, media_probe, output_mismatch) -> (provider_cost, probed, flagged)
        (({"cost_usd": "1.20"}, probe, []), (Decimal("1.2"), True, False)),
        (({"cost_usd": 0.8}, probe, mismatch), (Decimal("0.8"), True, True)),
        (({"cost_usd": "n/a"}, {}, []), (None, False, False)),
        (({"units": 3}, probe, []), (None, True, False)),
        (({}, {}, []), (None, False, False)),
    ]
    MigrationExecutor(connection).migrate(BEFORE)
    try:
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        user = old.get_model("accounts", "User").objects.create(email="m@example.com", password="x")
        org = old.get_model("accounts", "Organization").objects.create(name="M", slug="m")
        ids = []
        for n, ((usage, probed, found), _) in enumerate(shapes):
            ids.append(
                old.get_model("generations", "Generation")
                .objects.create(
                    organization=org,
                    public_id=f"video_cols{n}",
                    user=user,
                    provider="fal",
                    model="veo-3.1",
                    prompt="p",
                    seconds=4,
                    size="1280x720",
                    state="completed",
                    deadline_at=timezone.now(),
                    estimated_cost=Decimal("1"),
                    provider_usage=usage,
                    media_probe=probed,
                    output_mismatch=found,
                )
                .pk
            )
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    filled = {
        pk: (cost, probed, flagged)
        for pk, cost, probed, flagged in Generation.all_orgs.values_list(
            "pk", "provider_cost", "output_probed", "output_flagged"
        )
    }
    assert [filled[pk] for pk in ids] == [expected for _, expected in shapes]
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, "generations_generation")
    assert "gen_org_usage_cover" in indexes and "gen_org_created_cover" not in indexes
