"""The price history end to end with a real worker: a fal video asked for before a price refresh is
charged at the old price and keeps its version; one asked for after is held and charged at fal's new
price with the new version. Amounts asserted on every hold, release and charge."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from apps.billing.models import CatalogPrice, EntryKind, UsageEntry
from apps.generations.models import State
from apps.providers.fal.catalog import PRICE_VERSION

BODY = {"model": "fal/veo-3.1", "prompt": "a quiet harbour", "duration": 8, "size": "1280x720"}


def ledger(gen) -> list[tuple[str, Decimal, str]]:
    return [(e.kind, e.amount, e.price_version) for e in UsageEntry.all_orgs.filter(generation=gen).order_by("id")]


@pytest.mark.integration
def test_a_refresh_prices_new_videos_and_old_ones_keep_their_price(tenants, live_engine):
    client = tenants.api_client_for(tenants.alice_token)
    first = client.post("/v1/video/generations", BODY, content_type="application/json")
    assert first.status_code == 201, first.content

    # fal raises Veo 3.1 from $0.40 to $0.60 a second (720p, audio) while the first video runs
    live_engine.emulators["fal"].set_price("fal-ai/veo3.1", 0.60)
    out = StringIO()
    call_command("refresh_prices", "--supplier", "fal", "--org", tenants.org_a.slug, stdout=out)
    version = CatalogPrice.objects.get(supplier="fal", model="veo-3.1").price_version
    assert f"written as {version}" in out.getvalue()

    second = client.post("/v1/video/generations", BODY, content_type="application/json")
    assert second.status_code == 201, second.content
    old = live_engine.wait(first.json()["id"])
    new = live_engine.wait(second.json()["id"])
    assert (old.state, new.state) == (State.COMPLETED, State.COMPLETED), (old.error_message, new.error_message)

    assert (old.final_cost, old.price_version) == (Decimal("3.2000"), PRICE_VERSION)
    assert ledger(old) == [
        (EntryKind.HOLD, Decimal("3.2000"), PRICE_VERSION),
        (EntryKind.RELEASE, Decimal("-3.2000"), PRICE_VERSION),
        (EntryKind.CHARGE, Decimal("3.2000"), PRICE_VERSION),
    ]
    assert (new.final_cost, new.price_version) == (Decimal("4.8000"), version)
    assert ledger(new) == [
        (EntryKind.HOLD, Decimal("4.8000"), version),
        (EntryKind.RELEASE, Decimal("-4.8000"), version),
        (EntryKind.CHARGE, Decimal("4.8000"), version),
    ]
    assert client.get(f"/v1/video/generations/{new.public_id}").json()["usage"]["price_version"] == version


@pytest.mark.integration
def test_a_move_to_another_supplier_is_priced_at_its_refreshed_price(tenants, live_engine):
    from apps.generations.models import RoutingPolicy
    from apps.providers import catalog

    RoutingPolicy.all_orgs.create(
        organization=tenants.org_a, order="explicit", suppliers=["replicate", "fal"], per_model={}
    )
    live_engine.emulators["fal"].set_price("fal-ai/veo3.1", 0.60)
    call_command("refresh_prices", "--supplier", "fal", "--org", tenants.org_a.slug, stdout=StringIO())
    version = CatalogPrice.objects.get(supplier="fal", model="veo-3.1").price_version
    replicate_price = catalog.get_model("replicate/veo-3.1").cost(seconds=8, size="1280x720", audio=True)
    live_engine.emulators["replicate"].add_fault("create", status=429, body={"detail": "Too many requests"})

    client = tenants.api_client_for(tenants.alice_token)
    body = {**BODY, "model": "veo-3.1"}  # routed: Replicate first, then fal
    r = client.post("/v1/video/generations", body, content_type="application/json")
    assert r.status_code == 201, r.content
    assert r.json()["provider"] == "replicate"
    gen = live_engine.wait(r.json()["id"])
    assert gen.state == State.COMPLETED, (gen.error_code, gen.error_message)
    assert (gen.provider, gen.final_cost, gen.price_version) == ("fal", Decimal("4.8000"), version)
    entries = ledger(gen)
    assert entries[0][:2] == (EntryKind.HOLD, replicate_price)
    assert entries[1] == (EntryKind.ADJUST, Decimal("4.8000") - replicate_price, version)
    assert entries[2:] == [
        (EntryKind.RELEASE, Decimal("-4.8000"), version),
        (EntryKind.CHARGE, Decimal("4.8000"), version),
    ]
