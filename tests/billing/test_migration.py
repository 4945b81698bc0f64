"""Moving UsageEntry from generations to billing changed Django's state only: a ledger row
written by the old schema is read by billing's model after migrating, the table keeps its name,
the content type (and with it permissions and admin history) follows the model, and the move
migrates back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.billing.models import UsageEntry

BEFORE = [("generations", "0002_provider_job_data"), ("billing", None)]


def _migrate(targets):
    """Migrate to ``targets``; the models as they were before the move (generations at 0002)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state([BEFORE[0]]).apps


def _latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_the_move_keeps_the_rows_and_the_table():
    old = _migrate(BEFORE)
    try:
        assert "generations_usageentry" in connection.introspection.table_names()
        user = old.get_model("accounts", "User").objects.create(email="m@example.com", password="x")
        org = old.get_model("accounts", "Organization").objects.create(name="M", slug="m")
        gen = old.get_model("generations", "Generation").objects.create(
            organization=org,
            public_id="video_moved",
            user=user,
            provider="sandbox",
            model="sandbox-video",
            prompt="p",
            seconds=2,
            size="1280x720",
            deadline_at=timezone.now(),
            estimated_cost=Decimal("0.5"),
        )
        old.get_model("generations", "UsageEntry").objects.create(
            organization=org,
            user=user,
            generation=gen,
            kind="hold",
            amount=Decimal("0.5"),
            provider="sandbox",
            model="sandbox-video",
            seconds=2,
            period=timezone.now().date().replace(day=1),
        )
        ContentType.objects.get_or_create(app_label="generations", model="usageentry")
    finally:
        _migrate(_latest())

    entry = UsageEntry.all_orgs.select_related("generation").get()
    assert (entry.kind, entry.amount, entry.generation.public_id) == ("hold", Decimal("0.5000"), "video_moved")
    assert UsageEntry._meta.db_table == "generations_usageentry"
    assert "billing_usageentry" not in connection.introspection.table_names()
    labels = set(ContentType.objects.filter(model="usageentry").values_list("app_label", flat=True))
    assert labels == {"billing"}

    # and back: the old state reads the same row again
    old = _migrate(BEFORE)
    try:
        assert old.get_model("generations", "UsageEntry").objects.get().amount == Decimal("0.5000")
        assert set(ContentType.objects.filter(model="usageentry").values_list("app_label", flat=True)) == {
            "generations"
        }
    finally:
        _migrate(_latest())
        ContentType.objects.clear_cache()  # the renames bypassed the manager's cache
