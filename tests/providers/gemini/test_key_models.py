"""The Gemini API retires video model ids without notice: the models a key lists are recorded when
the key is validated and again daily (``api_keys.refresh_key_details``); the router then hides an
entry none of whose upstream ids the key still lists, with the reason, and a pinned request for it
is refused before anything is held."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from apps.accounts.models import Membership
from apps.api_keys import services, tasks
from apps.api_keys.models import ProviderKey
from apps.core.errors import ApplicationError
from apps.core.scoping import org_scope
from apps.generations import selectors
from apps.generations.resolve import GenerationRequest, resolve_request
from apps.providers.gemini import adapter as gemini_adapter

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_caches():
    cache.clear()
    gemini_adapter._models_cache.clear()
    yield
    gemini_adapter._models_cache.clear()
    cache.clear()


def test_the_keys_video_models_are_recorded_and_vanished_ones_hidden(tenants, gemini_emulator, settings):
    for name, value in gemini_emulator.settings().items():
        setattr(settings, name, value)
    alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    with org_scope(tenants.org_a):
        key = services.provider_key_create(by=alice, provider="gemini", **gemini_emulator.key_fields())
    listed = set(key.details["video_models"].split(", "))
    assert "veo-3.1-generate-preview" in listed or "veo-3.1-generate-001" in listed
    assert listed <= set(gemini_emulator.listed) and key.details["models_checked_at"]
    with org_scope(tenants.org_a):
        route = selectors.route_for(org=tenants.org_a, model_id="gemini/veo-3.1")
    assert route.chosen is not None and route.chosen.supplier == "gemini"

    # Google retires every Veo 3.1 id this key had; the daily task notices
    gemini_emulator.listed = {m for m in gemini_emulator.listed if not m.startswith("veo-3.1-generate")}
    gemini_adapter._models_cache.clear()
    assert tasks.refresh_key_details() == 1
    details = ProviderKey.all_orgs.get(pk=key.pk).details
    assert "veo-3.1-generate" not in details["video_models"]
    with org_scope(tenants.org_a):
        route = selectors.route_for(org=tenants.org_a, model_id="gemini/veo-3.1")
        assert (
            route.chosen is None and "no longer offered to this key by Google Gemini API" in route.candidates[0].reason
        )
        with pytest.raises(ApplicationError):
            resolve_request(org=tenants.org_a, request=GenerationRequest(model="gemini/veo-3.1", prompt="x", seconds=8))
        omni = selectors.route_for(org=tenants.org_a, model_id="gemini/gemini-omni-1.1-flash")
        assert omni.chosen is not None  # the Interactions API model is not subject to the listing
    assert tasks.refresh_key_details() == 0  # nothing changed since
