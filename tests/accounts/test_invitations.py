"""Invitations: an invitation by email address can be accepted only by the account with that
address; a link for anyone who has it must be chosen explicitly and has an expiry and a use limit.
Another organization's member and invitation ids are 404, also under one's own organization."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import LINK_INVITATION_MAX_USES, Invitation, Membership, Role, User
from apps.audit.models import AuditEvent
from apps.core.errors import ApplicationError, PermissionDeniedError
from apps.core.scoping import org_scope
from tests.conftest import PASSWORD

HX = {"HX-Request": "true"}


def _org_url(org, name, **kw):
    return reverse(name, kwargs={"org_slug": org.slug, **kw})


def _invite(client, org, **data) -> tuple[int, str]:
    """Post the invitation form (htmx); returns the status and the path of the link shown once."""
    r = client.post(_org_url(org, "org-invite"), {"role": "member", **data}, headers=HX)
    html = r.content.decode()
    marker = 'id="invite-link" readonly value="'
    if marker not in html:
        return r.status_code, ""
    start = html.index(marker) + len(marker)
    link = html[start : html.index('"', start)]
    return r.status_code, "/" + link.split("://", 1)[1].split("/", 1)[1]


def _user(email: str) -> User:
    return User.objects.create_user(email, PASSWORD)


def _member_of(org, user) -> Membership | None:
    return Membership.all_orgs.filter(organization=org, user=user).first()


def _alice(tenants) -> Membership:
    return Membership.all_orgs.select_related("organization", "user").get(
        user=tenants.alice, organization=tenants.org_a
    )


# --- invitations by email address -----------------------------------------------------------


@pytest.mark.django_db
def test_an_email_invitation_is_refused_to_another_account(tenants):
    status, path = _invite(tenants.client_for(tenants.alice), tenants.org_a, email="dana@example.com")
    assert status == 200 and path.startswith("/invite/")
    charlie = tenants.client_for(tenants.charlie)
    page = charlie.get(path)
    html = page.content.decode()
    # the page says who it is for (masked) and offers charlie no accept button
    assert page.status_code == 200 and "d•••@example.com" in html and "Accept as" not in html
    r = charlie.post(path)
    assert r.status_code == 403 and "Sign in with the invited address" in r.content.decode()
    assert _member_of(tenants.org_a, tenants.charlie) is None
    invitation = Invitation.all_orgs.get()
    assert invitation.use_count == 0 and invitation.accepted_at is None and invitation.is_pending
    # the service refuses too, whoever calls it
    with pytest.raises(PermissionDeniedError):
        services.invitation_accept(token=path.strip("/").rsplit("/", 1)[1], user=tenants.bob)


@pytest.mark.django_db
def test_the_invited_address_accepts_whatever_its_case(tenants):
    status, path = _invite(tenants.client_for(tenants.alice), tenants.org_a, email="Dana@Example.COM", role="viewer")
    assert status == 200
    dana = User(email="dAna@example.com")  # stored with other capitals than the invitation's
    dana.set_password(PASSWORD)
    dana.save()
    client = tenants.client_for(dana)
    assert "Accept as dAna@example.com" in client.get(path).content.decode()
    r = client.post(path)
    assert r.status_code == 302 and r["Location"] == f"/o/{tenants.org_a.slug}/"
    assert _member_of(tenants.org_a, dana).role == Role.VIEWER
    invitation = Invitation.all_orgs.get()
    assert invitation.use_count == 1 and invitation.accepted_by == dana and invitation.state == "accepted"
    # used: dead for everyone, its own account included
    assert client.get(path).status_code == 404


@pytest.mark.django_db
def test_a_new_account_signs_up_with_the_invited_address_and_joins(tenants):
    _, path = _invite(tenants.client_for(tenants.alice), tenants.org_a, email="nia@example.com")
    anon = Client()
    r = anon.post(
        reverse("signup") + f"?next={path}",
        {"email": "nia@example.com", "password": PASSWORD, "org_name": "Nia", "next": path},
    )
    assert r["Location"] == path
    assert anon.post(path)["Location"] == f"/o/{tenants.org_a.slug}/"
    assert _member_of(tenants.org_a, User.objects.get(email="nia@example.com")).role == Role.MEMBER


@pytest.mark.django_db
def test_an_invitation_needs_an_address_unless_a_link_is_chosen(tenants):
    client = tenants.client_for(tenants.alice)
    status, path = _invite(client, tenants.org_a)  # no email, no explicit choice
    assert status == 400 and path == ""
    assert Invitation.all_orgs.count() == 0
    with org_scope(tenants.org_a), pytest.raises(ApplicationError) as exc:
        services.invitation_create(by=_alice(tenants), role="member")
    assert exc.value.param == "email"
    with org_scope(tenants.org_a), pytest.raises(ApplicationError) as exc:
        services.invitation_create(by=_alice(tenants), role="member", email="not an address")
    assert exc.value.param == "email"
    assert Invitation.all_orgs.count() == 0


# --- links for anyone who has them ----------------------------------------------------------


@pytest.mark.django_db
def test_a_link_for_anyone_is_used_up_to_its_limit(tenants):
    status, path = _invite(tenants.client_for(tenants.alice), tenants.org_a, anyone_with_link="on", max_uses="2")
    assert status == 200
    invitation = Invitation.all_orgs.get()
    assert invitation.kind == "link" and invitation.email == "" and invitation.max_uses == 2
    assert invitation.expires_at > timezone.now() + timedelta(hours=71)
    joined = [_user("dana@example.com"), tenants.charlie]
    for user in joined:
        r = tenants.client_for(user).post(path)
        assert r.status_code == 302 and r["Location"] == f"/o/{tenants.org_a.slug}/", user
        assert _member_of(tenants.org_a, user).role == Role.MEMBER
    late = _user("eve@example.com")
    r = tenants.client_for(late).post(path)
    assert r.status_code == 302 and r["Location"] == "/"  # refused: back home with the reason
    assert _member_of(tenants.org_a, late) is None
    invitation.refresh_from_db()
    assert invitation.use_count == 2 and invitation.state == "accepted" and not invitation.is_pending
    # the members page says how far along it is
    html = tenants.client_for(tenants.alice).get(_org_url(tenants.org_a, "org-members")).content.decode()
    assert "anyone with the link" in html and "2 of 2 used" in html


@pytest.mark.django_db
def test_a_link_for_anyone_expires(tenants):
    _, path = _invite(tenants.client_for(tenants.alice), tenants.org_a, anyone_with_link="on")
    Invitation.all_orgs.update(expires_at=timezone.now() - timedelta(seconds=1))
    charlie = tenants.client_for(tenants.charlie)
    assert charlie.get(path).status_code == 404
    assert charlie.post(path)["Location"] == "/"
    assert _member_of(tenants.org_a, tenants.charlie) is None
    assert Invitation.all_orgs.get().use_count == 0


@pytest.mark.django_db
def test_a_link_for_anyone_cannot_make_owners_nor_carry_an_address_nor_exceed_the_limit(tenants):
    alice = _alice(tenants)
    with org_scope(tenants.org_a):
        with pytest.raises(ApplicationError) as exc:
            services.invitation_create(by=alice, role="owner", anyone_with_link=True)
        assert exc.value.param == "role"
        with pytest.raises(ApplicationError) as exc:
            services.invitation_create(by=alice, role="member", email="d@example.com", anyone_with_link=True)
        assert exc.value.param == "email"
        for uses in (0, LINK_INVITATION_MAX_USES + 1):
            with pytest.raises(ApplicationError) as exc:
                services.invitation_create(by=alice, role="member", anyone_with_link=True, max_uses=uses)
            assert exc.value.param == "max_uses"
        with pytest.raises(ApplicationError) as exc:
            services.invitation_create(by=alice, role="member", email="d@example.com", max_uses=3)
        assert exc.value.param == "max_uses"
    assert Invitation.all_orgs.count() == 0


@pytest.mark.django_db
def test_both_kinds_are_audited(tenants):
    alice = _alice(tenants)
    with org_scope(tenants.org_a):
        by_email, email_token = services.invitation_create(by=alice, role="viewer", email="dana@example.com")
        link, link_token = services.invitation_create(by=alice, role="member", anyone_with_link=True, max_uses=3)
    services.invitation_accept(token=email_token, user=_user("dana@example.com"))
    services.invitation_accept(token=link_token, user=tenants.charlie)
    invited = {e.target: e.detail for e in AuditEvent.all_orgs.filter(action="member.invited")}
    assert invited[by_email.public_id] == {
        "role": "viewer",
        "kind": "email",
        "email": "dana@example.com",
        "max_uses": 1,
        "expires_at": by_email.expires_at.isoformat(),
    }
    assert invited[link.public_id]["kind"] == "link" and invited[link.public_id]["max_uses"] == 3
    joined = {e.detail["invitation"]: e for e in AuditEvent.all_orgs.filter(action="member.joined")}
    assert joined[by_email.public_id].detail["kind"] == "email"
    assert joined[link.public_id].detail["kind"] == "link" and joined[link.public_id].actor == tenants.charlie
    assert not AuditEvent.all_orgs.filter(detail__icontains=link_token).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("uses, racers", [(1, 2), (2, 5)])
def test_accounts_racing_on_a_link_get_in_only_as_often_as_it_allows(tenants, uses, racers):
    alice = _alice(tenants)
    with org_scope(tenants.org_a):
        _, token = services.invitation_create(by=alice, role="member", anyone_with_link=True, max_uses=uses)
    users = [_user(f"racer{n}@example.com") for n in range(racers)]
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def accept(user: User) -> None:
        try:
            barrier.wait(timeout=10)
            services.invitation_accept(token=token, user=user)
            result = "joined"
        except ApplicationError as exc:
            result = exc.code
        finally:
            close_old_connections()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=accept, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["invitation_invalid"] * (racers - uses) + ["joined"] * uses, outcomes
    assert Membership.all_orgs.filter(organization=tenants.org_a, user__in=users).count() == uses
    invitation = Invitation.all_orgs.get()
    assert invitation.use_count == uses and not invitation.is_pending


# --- another organization's ids under one's own slug: 404 ------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_alices_member_and_invitation_ids_are_404_under_charlies_org(tenants, htmx):
    alice_m = _alice(tenants)
    bob_m = Membership.all_orgs.get(user=tenants.bob, organization=tenants.org_a)
    with org_scope(tenants.org_a):
        invitation, _ = services.invitation_create(by=alice_m, role="member", email="dana@example.com")
    charlie = tenants.client_for(tenants.charlie)
    headers = HX if htmx else {}
    org_b = tenants.org_b
    for member in (alice_m, bob_m):
        for route, data in (
            ("org-member-role", {"role": "viewer"}),
            ("org-member-limit", {"monthly_limit": "0.01"}),
            ("org-member-remove", {}),
        ):
            r = charlie.post(_org_url(org_b, route, member_id=member.public_id), data, headers=headers)
            assert r.status_code == 404, (route, member.user.email, r.status_code)
            assert "Alice Films" not in r.content.decode()
    r = charlie.post(_org_url(org_b, "org-invitation-revoke", invitation_id=invitation.public_id), headers=headers)
    assert r.status_code == 404
    # nothing of alice's changed
    bob_m.refresh_from_db()
    assert bob_m.role == Role.MEMBER and bob_m.monthly_limit is None
    assert Membership.all_orgs.filter(organization=tenants.org_a).count() == 2
    invitation.refresh_from_db()
    assert invitation.is_pending and invitation.revoked_at is None


@pytest.mark.django_db
def test_an_unknown_member_id_is_404_in_the_service(tenants):
    from apps.core.errors import NotFound

    alice = _alice(tenants)
    charlie = Membership.all_orgs.get(user=tenants.charlie)
    with org_scope(tenants.org_a):
        for call in (
            lambda: services.membership_change_role(by=alice, target_public_id=charlie.public_id, role="viewer"),
            lambda: services.membership_set_limit(by=alice, target_public_id=charlie.public_id, monthly_limit=1),
            lambda: services.membership_remove(by=alice, target_public_id=charlie.public_id),
            lambda: services.invitation_revoke(by=alice, public_id="inv_nope"),
        ):
            with pytest.raises(NotFound):
                call()
