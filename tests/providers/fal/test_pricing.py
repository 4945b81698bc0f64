"""fal's price list against the emulator: the platform API's one unit price per endpoint mapped
onto our tables by each catalog entry's reference cell (scaled, never guessed), the units,
currencies and models that cannot be mapped, the 50-ids-per-call rule, and a refused key."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from apps.providers import catalog, registry
from apps.providers.base import Credentials, ProviderError
from apps.providers.fal import pricing


def fal_models():
    return [m for m in catalog.all_models() if m.provider == "fal"]


def quotes(fal) -> dict:
    return {q.model.id: q for q in fal.fetch_prices(fal_models())}


def test_the_listed_prices_map_onto_the_catalog_tables(fal, fal_emulator):
    found = quotes(fal)
    assert list(found) == [m.id for m in fal_models()]  # one quote per entry, in catalog order
    for model_id in ("veo-3.1", "veo-3.1-fast", "wan-2.7", "luma-ray-3.2"):
        q = found[model_id]
        assert q.prices is not None, q.reason
        # the emulator lists today's catalog prices: mapped, they are the catalog's tables exactly
        assert q.prices == q.model.price_table(), model_id
    assert (found["veo-3.1"].unit, found["veo-3.1"].unit_price) == ("seconds", Decimal("0.4"))
    assert found["veo-3.1"].catalog_unit_price == Decimal("0.40")  # 720p with audio is the listed cell
    assert found["luma-ray-3.2"].unit == "videos" and found["luma-ray-3.2"].catalog_unit_price == Decimal("0.50")
    assert fal_emulator.pricing_batches == [5]  # one call for the five references (H3 is not listed)


def test_a_new_price_scales_the_whole_table_from_the_reference_cell(fal, fal_emulator):
    fal_emulator.set_price("fal-ai/veo3.1", 0.60)  # was 0.40 (720p, audio on): +50 %
    fal_emulator.set_price("luma/agent/ray/v3.2/text-to-video", 0.40, "videos")  # was 0.50 per 5 s at 540p
    found = quotes(fal)
    veo = found["veo-3.1"].prices
    assert veo.per_second_audio["1280x720"] == Decimal("0.6")
    assert veo.per_second["1280x720"] == Decimal("0.3")  # audio off keeps its ratio to audio on
    assert (veo.per_second_audio["3840x2160"], veo.per_second["3840x2160"]) == (Decimal("0.9"), Decimal("0.6"))
    scaled = found["veo-3.1"].model.with_prices(veo, version="v", source_date=found["veo-3.1"].model.price_source_date)
    assert scaled.cost(seconds=8, size="1280x720", audio=True) == Decimal("4.8000")
    assert scaled.cost(seconds=8, size="1280x720", audio=False) == Decimal("2.4000")
    luma = found["luma-ray-3.2"].prices
    assert luma.clip[(5, "960x540")] == Decimal("0.4") and luma.clip[(10, "1920x1080")] == Decimal("3.2")
    assert found["wan-2.7"].prices == found["wan-2.7"].model.price_table()  # unchanged where fal is


def test_what_cannot_be_mapped_is_said_and_keeps_the_catalog_price(fal, fal_emulator):
    fal_emulator.set_price("fal-ai/wan/v2.7/text-to-video", 0.0004, "compute seconds")
    fal_emulator.set_price("fal-ai/veo3.1/fast", 0.14, "seconds", "EUR")
    fal_emulator.set_price("luma/agent/ray/v3.2/text-to-video", 0.05, "seconds")  # per clip in our table
    found = quotes(fal)
    assert found["wan-2.7"].prices is None and "'compute seconds'" in found["wan-2.7"].reason
    assert found["veo-3.1-fast"].prices is None and "EUR" in found["veo-3.1-fast"].reason
    assert found["luma-ray-3.2"].prices is None and "per video" in found["luma-ray-3.2"].reason
    # no single unit price stands for Kling's tiers and options, Hailuo's durations, Seedance's tokens
    for model_id in ("kling-v3", "hailuo-2.3", "seedance-2.0"):
        assert found[model_id].prices is None and found[model_id].unit_price is None
        assert "no single fal unit price" in found[model_id].reason
    assert found["minimax-h3"].reason == "fal's price list has no price for minimax/h3/text-to-video"
    assert found["veo-3.1"].prices is not None  # the others are unaffected


def test_a_list_longer_than_fifty_ids_is_read_in_calls_of_fifty(fal, fal_emulator):
    ids = [f"fal-ai/other-{i:03}" for i in range(120)] + ["fal-ai/veo3.1"]
    listed = pricing.fetch(fal, ids)
    assert sorted(fal_emulator.pricing_batches) == [21, 50, 50]
    assert listed == {"fal-ai/veo3.1": pricing.Listed(Decimal("0.4"), "seconds", "USD")}
    # the emulator refuses what fal refuses: more than 50 ids in one call, comma-separated too
    many = ",".join(ids[:51])
    r = requests.get(
        f"{fal_emulator.root_url}/v1/models/pricing",
        params={"endpoint_id": many},
        headers={"Authorization": f"Key {fal_emulator.api_key}"},
        timeout=5,
    )
    assert r.status_code == 400


def test_a_refused_key_is_a_clear_error_without_the_key(fal_emulator):
    bad = registry.build("fal", Credentials(api_key="fal-emu-key-id:wrong-secret-1234"))
    with pytest.raises(ProviderError) as info:
        bad.fetch_prices(fal_models())
    assert info.value.code == "invalid_api_key" and info.value.status_code == 401
    assert "price list" in info.value.message and "wrong-secret-1234" not in str(info.value)
