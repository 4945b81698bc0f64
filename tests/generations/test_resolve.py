"""One resolution of a request (apps.generations.resolve): the model looked up once, defaults,
the catalog's rules, the estimate; and the create service hands that resolution down instead of
looking the model up again. Priced models, so the amounts are real."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.billing.models import EntryKind, UsageEntry
from apps.core.errors import ApplicationError, ValidationFailed
from apps.core.scoping import org_scope
from apps.generations import engine, resolve, services
from apps.generations.models import Generation
from apps.generations.resolve import GenerationRequest, UnknownModelError, resolve_request
from apps.providers import catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _in_alices_scope(tenants):
    """Resolving reads the organization's keys and routing policy: it runs in its scope, as every
    caller (a page, an API view, a task) does."""
    with org_scope(tenants.org_a):
        yield


def _resolve(tenants, **fields):
    fields.setdefault("prompt", "p")
    return resolve_request(org=tenants.org_a, request=GenerationRequest(**fields))


def test_defaults_validation_and_the_estimate(tenants):
    r = _resolve(tenants, model="sora-2-pro")  # the model's defaults: 4 s at 720x1280, $0.30/s
    assert (r.model.qualified_id, r.seconds, r.size, r.has_image) == ("sora/sora-2-pro", 4, "720x1280", False)
    assert r.estimate == Decimal("1.2000") and r.audio is True
    r = _resolve(tenants, model="openai/sora-2-pro", seconds=12, size="1920x1080")  # $0.70/s
    assert (r.seconds, r.size, r.estimate) == (12, "1920x1080", Decimal("8.4000"))
    r = _resolve(tenants, model="gen4.5", seconds=5, aspect_ratio=(16, 9))  # $0.12/s, ratio -> size
    assert (r.model.provider, r.size, r.estimate) == ("runway", "1280x720", Decimal("0.6000"))


def test_every_broken_rule_is_reported_by_field(tenants):
    with pytest.raises(ValidationFailed) as info:
        _resolve(tenants, model="sora-2", seconds=5, size="999x999", seed=3)
    assert set(info.value.errors) == {"seconds", "size", "seed"}
    assert info.value.param == "seconds" and info.value.code == "invalid_value"
    with pytest.raises(UnknownModelError) as info:
        _resolve(tenants, model="no-such-model")
    assert info.value.param == "model" and "no-such-model" in info.value.message
    with pytest.raises(ApplicationError, match="supports aspect ratios") as info:
        _resolve(tenants, model="sora-2", aspect_ratio=(4, 3))
    assert info.value.param == "aspect_ratio"


def test_an_estimate_may_skip_the_rules_and_be_told_about_an_image(tenants):
    # gen4.5 makes 960x960 only from an image: the live estimate prices it anyway
    wanted = GenerationRequest(model="gen4.5", prompt="", seconds=10, size="960x960")
    with pytest.raises(ValidationFailed):
        resolve_request(org=tenants.org_a, request=wanted)
    assert resolve_request(org=tenants.org_a, request=wanted, validate=False).estimate == Decimal("1.2000")
    told = resolve_request(org=tenants.org_a, request=wanted, has_image=True)
    assert told.has_image and told.estimate == Decimal("1.2000")


def test_a_remix_runs_on_its_sources_model_and_settings(tenants):
    source = Generation(provider="sora", model="sora-2", seconds=8, size="1280x720")
    r = resolve_request(org=tenants.org_a, request=GenerationRequest(model="ignored", prompt="again"), remix_of=source)
    assert (r.model.qualified_id, r.seconds, r.size, r.estimate) == ("sora/sora-2", 8, "1280x720", Decimal("0.8000"))
    assert resolve.generation_model(Generation(provider="sora", model="gone")) is None


@pytest.fixture
def no_worker(monkeypatch):
    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)


def test_create_looks_the_model_up_once_and_holds_the_estimate(tenants, priced_sandbox, no_worker, monkeypatch):
    from apps.generations import selectors

    lookups = []
    real_route_for = selectors.route_for
    monkeypatch.setattr(selectors, "route_for", lambda **k: lookups.append(k["model_id"]) or real_route_for(**k))
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a, user=tenants.alice, request=GenerationRequest(model="sandbox-video", prompt="fox")
        )
    assert lookups == ["sandbox-video"]  # routed once
    assert (gen.seconds, gen.size, gen.estimated_cost) == (4, "1280x720", Decimal("2.0000"))  # $0.50/s
    hold = UsageEntry.all_orgs.get(generation=gen)
    assert (hold.kind, hold.amount, hold.price_version) == (EntryKind.HOLD, Decimal("2.0000"), "sandbox-free")


def test_a_resolution_handed_down_is_what_is_created(tenants, priced_sandbox, no_worker, monkeypatch):
    wanted = GenerationRequest(model="sandbox-video", prompt="fox", seconds=12, size="960x960")
    resolved = resolve_request(org=tenants.org_a, request=wanted)
    from apps.generations import selectors

    monkeypatch.setattr(catalog, "get_model", lambda *a, **k: pytest.fail("looked the model up again"))
    monkeypatch.setattr(selectors, "route_for", lambda **k: pytest.fail("routed the model again"))
    with org_scope(tenants.org_a):
        gen = services.generation_create(org=tenants.org_a, user=tenants.alice, request=wanted, resolved=resolved)
    assert (gen.seconds, gen.size, gen.estimated_cost) == (12, "960x960", Decimal("6.0000"))
    assert UsageEntry.all_orgs.get(generation=gen).amount == Decimal("6.0000")
