"""``manage.py refresh_prices``: fal's price list (the emulator) refreshes the catalog's prices into
the price history. A dry run prints the diff and writes nothing; a run writes one row per changed
model and none for the same prices again; what cannot be mapped is reported and changes nothing; a
refused key is a clear error. The estimate and the hold follow the newest price in effect, and a
generation priced before keeps its amount and version (a priced fal model, amounts asserted)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.accounts.models import Membership
from apps.api_keys import services as key_services
from apps.billing import prices
from apps.billing.models import CatalogPrice, EntryKind, UsageEntry
from apps.core.scoping import org_scope
from apps.generations import engine, services
from apps.generations.resolve import GenerationRequest
from apps.providers import catalog
from apps.providers.fal.catalog import PRICE_VERSION
from tests.emulators.fal import API_KEY, FalEmulator

pytestmark = pytest.mark.django_db
VEO = catalog.get_model("fal/veo-3.1")


@pytest.fixture
def fal_emulator(settings) -> Iterator[FalEmulator]:
    with FalEmulator(job_seconds=10.0) as emulator:
        for name, value in emulator.settings().items():
            setattr(settings, name, value)
        settings.FAL_PRICING_KEY = API_KEY  # the operator's key
        yield emulator


def refresh(*args: str) -> str:
    out = StringIO()
    call_command("refresh_prices", "--supplier", "fal", *args, stdout=out)
    return out.getvalue()


def line(output: str, qualified_id: str) -> str:
    return next(row for row in output.splitlines() if row.startswith(qualified_id + " "))


def test_a_dry_run_prints_the_diff_and_writes_nothing(fal_emulator):
    fal_emulator.set_price("fal-ai/veo3.1", 0.60)
    out = refresh("--dry-run")
    veo = line(out, "fal/veo-3.1")
    assert "0.4 -> 0.6" in veo and "+50.0%" in veo and "would write a new version" in veo
    assert f"unchanged ({PRICE_VERSION})" in line(out, "fal/wan-2.7")
    assert "not mapped, catalog price kept" in line(out, "fal/kling-v3")
    assert "Dry run: 1 price(s) would change; nothing written." in out
    assert not CatalogPrice.objects.exists()
    assert API_KEY not in out and API_KEY.partition(":")[2] not in out


def test_a_run_writes_history_rows_and_a_second_run_writes_none(fal_emulator):
    fal_emulator.set_price("fal-ai/veo3.1", 0.60)
    fal_emulator.set_price("luma/agent/ray/v3.2/text-to-video", 0.40, "videos")
    out = refresh()
    rows = {r.model: r for r in CatalogPrice.objects.all()}
    assert set(rows) == {"veo-3.1", "luma-ray-3.2"}
    veo = rows["veo-3.1"]
    assert (veo.supplier, veo.unit, veo.unit_price, veo.source) == (
        "fal",
        "seconds",
        Decimal("0.6"),
        "fal.ai pricing API",
    )
    assert veo.price_version.startswith("fal-api-") and veo.valid_from == veo.fetched_at
    assert f"written as {veo.price_version}" in line(out, "fal/veo-3.1")
    assert "-20.0%" in line(out, "fal/luma-ray-3.2")
    assert "2 new price version(s) written." in out

    again = refresh()  # the same prices: idempotent
    assert CatalogPrice.objects.count() == 2
    assert f"unchanged ({veo.price_version})" in line(again, "fal/veo-3.1")
    assert "0 new price version(s) written." in again

    fal_emulator.set_price("fal-ai/veo3.1", 0.40)  # back to the catalog's price: a new version too
    refresh()
    newest = CatalogPrice.objects.filter(model="veo-3.1").order_by("-valid_from", "-id").first()
    assert CatalogPrice.objects.filter(model="veo-3.1").count() == 2 and newest.unit_price == Decimal("0.4")
    assert prices.catalog_price_effective(VEO).price_table() == VEO.price_table()


def test_units_that_cannot_be_mapped_are_reported_and_change_nothing(fal_emulator):
    fal_emulator.set_price("fal-ai/veo3.1", 0.002, "1000 tokens")
    fal_emulator.set_price("fal-ai/wan/v2.7/text-to-video", 0.12, "seconds")
    out = refresh()
    assert "not mapped, catalog price kept: unit '1000 tokens'" in line(out, "fal/veo-3.1")
    assert list(CatalogPrice.objects.values_list("model", flat=True)) == ["wan-2.7"]
    assert prices.catalog_price_effective(VEO) == VEO


def test_a_refused_key_is_a_clear_error_and_writes_nothing(fal_emulator, settings):
    settings.FAL_PRICING_KEY = "fal-emu-key-id:not-the-secret"
    with pytest.raises(CommandError) as info:
        refresh()
    message = str(info.value)
    assert message.startswith("The price list could not be read: fal rejected the API key")
    assert "401" in message and "not-the-secret" not in message
    assert not CatalogPrice.objects.exists()


def test_without_a_key_the_command_says_where_to_put_one(fal_emulator, settings):
    settings.FAL_PRICING_KEY = ""
    with pytest.raises(CommandError, match="Set FAL_PRICING_KEY, or name an organization"):
        refresh()
    with pytest.raises(CommandError, match="publishes no price list"):
        call_command("refresh_prices", "--supplier", "runway", "--org", "x", stdout=StringIO())


def test_an_organizations_key_can_read_the_list(tenants, fal_emulator, settings):
    settings.FAL_PRICING_KEY = ""
    with pytest.raises(CommandError, match=r"has no fal\.ai key"):
        refresh("--org", tenants.org_a.slug)
    alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    with org_scope(tenants.org_a):
        key_services.provider_key_create(by=alice, provider="fal", api_key=API_KEY)
    fal_emulator.set_price("fal-ai/veo3.1", 0.50)
    assert "+25.0%" in line(refresh("--org", tenants.org_a.slug), "fal/veo-3.1")
    assert CatalogPrice.objects.get().unit_price == Decimal("0.5")


def test_the_newest_row_in_effect_wins_and_a_future_one_waits():
    now = timezone.now()
    table = VEO.price_table()
    doubled = type(table)(
        per_second={k: v * 2 for k, v in table.per_second.items()},
        per_second_audio={k: v * 2 for k, v in table.per_second_audio.items()},
    )
    common = {"supplier": "fal", "model": "veo-3.1", "unit": "seconds", "source": "test", "fetched_at": now}
    CatalogPrice.objects.create(
        **common, unit_price=Decimal("0.8"), prices=doubled.as_json(), price_version="v-now", valid_from=now
    )
    CatalogPrice.objects.create(
        **common,
        unit_price=Decimal("0.4"),
        prices=table.as_json(),
        price_version="v-later",
        valid_from=now + timedelta(days=1),
    )
    effective = prices.catalog_price_effective(VEO)
    assert effective.price_version == "v-now"
    assert effective.cost(seconds=8, size="1280x720", audio=True) == Decimal("6.4000")
    assert prices.catalog_price_effective(VEO, at=now + timedelta(days=2)).price_version == "v-later"
    assert prices.catalog_price_effective(VEO, at=now - timedelta(seconds=1)) is VEO  # the catalog before any row


def test_a_row_that_no_longer_fits_the_catalog_entry_gives_way_to_the_catalog():
    """A catalog that since gained a size: the old row cannot price it, so it does not apply."""
    now = timezone.now()
    table = VEO.price_table().as_json()
    del table["per_second"]["1280x720"]
    CatalogPrice.objects.create(
        supplier="fal",
        model="veo-3.1",
        unit="seconds",
        unit_price=Decimal("0.8"),
        prices=table,
        price_version="v-stale",
        valid_from=now,
        source="test",
        fetched_at=now,
    )
    assert prices.catalog_price_effective(VEO) is VEO


def test_the_estimate_and_the_hold_follow_the_refresh_and_older_holds_keep_theirs(tenants, fal_emulator, monkeypatch):
    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)  # no worker: the holds are the point
    alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    with org_scope(tenants.org_a):
        key_services.provider_key_create(by=alice, provider="fal", api_key=API_KEY)
    wanted = GenerationRequest(model="fal/veo-3.1", prompt="a harbour at dawn", seconds=8, size="1280x720")

    def create():
        with org_scope(tenants.org_a):
            return services.generation_create(org=tenants.org_a, user=tenants.alice, request=wanted)

    before = create()
    assert (before.estimated_cost, before.price_version) == (Decimal("3.2000"), PRICE_VERSION)  # 8 s at $0.40

    fal_emulator.set_price("fal-ai/veo3.1", 0.60)
    refresh()
    version = CatalogPrice.objects.get(model="veo-3.1").price_version

    api = tenants.api_client_for(tenants.alice_token)
    body = {"model": "fal/veo-3.1", "duration": 8, "size": "1280x720"}
    r = api.post("/v1/usage/estimate", body, content_type="application/json")
    assert r.status_code == 200, r.content
    assert (r.json()["estimated_cost"], r.json()["price_version"]) == ("4.8000", version)

    after = create()
    assert (after.estimated_cost, after.price_version) == (Decimal("4.8000"), version)
    before.refresh_from_db()
    assert (before.estimated_cost, before.price_version) == (Decimal("3.2000"), PRICE_VERSION)

    def ledger(gen):
        return [(e.kind, e.amount, e.price_version) for e in UsageEntry.all_orgs.filter(generation=gen).order_by("id")]

    assert ledger(before) == [(EntryKind.HOLD, Decimal("3.2000"), PRICE_VERSION)]
    assert ledger(after) == [(EntryKind.HOLD, Decimal("4.8000"), version)]


def test_cheapest_first_compares_the_prices_in_effect_not_the_catalogs(tenants):
    """A refreshed price moves a supplier in the "cheapest first" order: the estimate, the hold and
    the router's choice all read the same price."""
    from apps.api_keys import crypto
    from apps.api_keys.models import ProviderKey
    from apps.core.ids import public_id
    from apps.generations.resolve import resolve_request
    from apps.generations.services import routing_policy_set

    owner = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    with org_scope(tenants.org_a):
        for supplier in ("fal", "replicate"):
            ProviderKey.objects.create(
                organization=tenants.org_a,
                public_id=public_id("key"),
                provider=supplier,
                ciphertext=crypto.encrypt('{"api_key":"test-key-000000"}'),
                last4="0000",
                status="valid",
                is_default=True,
            )
        routing_policy_set(by=owner, order="cheapest")
        wanted = GenerationRequest(model="veo-3.1", prompt="p", seconds=8, size="1280x720")
        first = resolve_request(org=tenants.org_a, request=wanted)
        cheap = first.model
        assert cheap.provider in ("fal", "replicate"), cheap

        table = cheap.price_table()
        tenfold = type(table)(
            per_second={k: v * 10 for k, v in (table.per_second or {}).items()} or None,
            per_second_audio={k: v * 10 for k, v in (table.per_second_audio or {}).items()} or None,
            clip={k: v * 10 for k, v in (table.clip or {}).items()} or None,
        )
        now = timezone.now()
        CatalogPrice.objects.create(
            supplier=cheap.provider,
            model="veo-3.1",
            unit="seconds",
            unit_price=Decimal("9"),
            prices=tenfold.as_json(),
            price_version="v-tenfold",
            valid_from=now,
            source="test",
            fetched_at=now,
        )
        second = resolve_request(org=tenants.org_a, request=wanted)
    assert second.model.provider != cheap.provider
    assert second.estimate < first.estimate * 10


def test_the_models_listing_and_the_playground_show_the_price_in_effect(tenants):
    """After a refresh, what MediaRouter shows (GET /v1/models, the Playground's labels) is what it
    charges: the same newest price row, read once per listing."""
    now = timezone.now()
    table = VEO.price_table()
    doubled = type(table)(
        per_second={k: v * 2 for k, v in table.per_second.items()},
        per_second_audio={k: v * 2 for k, v in table.per_second_audio.items()},
    )
    CatalogPrice.objects.create(
        supplier="fal",
        model="veo-3.1",
        unit="seconds",
        unit_price=Decimal("0.8"),
        prices=doubled.as_json(),
        price_version="v-doubled",
        valid_from=now,
        source="test",
        fetched_at=now,
    )
    r = tenants.api_client_for(tenants.alice_token).get("/v1/models")
    assert r.status_code == 200, r.content
    veo = next(m for m in r.json()["data"] if m["id"] == "veo-3.1")
    fal = next(s for s in veo["suppliers"] if s["provider"] == "fal")
    listed = {size: Decimal(p) for size, p in fal["price_per_second"].items()}
    assert listed == {size: price * 2 for size, price in table.per_second.items()}
    assert fal["price_version"] == "v-doubled"
