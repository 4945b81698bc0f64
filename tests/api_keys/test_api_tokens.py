"""API tokens: authentication of /v1/me, revocation, and tokens of people who left."""

from __future__ import annotations

import pytest

from apps.accounts import services as account_services
from apps.accounts.models import Membership
from apps.api_keys import services
from apps.api_keys.models import ApiToken
from apps.core.errors import NotFound, PermissionDeniedError
from apps.core.scoping import org_scope

pytestmark = pytest.mark.django_db


def _token_row(org, name):
    return ApiToken.all_orgs.get(organization=org, name=name)


def test_it_works(tenants):
    r = tenants.api_client_for(tenants.bob_token).get("/v1/me")
    assert r.status_code == 200
    assert r.json() == {
        "user": "bob@example.com",
        "organization": tenants.org_a.slug,
        "organization_name": "Alice Films",
        "role": "member",
        "token": _token_row(tenants.org_a, "bob").public_id,
    }
    assert _token_row(tenants.org_a, "bob").last_used_at is not None


def test_a_revoked_token_gets_401(tenants, members):
    with org_scope(tenants.org_a):
        services.api_token_revoke(by=members.bob, public_id=_token_row(tenants.org_a, "bob").public_id)
    r = tenants.api_client_for(tenants.bob_token).get("/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_a_token_whose_user_left_the_organization_gets_401(tenants, members):
    with org_scope(tenants.org_a):
        account_services.membership_leave(membership=members.bob)
    assert not Membership.all_orgs.filter(user=tenants.bob).exists()
    r = tenants.api_client_for(tenants.bob_token).get("/v1/me")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = tenants.api_client_for(tenants.bob_token).get("/v1/keys")
    assert r.status_code == 401


def test_a_malformed_or_unknown_token_gets_401(tenants):
    for header in ("Bearer mr_nope", "Bearer " + tenants.alice_token[:-2] + "xx", "Basic abc", "Bearer "):
        from django.test import Client

        r = Client(headers={"Authorization": header}).get("/v1/me")
        assert r.status_code == 401, header


def test_revoke_requires_ownership_of_the_token_or_admin(tenants, members):
    alices = _token_row(tenants.org_a, "alice")
    with org_scope(tenants.org_a), pytest.raises(PermissionDeniedError):
        services.api_token_revoke(by=members.bob, public_id=alices.public_id)
    with org_scope(tenants.org_a):
        services.api_token_revoke(by=members.alice, public_id=_token_row(tenants.org_a, "bob").public_id)
    assert _token_row(tenants.org_a, "bob").revoked_at is not None


def test_revoke_checks_ownership(tenants, members):
    alices = _token_row(tenants.org_a, "alice")
    with org_scope(tenants.org_b), pytest.raises(NotFound):
        services.api_token_revoke(by=members.charlie, public_id=alices.public_id)
    assert _token_row(tenants.org_a, "alice").revoked_at is None
