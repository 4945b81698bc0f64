"""What one create costs on the server (issue 17 item 4: a create adds at most 10 ms over the
provider's own): the SQL queries and the cache/throttle round trips of ``POST /v1/videos`` and of
the native ``POST /v1/video/generations``, pinned on each leg so a regression fails here.

The budget is still checked under the organization's row lock, which is now taken by the same
query that reads the member's role and limit (a member removed meanwhile finds no row and is
refused); the route's provider-key list is the one the key is taken from."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Membership
from apps.billing.models import UsageEntry
from apps.core import throttling
from apps.core.scoping import org_scope
from apps.generations.models import Generation

pytestmark = pytest.mark.django_db

BODY = {"model": "sora-2", "prompt": "a paper boat on a pond", "seconds": "4", "size": "1280x720"}
NATIVE = {"model": "sora-2", "prompt": "a paper boat on a pond", "duration": 4, "size": "1280x720"}


@pytest.fixture
def sora_key(tenants, settings, openai_emulator):
    from apps.api_keys import services as key_services

    settings.OPENAI_BASE_URL = openai_emulator.base_url
    with org_scope(tenants.org_a):
        return key_services.provider_key_create(
            by=Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a),
            provider="sora",
            api_key=openai_emulator.api_key,
        )


class _Trips:
    """Round trips to Redis (any command sent on a connection) or to the SQLite throttle file."""

    def __init__(self, monkeypatch):
        self.n = 0
        try:
            import redis.connection as rc

            real = rc.AbstractConnection.send_packed_command

            def counted(conn, *a, **k):
                self.n += 1
                return real(conn, *a, **k)

            monkeypatch.setattr(rc.AbstractConnection, "send_packed_command", counted)
        except ImportError:  # pragma: no cover
            pass
        real_hit = throttling.SqliteCounters.hit

        def sqlite_hit(store, *a, **k):
            self.n += 1
            return real_hit(store, *a, **k)

        monkeypatch.setattr(throttling.SqliteCounters, "hit", sqlite_hit)


def _costs(client, path, body, monkeypatch, django_capture_on_commit_callbacks):
    trips = _Trips(monkeypatch)
    with django_capture_on_commit_callbacks() as callbacks, CaptureQueriesContext(connection) as queries:
        response = client.post(path, body, content_type="application/json")
    assert response.status_code in (200, 201), response.content
    return response.json()["id"], [q["sql"] for q in queries.captured_queries], trips.n, callbacks


# Under the test's transaction the create's own transaction is a savepoint pair (in production: BEGIN
# and COMMIT, which are not captured): the route's three reads (keys, policy, prices), the member
# with the organization locked, three inserts. The native shape adds its own savepoint pair (the
# per-request webhook is written in the same transaction). Round trips: the throttle (one trip for
# every counter that needs a block), and on Redis one MGET of the route's circuits (Celery's
# publish runs on commit, not counted here).
QUERIES = {"/v1/videos": 9, "/v1/video/generations": 11}
TRIPS = {"sqlite": 1, "postgresql": 2}


@pytest.mark.parametrize("path, body", [("/v1/videos", BODY), ("/v1/video/generations", NATIVE)])
def test_one_create_costs_a_pinned_number_of_queries_and_round_trips(
    tenants, sora_key, path, body, monkeypatch, django_capture_on_commit_callbacks, settings
):
    # the shipped create budgets (the test settings raise them): 120/min a token is taken one by one,
    # so every create makes its one throttle trip; 600/min an organization comes in blocks of 6
    settings.API_THROTTLE_CREATE_RATE, settings.API_THROTTLE_ORG_CREATE_RATE = "120/min", "600/min"
    client = tenants.api_client_for(tenants.alice_token)
    _costs(client, path, body, monkeypatch, django_capture_on_commit_callbacks)  # warm: caches, prepared reads
    public_id, sql, trips, callbacks = _costs(client, path, body, monkeypatch, django_capture_on_commit_callbacks)
    assert (len(sql), trips) == (QUERIES[path], TRIPS[connection.vendor]), sql
    assert sum('FROM "api_keys_providerkey"' in q for q in sql) == 1  # the route's list, not a second read
    assert sum('FROM "accounts_membership"' in q for q in sql) == 1  # only the one under the lock
    assert not [q for q in sql if 'FROM "accounts_organization"' in q and "accounts_membership" not in q]
    if connection.vendor == "postgresql":
        (locked,) = [q for q in sql if 'FROM "accounts_membership"' in q]
        assert 'FOR UPDATE OF "accounts_organization"' in locked
    with org_scope(tenants.org_a):
        gen = Generation.objects.get(public_id=public_id)
        assert gen.provider_key_id == sora_key.pk
        hold = UsageEntry.objects.get(generation=gen)
    assert (hold.kind, hold.amount) == ("hold", gen.estimated_cost) and gen.estimated_cost == Decimal("0.4000")
    assert len(callbacks) >= 1  # the submit, sent on commit


def _create(tenants, **kw):
    from apps.generations import services

    request = services.GenerationRequest(model="sora-2", prompt="a fox", seconds=4, size="1280x720")
    with org_scope(tenants.org_a):
        return services.generation_create(org=tenants.org_a, user=tenants.bob, request=request, **kw)


def test_a_member_removed_after_the_request_was_authenticated_is_refused_under_the_lock(tenants, sora_key):
    """The membership the token brought (possibly from the identity cache) spares the query before
    the lock; the one under the lock decides."""
    from apps.core.errors import PermissionDeniedError

    with org_scope(tenants.org_a):
        stale = Membership.objects.select_related("organization", "user").get(user=tenants.bob)
        Membership.objects.filter(pk=stale.pk).delete()
    with pytest.raises(PermissionDeniedError, match="not a member"):
        _create(tenants, membership=stale)
    with org_scope(tenants.org_a):
        assert not Generation.objects.filter(user=tenants.bob).exists()
        assert not UsageEntry.objects.filter(user=tenants.bob).exists()


def test_a_member_made_a_viewer_after_authentication_is_refused_under_the_lock(tenants, sora_key):
    from apps.accounts.models import Role
    from apps.core.errors import PermissionDeniedError

    with org_scope(tenants.org_a):
        stale = Membership.objects.select_related("organization", "user").get(user=tenants.bob)
        Membership.objects.filter(pk=stale.pk).update(role=Role.VIEWER)
    with pytest.raises(PermissionDeniedError, match="Viewers"):
        _create(tenants, membership=stale)


def test_the_member_limit_is_read_under_the_lock_not_from_the_stale_membership(tenants, sora_key):
    """A limit lowered after the request was authenticated applies: $0.40 against $0.30."""
    from apps.core.errors import PaymentRequired

    with org_scope(tenants.org_a):
        stale = Membership.objects.select_related("organization", "user").get(user=tenants.bob)
        Membership.objects.filter(pk=stale.pk).update(monthly_limit=Decimal("0.30"))
    with pytest.raises(PaymentRequired) as info:
        _create(tenants, membership=stale)
    assert info.value.code == "member_limit_exceeded"
    with org_scope(tenants.org_a):
        assert not UsageEntry.objects.filter(user=tenants.bob).exists()
    with org_scope(tenants.org_a):
        Membership.objects.filter(pk=stale.pk).update(monthly_limit=Decimal("0.40"))
    gen = _create(tenants, membership=stale)  # exactly at the limit: fits
    with org_scope(tenants.org_a):
        assert UsageEntry.objects.get(generation=gen).amount == Decimal("0.4000")


def test_the_key_comes_from_the_routes_list_with_the_same_choice_as_before(tenants, sora_key, openai_emulator):
    """A named key of this provider, else the default; another provider's id is a 404."""
    from apps.api_keys import selectors as key_selectors
    from apps.api_keys import services as key_services
    from apps.core.errors import NotFound

    with org_scope(tenants.org_a):
        owner = Membership.objects.get(user=tenants.alice)
        second = key_services.provider_key_create(by=owner, provider="sora", api_key=openai_emulator.api_key)
        keys = key_selectors.provider_key_list(org=tenants.org_a)
        assert key_selectors.provider_key_pick(keys, provider="sora") == sora_key
        assert key_selectors.provider_key_for(org=tenants.org_a, provider="sora") == sora_key
        assert key_selectors.provider_key_pick(keys, provider="sora", public_id=second.public_id) == second
        assert key_selectors.provider_key_pick(keys, provider="fal") is None
    assert _create(tenants, membership=None).provider_key_id == sora_key.pk
    from apps.generations import services

    request = services.GenerationRequest(
        model="sora-2", prompt="a fox", seconds=4, size="1280x720", key_id=second.public_id
    )
    with org_scope(tenants.org_a):
        assert services.generation_create(org=tenants.org_a, user=tenants.bob, request=request).provider_key == second
        with pytest.raises(NotFound):
            services.generation_create(
                org=tenants.org_a,
                user=tenants.bob,
                request=services.GenerationRequest(model="sora-2", prompt="a fox", key_id="key_nope"),
            )
