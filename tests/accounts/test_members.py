from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Invitation, Membership, Role, User
from apps.core.scoping import org_scope
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _members_url(org, name="org-members", **kw):
    return reverse(name, kwargs={"org_slug": org.slug, **kw})


def _invite(client, org, role="member", email="charlie@example.com"):
    r = client.post(_members_url(org, "org-invite"), {"role": role, "email": email}, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.content
    html = r.content.decode()
    start = html.index('id="invite-link" readonly value="') + len('id="invite-link" readonly value="')
    return html[start : html.index('"', start)]


def test_owner_invites_and_new_user_accepts(tenants):
    owner = tenants.client_for(tenants.alice)
    link = _invite(owner, tenants.org_a, role="admin", email="dana@example.com")
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    # the token is stored only as a digest
    assert not Invitation.all_orgs.filter(token_digest__contains=path.rstrip("/").rsplit("/", 1)[1]).exists()

    from django.test import Client

    anon = Client()
    assert b"Join Alice Films" in anon.get(path).content
    r = anon.post(
        reverse("signup") + f"?next={path}",
        {"email": "dana@example.com", "password": PASSWORD, "org_name": "Dana", "next": path},
    )
    assert r["Location"] == path
    r = anon.post(path)
    assert r["Location"] == f"/o/{tenants.org_a.slug}/"
    dana = User.objects.get(email="dana@example.com")
    with org_scope(tenants.org_a):
        assert Membership.objects.get(user=dana).role == "admin"
    # a used link is dead
    assert anon.get(path).status_code == 404


def test_expired_and_revoked_invitations_cannot_be_accepted(tenants):
    # both for charlie's own address: expiry and revocation are the only reasons for refusing him
    owner = tenants.client_for(tenants.alice)
    link1 = _invite(owner, tenants.org_a)
    link2 = _invite(owner, tenants.org_a)
    inv_old, inv_new = Invitation.all_orgs.order_by("created_at")
    Invitation.all_orgs.filter(pk=inv_old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    r = owner.post(_members_url(tenants.org_a, "org-invitation-revoke", invitation_id=inv_new.public_id))
    assert r.status_code == 302
    inv_new.refresh_from_db()
    assert inv_new.revoked_at is not None and inv_new.state == "revoked"
    charlie = tenants.client_for(tenants.charlie)
    for link in (link1, link2):
        path = "/" + link.split("://", 1)[1].split("/", 1)[1]
        r = charlie.post(path, follow=True)
        assert r.redirect_chain[0] == ("/", 302)  # refused: home, not alice's organization
        assert "invalid, expired or already used" in r.content.decode()
    with org_scope(tenants.org_a):
        assert not Membership.objects.filter(user=tenants.charlie).exists()


def test_accepting_while_already_a_member_is_refused(tenants):
    link = _invite(tenants.client_for(tenants.alice), tenants.org_a, email="bob@example.com")
    r = tenants.client_for(tenants.bob).post("/" + link.split("://", 1)[1].split("/", 1)[1], follow=True)
    assert r.redirect_chain[0] == ("/", 302) and "already a member of Alice Films" in r.content.decode()
    assert Membership.all_orgs.filter(user=tenants.bob).count() == 1
    assert Invitation.all_orgs.get().use_count == 0  # the refused attempt did not use it up


@pytest.mark.parametrize("who", ["bob", "vera"])
def test_members_cannot_invite_or_manage(tenants, who):
    if who == "vera":
        vera = User.objects.create_user("vera@example.com", PASSWORD)
        Membership.all_orgs.create(organization=tenants.org_a, user=vera, role=Role.VIEWER, public_id="mem_vera")
    client = tenants.client_for(User.objects.get(email=f"{who}@example.com"))
    r = client.post(_members_url(tenants.org_a, "org-invite"), {"role": "member"}, headers={"HX-Request": "true"})
    assert r.status_code == 403
    alice_membership = Membership.all_orgs.get(user=tenants.alice)
    r = client.post(
        _members_url(tenants.org_a, "org-member-remove", member_id=alice_membership.public_id),
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 403
    assert Membership.all_orgs.filter(pk=alice_membership.pk).exists()
    assert Invitation.all_orgs.count() == 0


def test_admin_cannot_grant_owner(tenants):
    Membership.all_orgs.filter(user=tenants.bob).update(role="admin")
    client = tenants.client_for(tenants.bob)
    r = client.post(_members_url(tenants.org_a, "org-invite"), {"role": "owner"}, headers={"HX-Request": "true"})
    assert r.status_code == 403


def test_owner_changes_role_and_removes_member(tenants):
    client = tenants.client_for(tenants.alice)
    bob_m = Membership.all_orgs.get(user=tenants.bob)
    client.post(_members_url(tenants.org_a, "org-member-role", member_id=bob_m.public_id), {"role": "viewer"})
    bob_m.refresh_from_db()
    assert bob_m.role == Role.VIEWER
    client.post(_members_url(tenants.org_a, "org-member-remove", member_id=bob_m.public_id))
    assert not Membership.all_orgs.filter(pk=bob_m.pk).exists()


def test_last_owner_can_be_neither_demoted_nor_removed_nor_leave(tenants):
    client = tenants.client_for(tenants.alice)
    alice_m = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    # a second owner may demote alice... but first: alone, she cannot leave
    r = client.post(_members_url(tenants.org_a, "org-leave"))
    assert Membership.all_orgs.filter(pk=alice_m.pk).exists()
    assert r.status_code == 302
    bob_m = Membership.all_orgs.get(user=tenants.bob)
    client.post(_members_url(tenants.org_a, "org-member-role", member_id=bob_m.public_id), {"role": "owner"})
    bob = tenants.client_for(tenants.bob)
    r = bob.post(_members_url(tenants.org_a, "org-member-role", member_id=alice_m.public_id), {"role": "member"})
    alice_m.refresh_from_db()
    assert alice_m.role == "member"
    # bob is now the last owner: nobody can demote him (alice is only a member) and he cannot leave
    r = bob.post(_members_url(tenants.org_a, "org-leave"))
    assert Membership.all_orgs.filter(pk=bob_m.pk, role="owner").exists()
    from apps.accounts import services
    from apps.core.errors import ApplicationError

    with org_scope(tenants.org_a), pytest.raises(ApplicationError, match="last owner"):
        services.membership_change_role(
            by=Membership.all_orgs.get(pk=bob_m.pk), target_public_id=bob_m.public_id, role="admin"
        )


def test_member_can_leave(tenants):
    bob = tenants.client_for(tenants.bob)
    r = bob.post(_members_url(tenants.org_a, "org-leave"))
    assert r.status_code == 302
    assert not Membership.all_orgs.filter(user=tenants.bob).exists()
    assert bob.get(f"/o/{tenants.org_a.slug}/").status_code == 404


def test_members_page_query_count_is_fixed(tenants, django_assert_max_num_queries):
    client = tenants.client_for(tenants.alice)
    client.get(_members_url(tenants.org_a))  # warm the session
    with django_assert_max_num_queries(12) as ctx:
        client.get(_members_url(tenants.org_a))
    before = len(ctx.captured_queries)
    for i in range(10):
        u = User.objects.create_user(f"m{i}@example.com", PASSWORD)
        Membership.all_orgs.create(organization=tenants.org_a, user=u, role="member", public_id=f"mem_x{i}")
    with django_assert_max_num_queries(before):
        r = client.get(_members_url(tenants.org_a))
    assert r.content.count(b'data-member="') == 12


def test_org_settings_budgets(tenants):
    client = tenants.client_for(tenants.alice)
    url = reverse("org-settings", kwargs={"org_slug": tenants.org_a.slug})
    r = client.post(url, {"name": "Alice Films", "monthly_budget": "250.00", "member_monthly_limit": "50"})
    assert r.status_code == 302
    tenants.org_a.refresh_from_db()
    assert str(tenants.org_a.monthly_budget) == "250.00"
    bob = tenants.client_for(tenants.bob)
    r = bob.post(url, {"name": "Hijack", "monthly_budget": "9999"})
    assert r.status_code == 403
    tenants.org_a.refresh_from_db()
    assert tenants.org_a.name == "Alice Films"
