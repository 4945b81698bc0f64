"""Who may act on whom, through the pages: owners act on everyone; admins only on members and
viewers (and on their own API tokens); members and viewers only on their own tokens. Admins cannot
demote or remove owners, so they must not be able to disable them by other means either (a $0.01
limit, revoking their API token)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.accounts.models import Membership, Role

from .conftest import ROLES

pytestmark = pytest.mark.django_db

ACTORS = ["alice", "adam", "bob", "vera"]  # owner, admin, member, viewer
TARGETS = ["olga", "ada", "bob", "vera"]  # another owner, another admin, a member, a viewer


def may_manage(actor: str, target: str) -> bool:
    """The rule, stated independently of the code: role, limit, removal, others' tokens."""
    if ROLES[actor] == Role.OWNER:
        return True
    return ROLES[actor] == Role.ADMIN and actor != target and ROLES[target] in (Role.MEMBER, Role.VIEWER)


def may_revoke_token(actor: str, target: str) -> bool:
    return actor == target or may_manage(actor, target)


@pytest.mark.parametrize("actor", ACTORS)
def test_member_limit_by_role(team, actor):
    client = team.client(actor)
    for target in [*TARGETS, actor]:
        member = team.membership(target)
        r = client.post(team.url("org-member-limit", member_id=member.public_id), {"monthly_limit": "0.01"})
        member.refresh_from_db()
        if may_manage(actor, target):
            assert r.status_code == 302, (actor, target, r.status_code)
            assert member.monthly_limit == Decimal("0.01"), (actor, target)
        else:
            assert r.status_code == 403, (actor, target, r.status_code)
            assert member.monthly_limit is None, (actor, target)


@pytest.mark.parametrize("actor", ACTORS)
def test_member_limit_by_role_with_htmx(team, actor):
    client = team.client(actor)
    for target in TARGETS:
        member = team.membership(target)
        r = client.post(
            team.url("org-member-limit", member_id=member.public_id),
            {"monthly_limit": "7"},
            headers={"HX-Request": "true"},
        )
        member.refresh_from_db()
        expected = may_manage(actor, target)
        assert r.status_code == (200 if expected else 403), (actor, target, r.status_code)
        assert member.monthly_limit == (Decimal("7") if expected else None), (actor, target)


@pytest.mark.parametrize("actor", ACTORS)
def test_api_token_revoke_by_role(team, actor):
    client = team.client(actor)
    for target in [*TARGETS, actor]:
        row = team.token_row(target)
        r = client.post(team.url("org-token-revoke", token_id=row.public_id))
        row.refresh_from_db()
        me = team.tenants.api_client_for(team.tokens[target]).get("/v1/me")
        if may_revoke_token(actor, target):
            assert r.status_code == 302, (actor, target, r.status_code)
            assert row.revoked_at is not None and me.status_code == 401, (actor, target)
        else:
            assert r.status_code == 403, (actor, target, r.status_code)
            assert row.revoked_at is None and me.status_code == 200, (actor, target)


@pytest.mark.parametrize("actor", ACTORS)
def test_role_change_by_role(team, actor):
    client = team.client(actor)
    for target in [*TARGETS, actor]:
        member = team.membership(target)
        before = member.role
        new_role = Role.ADMIN if before == Role.OWNER else Role.MEMBER if before == Role.VIEWER else Role.VIEWER
        r = client.post(team.url("org-member-role", member_id=member.public_id), {"role": new_role})
        member.refresh_from_db()
        if may_manage(actor, target):
            assert r.status_code == 302, (actor, target, r.status_code)
            assert member.role == new_role, (actor, target)
            Membership.all_orgs.filter(pk=member.pk).update(role=before)  # as it was, for the next target
        else:
            assert r.status_code == 403, (actor, target, r.status_code)
            assert member.role == before, (actor, target)


@pytest.mark.parametrize("actor", ACTORS)
def test_remove_by_role(team, actor):
    client = team.client(actor)
    for target in [t for t in TARGETS if t != actor]:  # removing oneself is leaving (test_members)
        member = team.membership(target)
        r = client.post(team.url("org-member-remove", member_id=member.public_id))
        still_there = Membership.all_orgs.filter(pk=member.pk).exists()
        if may_manage(actor, target):
            assert r.status_code == 302 and not still_there, (actor, target, r.status_code)
        else:
            assert r.status_code == 403 and still_there, (actor, target, r.status_code)


def test_admins_cannot_make_owners(team):
    bob = team.membership("bob")
    r = team.client("adam").post(team.url("org-member-role", member_id=bob.public_id), {"role": "owner"})
    bob.refresh_from_db()
    assert r.status_code == 403 and bob.role == Role.MEMBER


@pytest.mark.parametrize("actor", ACTORS)
def test_members_page_offers_only_the_allowed_controls(team, actor):
    html = team.client(actor).get(team.url("org-members")).content.decode()
    for target in TARGETS:
        member = team.membership(target)
        for route in ("org-member-role", "org-member-limit", "org-member-remove"):
            action = f'action="{team.url(route, member_id=member.public_id)}"'
            assert (action in html) == may_manage(actor, target), (actor, target, route)
    # the owner role is offered only to owners
    assert ('<option value="owner"' in html) == (ROLES[actor] == Role.OWNER)
