"""The router (apps.generations.routing): the choice for every policy, circuits, and the rule for
moving a failed submit to another supplier. The engine's fallback, with real emulators behind a
real worker, is in test_routing_live.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.cache import cache

from apps.generations import routing
from apps.generations.routing import Policy, certainly_not_created, route
from apps.providers import catalog
from apps.providers.base import ProviderError

ALL_KEYS = {slug: (f"key_{slug}", "valid", {}) for slug in ("fal", "replicate", "byteplus", "vertex", "gemini")}


@pytest.fixture(autouse=True)
def _clean_circuits():
    cache.clear()
    yield
    cache.clear()


def _suppliers(r) -> list[str]:
    return [c.supplier for c in r.candidates]


def test_a_bare_id_routes_in_the_catalogs_order_the_makers_first():
    r = route(model_id="seedance-2.0", policy=Policy(), keys=ALL_KEYS)
    assert _suppliers(r) == ["byteplus", "fal", "replicate"]
    assert r.chosen.supplier == "byteplus" and not r.pinned


def test_a_qualified_id_pins_one_supplier_and_never_moves():
    r = route(model_id="replicate/seedance-2.0", policy=Policy(), keys=ALL_KEYS)
    assert _suppliers(r) == ["replicate"] and r.pinned
    assert r.after("replicate") is None


def test_suppliers_without_a_key_or_with_a_refused_one_are_skipped():
    keys = {"fal": ("key_fal", "invalid", {}), "replicate": ("key_r", "unverified", {})}
    r = route(model_id="seedance-2.0", policy=Policy(), keys=keys)
    reasons = {c.supplier: c.reason for c in r.candidates}
    assert "no BytePlus ModelArk key" in reasons["byteplus"]
    assert "refused" in reasons["fal"]
    assert reasons["replicate"] == "" and r.chosen.supplier == "replicate"


def test_cheapest_first_orders_by_the_price_of_this_request():
    def cost(m):
        return m.cost(seconds=5, size="1280x720")

    r = route(model_id="seedance-2.0", policy=Policy(order="cheapest"), keys=ALL_KEYS, cost_of=cost)
    prices = [cost(c.model) for c in r.candidates]
    assert prices == sorted(prices) and len(set(prices)) == 3


def test_explicit_order_and_per_model_order():
    policy = Policy(order="explicit", suppliers=("replicate", "fal"))
    assert _suppliers(route(model_id="seedance-2.0", policy=policy, keys=ALL_KEYS)) == ["replicate", "fal", "byteplus"]
    policy = Policy(per_model={"seedance-2.0": ("fal",)})
    assert _suppliers(route(model_id="seedance-2.0", policy=policy, keys=ALL_KEYS))[0] == "fal"
    # another model keeps the global order
    assert _suppliers(route(model_id="veo-3.1", policy=policy, keys=ALL_KEYS))[-2:] == ["fal", "replicate"]


def test_direct_first_puts_the_makers_before_aggregators():
    r = route(model_id="veo-3.1", policy=Policy(order="direct_first"), keys=ALL_KEYS)
    kinds = [c.supplier in ("fal", "replicate") for c in r.candidates]
    assert kinds == sorted(kinds)


def test_a_switched_off_supplier_is_skipped(settings):
    settings.PROVIDER_BYTEPLUS_ENABLED = False
    r = route(model_id="seedance-2.0", policy=Policy(), keys=ALL_KEYS)
    assert r.chosen.supplier == "fal"
    assert "switched off" in next(c.reason for c in r.candidates if c.supplier == "byteplus")


def test_a_retired_model_is_refused_with_its_replacement_unless_substituted(settings):
    settings.OPENAI_BASE_URL = "https://api.openai.com/v1"  # OpenAI's own: shut down
    with pytest.raises(routing.Unroutable) as info:
        route(model_id="sora-2", policy=Policy(), keys={"sora": ("key_s", "valid", {})}, today=date(2026, 12, 1))
    assert info.value.replacement == "veo-3.1" and "2026-09-24" in str(info.value)
    # an explicit substitution rule of the organization
    r = route(
        model_id="sora-2",
        policy=Policy(substitutions={"sora-2": "seedance-2.0"}),
        keys=ALL_KEYS,
        today=date(2026, 12, 1),
    )
    assert r.substituted_from == "sora-2" and r.chosen.model.id == "seedance-2.0"
    # a key pointing at its own compatible gateway keeps the model usable
    keys = {"sora": ("key_s", "valid", {"base_url": "https://gateway.example.com/v1"})}
    assert route(model_id="sora-2", policy=Policy(), keys=keys, today=date(2026, 12, 1)).chosen.supplier == "sora"


def test_an_unknown_model_is_unknown():
    with pytest.raises(catalog.UnknownModel):
        route(model_id="no-such-model", policy=Policy(), keys=ALL_KEYS)
    with pytest.raises(catalog.UnknownModel):
        route(model_id="acme/seedance-2.0", policy=Policy(), keys=ALL_KEYS)


# --- circuits ----------------------------------------------------------------------------------


def test_the_circuit_opens_after_consecutive_failures_and_a_probe_closes_it(settings, monkeypatch):
    settings.ROUTER_CIRCUIT_FAILURES = 3
    settings.ROUTER_CIRCUIT_OPEN_SECONDS = 30
    now = [1_000_000.0]
    monkeypatch.setattr(routing, "_clock", lambda: now[0])
    for _ in range(2):
        assert routing.circuit_record("fal", "key_fal", ok=False) == "closed"
    assert routing.circuit_record("fal", "key_fal", ok=False) == "open"
    assert routing.circuit_state("fal", "key_fal") == "open" and routing.circuit_state("fal") == "open"
    r = route(model_id="seedance-2.0", policy=Policy(per_model={"seedance-2.0": ("fal",)}), keys=ALL_KEYS)
    assert "failing right now" in r.candidates[0].reason and r.chosen.supplier != "fal"
    assert not routing.circuit_allows("fal", "key_fal")
    now[0] += 31  # the open time is over: exactly one probe goes through
    assert routing.circuit_state("fal", "key_fal") == "half_open"
    assert routing.circuit_allows("fal", "key_fal") is True
    assert routing.circuit_allows("fal", "key_fal") is False
    assert routing.circuit_record("fal", "key_fal", ok=True) == "closed"
    assert routing.circuit_state("fal", "key_fal") == "closed" and routing.circuit_state("fal") == "closed"


def test_a_failed_probe_opens_the_circuit_again(settings, monkeypatch):
    settings.ROUTER_CIRCUIT_FAILURES = 1
    now = [2_000_000.0]
    monkeypatch.setattr(routing, "_clock", lambda: now[0])
    assert routing.circuit_record("replicate", "k", ok=False) == "open"
    now[0] += 61
    assert routing.circuit_allows("replicate", "k")
    assert routing.circuit_record("replicate", "k", ok=False) == "open"
    assert routing.circuit_state("replicate", "k") == "open"


def test_a_keys_own_rate_limit_does_not_open_the_suppliers_circuit(settings):
    settings.ROUTER_CIRCUIT_FAILURES = 1
    routing.circuit_record("fal", "key_a", ok=False, supplier_wide=False)
    assert routing.circuit_state("fal", "key_a") == "open"
    assert routing.circuit_state("fal") == "closed"
    assert routing.circuit_state("fal", "key_b") == "closed"


# --- when a failed submit may move -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "moves"),
    [
        (ProviderError("bad key", code="invalid_api_key", permanent=True, status_code=401), True),
        (ProviderError("no access", code="permission_denied", permanent=True, status_code=403), True),
        (ProviderError("slow down", code="rate_limited", status_code=429), True),
        (ProviderError("overloaded", code="server_error", status_code=503), True),
        (ProviderError("refused", code="connection_refused"), True),
        (ProviderError("activate it", code="model_not_open", permanent=True, status_code=404), True),
        (ProviderError("switched off", code="provider_disabled", permanent=True), True),
        (ProviderError("no key", code="missing_credentials", permanent=True), True),
        (ProviderError("circuit", code="circuit_open"), True),
        # never after an uncertain submit: it may have created a job
        (ProviderError("read timeout", code="timeout", uncertain=True), False),
        (ProviderError("503 after fal saw it", code="server_error", status_code=503, uncertain=True), False),
        # a problem of the request itself fails the generation
        (ProviderError("bad size", code="invalid_request", permanent=True, status_code=400), False),
        (ProviderError("moderated", code="content_policy", permanent=True, status_code=400), False),
        (ProviderError("moderated", code="content_policy", permanent=True, status_code=403), False),
        (ProviderError("boom", code="server_error", status_code=500), False),
    ],
)
def test_only_a_submit_that_certainly_created_nothing_moves(error, moves):
    assert certainly_not_created(error) is moves


def test_prices_differ_between_suppliers_of_one_model():
    """The live fallback test relies on it: a move re-prices the hold."""
    fal = catalog.get_model("fal/seedance-2.0").cost(seconds=5, size="1280x720")
    rep = catalog.get_model("replicate/seedance-2.0").cost(seconds=5, size="1280x720")
    assert fal != rep and min(fal, rep) > Decimal("0")
