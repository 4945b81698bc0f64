"""The per-process memory of authenticated API tokens: saves the query on repeated requests, and
never lets a revoked token or an ex-member in for longer than API_TOKEN_CACHE_SECONDS."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import Membership
from apps.api_keys import authentication
from apps.api_keys.authentication import identity_cache
from apps.api_keys.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def cache_on(settings):
    settings.API_TOKEN_CACHE_SECONDS = 5.0
    identity_cache.invalidate()
    yield settings
    identity_cache.invalidate()


@pytest.fixture
def clock(monkeypatch):
    """A controllable ``time.monotonic`` for the cache's expiry."""
    now = [1000.0]
    monkeypatch.setattr(authentication.time, "monotonic", lambda: now[0])
    return now


def _token_queries(queries) -> int:
    return sum('FROM "api_keys_apitoken"' in q["sql"] for q in queries.captured_queries)


def test_a_repeated_token_is_not_looked_up_again(tenants):
    bob = tenants.api_client_for(tenants.bob_token)
    assert bob.get("/v1/videos").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        r = bob.get("/v1/videos")
    assert r.status_code == 200 and _token_queries(queries) == 0


def test_each_request_gets_its_own_objects(tenants):
    first = identity_cache.authenticate(tenants.bob_token)
    first.user.email = "changed@example.com"
    first.membership.role = "owner"
    second = identity_cache.authenticate(tenants.bob_token)
    assert second is not first and second.user is not first.user
    assert second.user.email == "bob@example.com" and second.membership.role == "member"
    assert second.membership.organization == tenants.org_a and second.user == tenants.bob


def test_revoking_through_the_service_refuses_the_token_at_once(tenants):
    from apps.api_keys import services as key_services
    from apps.core.scoping import org_scope

    bob = tenants.api_client_for(tenants.bob_token)
    assert bob.get("/v1/videos").status_code == 200
    token = ApiToken.all_orgs.get(user=tenants.bob)
    with org_scope(tenants.org_a):
        owner = Membership.objects.get(user=tenants.alice, organization=tenants.org_a)
        key_services.api_token_revoke(by=owner, public_id=token.public_id)
    assert bob.get("/v1/videos").status_code == 401


def test_removing_a_member_refuses_their_token_at_once(tenants):
    bob = tenants.api_client_for(tenants.bob_token)
    assert bob.get("/v1/videos").status_code == 200
    Membership.all_orgs.get(user=tenants.bob, organization=tenants.org_a).delete()
    assert bob.get("/v1/videos").status_code == 401


def test_a_change_made_by_another_process_applies_within_the_ttl(tenants, clock):
    """An UPDATE that sends no signal here (another web process, a SQL console): the token works
    until its entry expires, and not one request after."""
    bob = tenants.api_client_for(tenants.bob_token)
    assert bob.get("/v1/videos").status_code == 200
    ApiToken.all_orgs.filter(user=tenants.bob).update(revoked_at=timezone.now())
    clock[0] += 4.9
    assert bob.get("/v1/videos").status_code == 200
    clock[0] += 0.2
    assert bob.get("/v1/videos").status_code == 401
    assert bob.get("/v1/videos").status_code == 401


def test_a_deactivated_user_is_refused_within_the_ttl(tenants, clock):
    alice = tenants.api_client_for(tenants.alice_token)
    assert alice.get("/v1/videos").status_code == 200
    type(tenants.alice).objects.filter(pk=tenants.alice.pk).update(is_active=False)
    clock[0] += 5.1
    assert alice.get("/v1/videos").status_code == 401


def test_zero_turns_the_cache_off(tenants, cache_on):
    cache_on.API_TOKEN_CACHE_SECONDS = 0
    bob = tenants.api_client_for(tenants.bob_token)
    assert bob.get("/v1/videos").status_code == 200
    ApiToken.all_orgs.filter(user=tenants.bob).update(revoked_at=timezone.now())
    assert bob.get("/v1/videos").status_code == 401


def test_unknown_tokens_are_not_remembered(tenants):
    size = len(identity_cache._entries)
    for i in range(5):
        r = tenants.api_client_for(f"mr_{i:012d}_{'x' * 43}").get("/v1/videos")
        assert r.status_code == 401
    assert len(identity_cache._entries) == size


def test_last_used_is_written_once_a_minute_not_per_request(tenants):
    bob = tenants.api_client_for(tenants.bob_token)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert bob.get("/v1/videos").status_code == 200
    touches = [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "api_keys_apitoken"')]
    assert len(touches) == 1
    assert ApiToken.all_orgs.get(user=tenants.bob).last_used_at is not None


def test_a_full_cache_forgets_its_least_recently_used_entry_not_everything(tenants, monkeypatch):
    monkeypatch.setattr(authentication.IdentityCache, "MAX_ENTRIES", 2)
    cache = authentication.IdentityCache()
    for token in (tenants.alice_token, tenants.bob_token, tenants.charlie_token):
        assert cache.authenticate(token) is not None
    assert len(cache._entries) == 2
    with CaptureQueriesContext(connection) as queries:
        assert cache.authenticate(tenants.charlie_token).user == tenants.charlie
        assert cache.authenticate(tenants.bob_token).user == tenants.bob
    assert _token_queries(queries) == 0
    with CaptureQueriesContext(connection) as queries:
        assert cache.authenticate(tenants.alice_token).user == tenants.alice
    assert _token_queries(queries) == 1


def test_remembering_a_new_last_used_does_not_extend_an_entrys_life(tenants, clock):
    """The snapshot is as old as its database read: updating ``last_used_at`` in it keeps its
    expiry, so a revocation still applies within API_TOKEN_CACHE_SECONDS of that read."""
    api_token = identity_cache.authenticate(tenants.bob_token)
    clock[0] += 4.0
    identity_cache.touched(api_token, timezone.now())
    ApiToken.all_orgs.filter(user=tenants.bob).update(revoked_at=timezone.now())
    clock[0] += 0.9
    assert identity_cache.authenticate(tenants.bob_token) is not None  # still the cached snapshot
    clock[0] += 0.2
    assert identity_cache.authenticate(tenants.bob_token) is None
