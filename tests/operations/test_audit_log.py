"""Every security-relevant action leaves an audit event, visible to owners and admins, never a secret."""

import json
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from apps.accounts import services as account_services
from apps.accounts.models import Membership
from apps.api_keys import services as key_services
from apps.audit.models import AuditEvent
from apps.audit.services import ACTIONS
from apps.core.scoping import org_scope
from apps.generations import services as generation_services
from apps.sharing import services as sharing_services
from tests.tenant_walk_objects import _alice_video

pytestmark = pytest.mark.django_db


@pytest.fixture
def sora_key(settings, openai_emulator):
    settings.OPENAI_BASE_URL = openai_emulator.base_url
    return openai_emulator.api_key


def _alice(tenants):
    return Membership.all_orgs.select_related("organization", "user").get(
        user=tenants.alice, organization=tenants.org_a
    )


def test_member_and_key_actions_are_audited(tenants, sora_key, settings):
    alice = _alice(tenants)
    with org_scope(tenants.org_a):
        key = key_services.provider_key_create(by=alice, provider="sora", api_key=sora_key, label="main")
        second = key_services.provider_key_create(by=alice, provider="sora", api_key=sora_key, label="backup")
        key_services.provider_key_validate(by=alice, public_id=key.public_id)
        key_services.provider_key_set_default(by=alice, public_id=second.public_id)
        key_services.provider_key_mark_invalid(key=key, error=f"401 bad key {sora_key}")
        key_services.provider_key_delete(by=alice, public_id=key.public_id)
        token, _ = key_services.api_token_create(org=tenants.org_a, user=tenants.alice, name="ci")
        key_services.api_token_revoke(by=alice, public_id=token.public_id)
        # addressed to charlie: only his account can accept it (an invitation is bound to its email)
        _invitation, link_token = account_services.invitation_create(
            by=alice, role="member", email="charlie@example.com"
        )
        other, _ = account_services.invitation_create(by=alice, role="viewer", anyone_with_link=True)
        account_services.invitation_revoke(by=alice, public_id=other.public_id)
    account_services.invitation_accept(token=link_token, user=tenants.charlie)
    with org_scope(tenants.org_a):
        bob = Membership.objects.get(user=tenants.bob)
        charlie = Membership.objects.get(user=tenants.charlie)
        account_services.membership_change_role(by=alice, target_public_id=bob.public_id, role="admin")
        account_services.membership_set_limit(by=alice, target_public_id=bob.public_id, monthly_limit=10)
        account_services.membership_remove(by=alice, target_public_id=charlie.public_id)
        account_services.organization_update(
            by=alice,
            name="Alice Films",
            monthly_budget=100,
            member_monthly_limit=None,
            retention_days=None,
            fields=("name", "monthly_budget", "member_monthly_limit", "retention_days"),
        )
        generation_services.routing_policy_set(by=alice, order="direct_first")
        account_services.membership_leave(membership=Membership.objects.get(user=tenants.bob))
    video = _alice_video(tenants)
    with org_scope(tenants.org_a):
        share, share_token = sharing_services.share_create(by=alice, generation=video)
        sharing_services.share_revoke(by=alice, public_id=share.public_id)
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), *settings.FERNET_KEYS]
    call_command("rotate_fernet_keys", stdout=StringIO())

    seen = set(AuditEvent.all_orgs.filter(organization=tenants.org_a).values_list("action", flat=True))
    member_and_key_actions = {a for a in ACTIONS if not a.startswith(("generation.", "batch."))}
    assert member_and_key_actions <= seen, member_and_key_actions - seen
    # the role change says from what to what, by whom
    change = AuditEvent.all_orgs.get(action="member.role_changed")
    assert change.actor == tenants.alice and change.detail["from"] == "member" and change.detail["to"] == "admin"
    budget = AuditEvent.all_orgs.get(action="org.settings_changed")
    assert budget.detail["monthly_budget"] == {"from": None, "to": "100"}
    # never a secret: not the provider key, not the invitation link, not the API token
    dump = json.dumps(list(AuditEvent.all_orgs.values()), default=str)
    assert sora_key not in dump and link_token not in dump and share_token not in dump


def test_owners_and_admins_see_the_audit_log_members_do_not(tenants):
    alice = _alice(tenants)
    with org_scope(tenants.org_a):
        account_services.invitation_create(by=alice, role="member", email="x@example.com")
    url = f"/o/{tenants.org_a.slug}/settings/audit/"
    r = tenants.client_for(tenants.alice).get(url)
    assert r.status_code == 200 and b"member.invited" in r.content and b"alice@example.com" in r.content
    assert tenants.client_for(tenants.bob).get(url).status_code == 403
    assert tenants.client_for(tenants.charlie).get(url).status_code == 404
    # charlie's own log does not show alice's events
    r = tenants.client_for(tenants.charlie).get(f"/o/{tenants.org_b.slug}/settings/audit/")
    assert r.status_code == 200 and b"member.invited" not in r.content


def test_operators_see_the_audit_log_read_only(tenants, django_user_model):
    alice = _alice(tenants)
    with org_scope(tenants.org_a):
        account_services.invitation_create(by=alice, role="member", email="x@example.com")
    staff = django_user_model.objects.create_superuser("ops@example.com", "pw")
    client = tenants.client_for(staff)
    r = client.get("/admin/audit/auditevent/")
    assert r.status_code == 200 and b"member.invited" in r.content
    event = AuditEvent.all_orgs.first()
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.all_orgs.filter(pk=event.pk).exists()
