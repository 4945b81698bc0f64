"""Walk every URL pattern of the project as charlie (owner of org B) against alice's org A.

A page under /o/<org_slug>/ or an API route with an object id must answer 404 for every method;
an API list must not contain any of alice's objects. A new URL kwarg that this walk does not know
fails the test, so every new route is covered from the day it is added.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from apps.accounts import services as account_services
from apps.accounts.models import Membership
from apps.core.scoping import org_scope

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
SKIP_PREFIXES = ("admin/",)  # the admin has its own staff check, tested in tests/test_admin_access.py


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def _alice_objects(tenants) -> dict[str, str]:
    """kwarg name -> the public id of one of alice's objects of that kind."""
    with org_scope(tenants.org_a):
        alice_m = Membership.objects.get(user=tenants.alice)
        invitation, _ = account_services.invitation_create(by=alice_m, role="member", email="dana@example.com")
        bob_m = Membership.objects.get(user=tenants.bob)
    objects = {
        "org_slug": tenants.org_a.slug,
        "member_id": bob_m.public_id,
        "invitation_id": invitation.public_id,
    }
    objects.update(_extra_objects(tenants))
    return objects


def _extra_objects(tenants) -> dict[str, str]:
    """Objects added by later features register here (keys, tokens, videos)."""
    from tests import tenant_walk_objects

    return tenant_walk_objects.build(tenants)


def _fill(route: str, objects: dict[str, str]) -> str:
    def sub(match):
        name = match.group(2)
        if name not in objects:
            raise AssertionError(f"URL kwarg <{name}> in {route!r} is not covered by the tenant walk")
        return objects[name]

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", sub, route)


def _routes():
    return [(route, p) for route, p in _walk(get_resolver().url_patterns) if not route.startswith(SKIP_PREFIXES)]


def test_walk_covers_org_pages_and_api(tenants):
    """Every route of the project (but the admin, walked in test_tenant_walk_own_org.py) can be
    filled with alice's objects: a kwarg nobody registered fails here first."""
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    # the password-reset link's user id is the one root kwarg that is no object of a tenant
    objects = dict(_alice_objects(tenants), uidb64=urlsafe_base64_encode(force_bytes(tenants.alice.pk)))
    routes = [r for r, _ in _routes()]
    org_routes = [r for r in routes if r.startswith("o/<slug:org_slug>/")]
    api_routes = [r for r in routes if r.startswith("v1/")]
    assert len(org_routes) >= 20 and len(api_routes) >= 10, (len(org_routes), len(api_routes))
    for route in routes:
        assert _fill(route, objects).startswith("/")


def test_charlie_reaches_none_of_alice_pages(tenants):
    objects = _alice_objects(tenants)
    charlie = tenants.client_for(tenants.charlie)
    checked = 0
    for route, _ in _routes():
        if "<slug:org_slug>" not in route:
            continue
        url = _fill(route, objects)
        for method in METHODS:
            r = getattr(charlie, method)(url)
            assert r.status_code == 404, f"{method.upper()} {url} gave {r.status_code} to charlie"
            assert tenants.org_a.name.encode() not in r.content
            checked += 1
    assert checked >= 5 * len(METHODS)


def test_charlie_token_reaches_none_of_alice_api_objects(tenants):
    objects = _alice_objects(tenants)
    api = tenants.api_client_for(tenants.charlie_token)
    alice_ids = [v for k, v in objects.items() if k != "org_slug"]
    for route, _ in _routes():
        if not route.startswith("v1/"):
            continue
        url = _fill(route, objects)
        has_object = bool(re.search(r"<(?:\w+:)?\w+>", route))
        for method in METHODS:
            r = getattr(api, method)(url, content_type="application/json")
            body = r.content.decode(errors="replace")
            for public_id in alice_ids:
                assert public_id not in body, f"{method.upper()} {url} leaked {public_id}"
            if has_object:
                assert r.status_code in (404, 405), f"{method.upper()} {url} gave {r.status_code} to charlie"


def test_anonymous_is_sent_to_login_for_org_pages(client, tenants):
    objects = _alice_objects(tenants)
    for route, _ in _routes():
        if "<slug:org_slug>" in route:
            url = _fill(route, objects)
            for method in METHODS:
                r = getattr(client, method)(url)
                assert r.status_code == 302 and r["Location"].startswith("/login/"), f"{method.upper()} {url}"


def test_unknown_org_and_api_route_are_404(tenants):
    charlie = tenants.client_for(tenants.charlie)
    assert charlie.get("/o/no-such-org/").status_code == 404
    r = tenants.api_client_for(tenants.charlie_token).get("/v1/no-such-route")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
