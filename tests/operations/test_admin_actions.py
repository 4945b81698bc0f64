"""Operators fix generations from the admin: staff only, through the services, each audited."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations import engine, services
from apps.generations.models import Generation, State
from tests.generations.helpers import assert_ledger_balanced, ledger_of, run_steps

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/generations/generation/"


@pytest.fixture(autouse=True)
def fast_sandbox(settings):
    settings.SANDBOX_JOB_SECONDS = 0.2


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("ops@example.com", "pw")


def _gen(tenants, prompt="operator test"):
    with org_scope(tenants.org_a):
        return services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=services.GenerationRequest(model="sandbox-video", prompt=prompt, seconds=2),
        )


def _act(client, action, gen):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [gen.pk]}, follow=True)


def test_it_requires_staff(tenants):
    gen = _gen(tenants)
    client = tenants.client_for(tenants.alice)  # an org owner is not an operator
    r = client.post(CHANGELIST, {"action": "mark_failed", "_selected_action": [gen.pk]})
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    gen.refresh_from_db()
    assert gen.state == State.CREATED
    assert client.get("/admin/health/").status_code == 302


def test_staff_without_change_permission_cannot_act(tenants, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("auditor@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_generation"))
    gen = _gen(tenants)
    client = tenants.client_for(viewer)
    assert client.get(CHANGELIST).status_code == 200
    _act(client, "mark_failed", gen)
    gen.refresh_from_db()
    assert gen.state == State.CREATED


def test_mark_failed_releases_the_hold_and_is_audited(tenants, operator):
    gen = _gen(tenants)
    r = _act(tenants.client_for(operator), "mark_failed", gen)
    assert b"Marked failed: 1" in r.content
    gen.refresh_from_db()
    assert gen.state == State.FAILED and gen.error_code == "operator_failed"
    assert_ledger_balanced(gen)
    event = AuditEvent.all_orgs.get(action="generation.marked_failed")
    assert event.actor == operator and event.target == gen.public_id and event.organization == tenants.org_a


def test_retry_of_a_job_with_a_provider_id_polls_and_never_resubmits(tenants, operator, monkeypatch):
    from apps.providers.sandbox import adapter as sandbox

    gen = _gen(tenants)
    with org_scope(tenants.org_a):
        engine.generation_submit(generation_id=gen.pk)
    gen.refresh_from_db()
    job_id = gen.provider_job_id
    # it failed (say, a download timed out) after the provider finished it
    with org_scope(tenants.org_a):
        engine.fail(gen, code="timeout", message="timed out")
    submits = []
    monkeypatch.setattr(sandbox.SandboxProvider, "submit", lambda self, spec: submits.append(1) or "x")
    scheduled = []
    monkeypatch.setattr(engine, "schedule", lambda step, g, delay: scheduled.append(step))
    _act(tenants.client_for(operator), "retry", gen)
    gen.refresh_from_db()
    assert gen.state == State.QUEUED and gen.provider_job_id == job_id and scheduled == ["poll"]
    monkeypatch.undo()
    gen = run_steps(gen)
    assert gen.state == State.COMPLETED and not submits
    entries = ledger_of(gen)
    assert entries["charge"] == [gen.final_cost] and len(entries["hold"]) == 1
    assert AuditEvent.all_orgs.filter(action="generation.retried", target=gen.public_id).exists()


def test_retry_of_a_never_submitted_job_submits_it(tenants, operator, monkeypatch):
    gen = _gen(tenants)
    with org_scope(tenants.org_a):
        engine.fail(gen, code="x", message="stuck")
    scheduled = []
    monkeypatch.setattr(engine, "schedule", lambda step, g, delay: scheduled.append(step))
    _act(tenants.client_for(operator), "retry", gen)
    gen.refresh_from_db()
    assert gen.state == State.CREATED and scheduled == ["submit"]


def test_cancel_and_refund(tenants, operator):
    client = tenants.client_for(operator)
    pending = _gen(tenants, "to cancel")
    _act(client, "cancel", pending)
    pending.refresh_from_db()
    assert pending.state == State.CANCELED
    assert_ledger_balanced(pending)

    done = run_steps(_gen(tenants, "to refund"))
    Generation.all_orgs.filter(pk=done.pk).update(final_cost=Decimal("1.5"))
    UsageEntry.all_orgs.filter(generation=done, kind="charge").update(amount=Decimal("1.5"))
    _act(client, "refund", done)
    entries = ledger_of(done)
    assert entries["charge"] == [Decimal("1.5")] and entries["refund"] == [Decimal("-1.5")]
    # a second refund has nothing left to give back
    r = _act(client, "refund", done)
    assert b"at most $0" in r.content
    assert len(ledger_of(done)["refund"]) == 1
    assert AuditEvent.all_orgs.filter(action="generation.refunded").count() == 1
    assert AuditEvent.all_orgs.filter(action="generation.canceled").count() == 1


def test_generation_detail_shows_history_key_and_file(tenants, operator):
    gen = run_steps(_gen(tenants))
    client = tenants.client_for(operator)
    r = client.get(f"{CHANGELIST}{gen.pk}/change/")
    html = r.content.decode()
    assert r.status_code == 200
    assert "downloading" in html and "completed" in html  # the state history
    assert gen.video_file in html
    r = client.get(f"{CHANGELIST}{gen.pk}/content/")
    assert r.status_code == 200 and b"".join(r.streaming_content)[:12].find(b"ftyp") != -1


@pytest.mark.parametrize("query", ["public_id", "provider_job_id", "prompt", "email"])
def test_find_any_generation_by_any_identifier(tenants, operator, query):
    gen = _gen(tenants, "a very particular prompt")
    with org_scope(tenants.org_a):
        engine.generation_submit(generation_id=gen.pk)
    gen.refresh_from_db()
    _gen(tenants, "something else")
    term = {
        "public_id": gen.public_id,
        "provider_job_id": gen.provider_job_id,
        "prompt": "particular",
        "email": "bob@example.com",
    }[query]
    r = tenants.client_for(operator).get(CHANGELIST, {"q": term})
    assert gen.public_id.encode() in r.content


def test_list_filters(tenants, operator):
    gen = _gen(tenants)
    with org_scope(tenants.org_a):
        engine.fail(gen, code="boom", message="boom")
    client = tenants.client_for(operator)
    for params in (
        {"state": "failed"},
        {"has_error": "yes"},
        {"provider": "sandbox"},
        {"organization__id__exact": tenants.org_a.pk},
    ):
        r = client.get(CHANGELIST, params)
        assert r.status_code == 200 and gen.public_id.encode() in r.content, params
    assert gen.public_id.encode() not in client.get(CHANGELIST, {"has_error": "no"}).content


def test_ledger_admin_is_read_only_with_monthly_totals(tenants, operator):
    run_steps(_gen(tenants))
    client = tenants.client_for(operator)
    r = client.get("/admin/billing/usageentry/")
    assert r.status_code == 200 and b"Monthly totals" in r.content
    entry = UsageEntry.all_orgs.first()
    r = client.post(f"/admin/billing/usageentry/{entry.pk}/change/", {"amount": "0"})
    assert r.status_code == 403
    r = client.get("/admin/billing/usageentry/totals/")
    assert r.status_code == 200 and b"alice-films" in r.content and b"bob@example.com" in r.content


def _admin_field(html: str, name: str) -> str:
    """The value of one read-only field on an admin change page."""
    import html as html_lib
    import re

    match = re.search(rf'field-{name}\b.*?<div class="readonly">(.*?)</div>', html, re.DOTALL)
    assert match, f"no read-only field {name} on the page"
    return html_lib.unescape(match.group(1)).strip()


def test_organization_admin_shows_usage_storage_and_masked_keys(tenants, operator):
    from django.template.defaultfilters import filesizeformat

    page = f"/admin/accounts/organization/{tenants.org_a.pk}/change/"
    client = tenants.client_for(operator)
    assert _admin_field(client.get(page).content.decode(), "storage_used") == filesizeformat(0)
    first, second = run_steps(_gen(tenants)), run_steps(_gen(tenants, "a second one"))
    r = client.get(page)
    html = r.content.decode()
    assert r.status_code == 200 and "spent" in html and "reserved" in html
    # storage used: the bytes of both stored videos, as the page formats them
    assert first.bytes > 1024 and second.bytes > 1024
    assert _admin_field(html, "storage_used") == filesizeformat(first.bytes + second.bytes)


def test_health_page(tenants, operator):
    gen = _gen(tenants)
    Generation.all_orgs.filter(pk=gen.pk).update(next_poll_at=timezone.now() - timedelta(minutes=5))
    run_steps(_gen(tenants, "finished"))
    r = tenants.client_for(operator).get("/admin/health/")
    html = r.content.decode()
    assert r.status_code == 200
    assert "Messages waiting" in html and gen.public_id in html  # listed as stuck
    assert "sandbox" in html  # provider table for the last hour


def test_health_page_shows_each_suppliers_circuit(tenants, operator, settings):
    from django.core.cache import cache

    from apps.generations import routing

    cache.clear()
    settings.ROUTER_CIRCUIT_FAILURES = 2
    for _ in range(2):
        routing.circuit_record("fal", None, ok=False)
    html = tenants.client_for(operator).get("/admin/health/").content.decode()
    assert '<td data-circuit="fal"><strong>open</strong></td>' in html
    assert '<td data-circuit="replicate">closed</td>' in html
    cache.clear()
