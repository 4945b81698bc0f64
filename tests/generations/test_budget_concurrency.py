"""N parallel creates cannot overrun a budget: the hold is placed under a lock of the
organization's row (SELECT ... FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on SQLite)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import close_old_connections

from apps.billing.models import UsageEntry
from apps.core.errors import PaymentRequired
from apps.core.scoping import org_scope
from apps.generations import engine, services
from apps.generations.models import Generation


@pytest.fixture
def priced_sandbox(monkeypatch):
    from apps.providers import catalog

    model = catalog.get_model("sandbox-video")
    original = model.price_per_second
    object.__setattr__(model, "price_per_second", {size: Decimal("0.50") for size in model.sizes})
    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)  # no worker here
    yield model
    object.__setattr__(model, "price_per_second", original)


@pytest.mark.django_db(transaction=True)
def test_parallel_creates_never_overrun_the_org_budget(tenants, priced_sandbox):
    tenants.org_a.monthly_budget = Decimal("3.00")  # room for exactly three $1.00 videos
    tenants.org_a.save()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            with org_scope(tenants.org_a):
                services.generation_create(
                    org=tenants.org_a,
                    user=tenants.bob if n % 2 else tenants.alice,
                    request=services.GenerationRequest(model="sandbox-video", prompt=f"parallel {n}", seconds=2),
                )
            result = "created"
        except PaymentRequired:
            result = "refused"
        finally:
            close_old_connections()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] * 3 + ["refused"] * 5
    assert Generation.all_orgs.filter(organization=tenants.org_a).count() == 3
    held = sum(e.amount for e in UsageEntry.all_orgs.filter(organization=tenants.org_a, kind="hold"))
    assert held == Decimal("3.00")
