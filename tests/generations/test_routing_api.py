"""The routing policy (API and Settings page), the models listing with suppliers, and the
Playground's picker and "will run on …" for a model with several suppliers."""

from __future__ import annotations

import pytest

from apps.accounts.models import Membership
from apps.api_keys import crypto
from apps.api_keys.models import ProviderKey
from apps.audit.models import AuditEvent
from apps.core.ids import public_id
from apps.core.scoping import org_scope
from apps.generations import routing
from apps.generations.models import RoutingPolicy

pytestmark = pytest.mark.django_db


def _key(org, provider: str, status: str = "valid") -> ProviderKey:
    with org_scope(org):
        return ProviderKey.objects.create(
            organization=org,
            public_id=public_id("key"),
            provider=provider,
            ciphertext=crypto.encrypt('{"api_key":"test-key-000000"}'),
            last4="0000",
            status=status,
            is_default=True,
        )


@pytest.fixture(autouse=True)
def _closed_circuits():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def test_the_default_policy_is_the_catalogs_order(tenants):
    r = tenants.api_client_for(tenants.bob_token).get("/v1/routing")
    assert r.status_code == 200
    assert r.json() == {
        "object": "routing_policy",
        "order": "catalog",
        "suppliers": [],
        "per_model": {},
        "resubmit_on_supplier_failure": False,
        "substitutions": {},
    }


def test_owners_and_admins_change_it_members_cannot(tenants):
    body = {
        "order": "explicit",
        "suppliers": ["replicate", "fal"],
        "per_model": {"veo-3.1": ["vertex", "fal"]},
        "resubmit_on_supplier_failure": True,
        "substitutions": {"sora-2": "veo-3.1"},
    }
    r = tenants.api_client_for(tenants.bob_token).put("/v1/routing", body, content_type="application/json")
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert not RoutingPolicy.all_orgs.exists()
    r = tenants.api_client_for(tenants.alice_token).put("/v1/routing", body, content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["suppliers"] == ["replicate", "fal"] and r.json()["per_model"] == {"veo-3.1": ["vertex", "fal"]}
    event = AuditEvent.all_orgs.get(action="routing.changed")
    assert event.organization == tenants.org_a and event.detail["order"] == "explicit"
    # charlie's organization is untouched
    assert tenants.api_client_for(tenants.charlie_token).get("/v1/routing").json()["order"] == "catalog"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"order": "fastest"}, "order"),
        ({"order": "explicit"}, "suppliers"),
        ({"order": "explicit", "suppliers": ["acme"]}, "suppliers"),
        ({"order": "catalog", "per_model": {"no-such-model": ["fal"]}}, "per_model"),
        ({"order": "catalog", "per_model": {"veo-3.1": ["acme"]}}, "per_model"),
        ({"order": "catalog", "substitutions": {"sora-2": "no-such-model"}}, "substitutions"),
    ],
)
def test_a_bad_policy_is_a_field_error(tenants, body, param):
    r = tenants.api_client_for(tenants.alice_token).put("/v1/routing", body, content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["param"] == param
    assert not RoutingPolicy.all_orgs.exists()


def test_models_list_each_canonical_model_with_its_suppliers(tenants):
    _key(tenants.org_a, "fal")
    _key(tenants.org_a, "replicate", status="invalid")
    data = {m["id"]: m for m in tenants.api_client_for(tenants.bob_token).get("/v1/models").json()["data"]}
    seedance = data["seedance-2.0"]
    suppliers = {s["provider"]: s for s in seedance["suppliers"]}
    assert set(suppliers) == {"byteplus", "fal", "replicate"}
    assert suppliers["fal"]["usable"] is True and suppliers["fal"]["reason"] is None
    assert suppliers["byteplus"]["usable"] is False and "no BytePlus" in suppliers["byteplus"]["reason"]
    assert suppliers["replicate"]["usable"] is False and "refused" in suppliers["replicate"]["reason"]
    assert seedance["routed_to"] == "fal/seedance-2.0" and seedance["provider"] == "fal"
    assert suppliers["fal"]["kind"] == "aggregator" and suppliers["byteplus"]["kind"] == "direct"
    assert all(s["health"] == "closed" for s in seedance["suppliers"])
    # a supplier whose circuit is open is shown as failing and skipped
    for _ in range(5):
        routing.circuit_record("fal", None, ok=False)
    data = {m["id"]: m for m in tenants.api_client_for(tenants.bob_token).get("/v1/models").json()["data"]}
    fal = next(s for s in data["seedance-2.0"]["suppliers"] if s["provider"] == "fal")
    assert fal["health"] == "open" and fal["usable"] is False and data["seedance-2.0"]["routed_to"] is None
    providers = {p["id"]: p for p in tenants.api_client_for(tenants.bob_token).get("/v1/providers").json()["data"]}
    assert providers["fal"]["health"] == "open" and providers["replicate"]["health"] == "closed"


def test_the_playground_offers_the_routed_and_the_pinned_choices_and_says_where_it_runs(tenants):
    _key(tenants.org_a, "fal")
    _key(tenants.org_a, "replicate")
    client = tenants.client_for(tenants.alice)
    page = client.get(f"/o/{tenants.org_a.slug}/playground/?model=seedance-2.0").content.decode()
    assert 'value="seedance-2.0"' in page and 'value="fal/seedance-2.0"' in page
    assert 'value="replicate/seedance-2.0"' in page and 'value="byteplus/seedance-2.0"' not in page
    assert "best available (now fal.ai)" in page
    assert 'data-runs-on="fal"' in page and "Will run on fal.ai" in page
    # fal failing: the estimate says so and follows Replicate
    for _ in range(5):
        routing.circuit_record("fal", None, ok=False)
    page = client.get(f"/o/{tenants.org_a.slug}/playground/?model=seedance-2.0").content.decode()
    assert 'data-runs-on="replicate"' in page and "fal.ai: fal.ai is failing right now" in page
    # a pinned choice says nothing about routing
    from django.core.cache import cache

    cache.clear()  # fal healthy again: its pinned choice is offered
    page = client.get(f"/o/{tenants.org_a.slug}/playground/?model=fal/seedance-2.0").content.decode()
    assert "data-runs-on" not in page


def test_the_routing_settings_page(tenants):
    _key(tenants.org_a, "fal")
    alice = tenants.client_for(tenants.alice)
    url = f"/o/{tenants.org_a.slug}/settings/routing/"
    page = alice.get(url).content.decode()
    assert 'name="order"' in page and 'data-model="seedance-2.0"' in page
    r = alice.post(url, {"order": "cheapest", "per_model": "veo-3.1: fal, replicate", "substitutions": ""})
    assert r.status_code == 302, r.content.decode()[:3000]
    policy = RoutingPolicy.all_orgs.get(organization=tenants.org_a)
    assert policy.order == "cheapest" and policy.per_model == {"veo-3.1": ["fal", "replicate"]}
    r = alice.post(url, {"order": "catalog", "per_model": "veo-3.1 fal"})
    assert r.status_code == 422 and "Line 1" in r.content.decode()
    # a member sees the policy, without the form
    bob = tenants.client_for(tenants.bob)
    page = bob.get(url).content.decode()
    assert "Only owners and admins" in page and '<form method="post" action="' + url not in page
    assert bob.post(url, {"order": "catalog"}).status_code == 403
    # charlie: not his organization
    assert tenants.client_for(tenants.charlie).get(url).status_code == 404
    assert Membership.all_orgs.filter(organization=tenants.org_a).count() == 2
