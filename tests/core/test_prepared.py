"""Hot-path queries (apps.core.prepared) give what the ORM gives, and keep the tenant scope, with
prepared queries on (MEDIAROUTER_PREPARED_QUERIES, the default) and off (the plain ORM)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.prepared import PreparedGet, update_returning
from apps.core.scoping import ScopeError, org_scope, scoped_organization_id, scopes_disabled
from apps.generations import engine, selectors, services
from apps.generations.models import Generation
from apps.generations.services import GenerationRequest

pytestmark = pytest.mark.django_db


@pytest.fixture
def prepared_on(settings):
    settings.MEDIAROUTER_PREPARED_QUERIES = True
    return settings


@pytest.fixture(params=[True, False], ids=["prepared", "orm"])
def either_path(request, settings):
    settings.MEDIAROUTER_PREPARED_QUERIES = request.param
    return request.param


def _create(tenants, org=None, user=None):
    org = org or tenants.org_a
    with org_scope(org):
        return services.generation_create(
            org=org,
            user=user or tenants.bob,
            request=GenerationRequest(model="sandbox-video", prompt="a kite", seconds=2, size="1280x720"),
        )


def _columns(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_a_prepared_get_builds_the_same_instances_as_the_orm(tenants, either_path):
    gen = _create(tenants)
    orm = Generation.all_orgs.select_related("user").get(pk=gen.pk)
    prepared = PreparedGet(
        lambda org_id, public_id: Generation.all_orgs.filter(
            organization_id=org_id, public_id=public_id
        ).select_related("user"),
        org_id=-1,
        public_id="placeholder",
    )
    got = prepared(org_id=tenants.org_a.pk, public_id=gen.public_id)
    assert _columns(got) == _columns(orm)
    assert _columns(got.user) == _columns(orm.user)
    with CaptureQueriesContext(connection) as queries:
        got.user.email  # noqa: B018 - joined: no second query
    assert not queries.captured_queries
    assert got._state.adding is False and got._state.db == "default"
    # the parameters are bound on every call: nothing of org A for org B's id, or for another id
    assert prepared(org_id=tenants.org_b.pk, public_id=gen.public_id) is None
    assert prepared(org_id=tenants.org_a.pk, public_id="video_nope") is None


def test_a_placeholder_must_appear_exactly_once(prepared_on):
    """The guard that finds where each placeholder is bound: a placeholder bound twice cannot be
    replaced safely, so compiling refuses it (and the query is never run)."""
    prepared = PreparedGet(
        lambda x: Generation.all_orgs.filter(pk=x) | Generation.all_orgs.filter(user_id=x),
        x=-7_000_000_000_000_009,
    )
    with pytest.raises(ImproperlyConfigured, match="appears 2 times"):
        prepared(x=1)


def test_the_switch_decides_which_path_runs(tenants, settings):
    """Off, a call is the builder's QuerySet run by the ORM; on (the default: the API's retrieve
    needs it for its 3 ms target), the query is compiled by hand, which refuses what it cannot
    reproduce (here ``only()``)."""
    from mediarouter import settings as base

    assert base.MEDIAROUTER_PREPARED_QUERIES is True
    gen = _create(tenants)
    prepared = PreparedGet(lambda pk: Generation.all_orgs.filter(pk=pk).only("id", "prompt"), pk=-1)
    settings.MEDIAROUTER_PREPARED_QUERIES = False
    got = prepared(pk=gen.pk)
    assert (got.pk, got.prompt) == (gen.pk, "a kite")
    assert prepared(pk=gen.pk + 1000) is None
    settings.MEDIAROUTER_PREPARED_QUERIES = True
    with pytest.raises(ImproperlyConfigured, match="plain model querysets"):
        prepared(pk=gen.pk)


def test_an_untested_django_keeps_the_prepared_path_off_and_fails_the_system_check(tenants, prepared_on, monkeypatch):
    from apps.core import checks as core_checks
    from apps.core import prepared as prepared_module

    assert core_checks.prepared_queries_django_version in checks.registry.registry.get_checks()
    assert core_checks.prepared_queries_django_version() == []
    assert prepared_module.prepared_queries_enabled()
    monkeypatch.setattr(prepared_module.django, "VERSION", (9, 1, 0, "final", 0))
    (error,) = core_checks.prepared_queries_django_version()
    assert error.level == checks.ERROR and "Django 9.1" in error.msg and "5.2" in error.msg
    assert not prepared_module.prepared_queries_enabled()
    # and the call sites keep working, through the ORM
    gen = _create(tenants)
    with org_scope(tenants.org_a):
        assert selectors.generation_get(org=tenants.org_a, public_id=gen.public_id).pk == gen.pk
    # with the setting off, any Django passes the check
    prepared_on.MEDIAROUTER_PREPARED_QUERIES = False
    assert core_checks.prepared_queries_django_version() == []


def test_update_returning_returns_what_the_update_computed(tenants):
    gen = _create(tenants)
    qs = Generation.all_orgs.filter(pk=gen.pk, state="created")
    assert update_returning(
        qs, ["poll_count", "transient_errors"], poll_count=F("poll_count") + 2, transient_errors=3
    ) == [(2, 3)]
    gen.refresh_from_db()
    assert (gen.poll_count, gen.transient_errors) == (2, 3)
    # no row matched: nothing returned, nothing written
    assert (
        update_returning(Generation.all_orgs.filter(pk=gen.pk, state="completed"), ["poll_count"], poll_count=9) == []
    )
    gen.refresh_from_db()
    assert gen.poll_count == 2


def test_scoped_organization_id(tenants):
    assert scoped_organization_id() is None
    with org_scope(tenants.org_a):
        assert scoped_organization_id() == tenants.org_a.pk
    with scopes_disabled():
        assert scoped_organization_id() is None
    with org_scope([tenants.org_a, tenants.org_b]):
        assert scoped_organization_id() is None


def test_generation_get_keeps_the_tenant_scope(tenants, either_path):
    gen = _create(tenants)
    with org_scope(tenants.org_a):
        assert selectors.generation_get(org=tenants.org_a, public_id=gen.public_id).pk == gen.pk
    # another organization's scope finds nothing, whatever org is passed
    with org_scope(tenants.org_b):
        assert selectors.generation_get(org=tenants.org_a, public_id=gen.public_id) is None
        assert selectors.generation_get(org=tenants.org_b, public_id=gen.public_id) is None
    # no scope at all: the scoped manager refuses, as before
    with pytest.raises(ScopeError):
        selectors.generation_get(org=tenants.org_a, public_id=gen.public_id)


def test_a_poll_is_two_queries_and_keeps_the_counters_in_step(tenants, monkeypatch, either_path):
    """One read, one conditional UPDATE … RETURNING; no Organization lookup, no re-read, no event
    when the state does not change (and no team-webhook lookup inside one 10 % progress step; a
    poll that crosses a step adds exactly one, for the organization's endpoints)."""
    from apps.core.tasks import TenantTask
    from apps.generations import tasks
    from apps.generations.models import GenerationEvent
    from apps.providers.base import JobState, JobStatus

    gen = _create(tenants)
    Generation.all_orgs.filter(pk=gen.pk).update(
        state="in_progress", provider_job_id="job_1", poll_count=4, progress=40
    )
    status = JobStatus(state=JobState.IN_PROGRESS, progress=45, raw_status="in_progress", poll_after=1.0)
    monkeypatch.setattr("apps.providers.sandbox.adapter.SandboxProvider.status", lambda self, job_id, **kw: status)
    sent = []
    monkeypatch.setattr(engine, "schedule", lambda step, g, delay: sent.append((step, g.poll_count, delay)))
    events = GenerationEvent.all_orgs.filter(generation_id=gen.pk).count()
    assert isinstance(tasks.poll, TenantTask)
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        tasks.poll(generation_id=gen.pk, org_id=tenants.org_a.pk)
    sql = [q["sql"].split()[0] for q in queries.captured_queries]
    assert sql == ["SELECT", "UPDATE"], [q["sql"][:80] for q in queries.captured_queries]
    assert sent == []  # no message for the next poll: the row's next_poll_at is the poll step's cue
    gen.refresh_from_db()
    assert (gen.poll_count, gen.progress) == (5, 45)
    assert before + timedelta(seconds=1.0) <= gen.next_poll_at <= timezone.now() + timedelta(seconds=1.0)
    assert GenerationEvent.all_orgs.filter(generation_id=gen.pk).count() == events
    # crossing a 10 % step is a video.in_progress event: one more query, for the endpoints
    status = JobStatus(state=JobState.IN_PROGRESS, progress=55, raw_status="in_progress", poll_after=1.0)
    with CaptureQueriesContext(connection) as queries:
        tasks.poll(generation_id=gen.pk, org_id=tenants.org_a.pk)
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["SELECT", "UPDATE", "SELECT"]


def test_a_task_of_a_deleted_organization_does_nothing(tenants, either_path):
    """TenantTask no longer loads the organization: a task whose organization is gone (or that
    names another organization's generation) finds nothing in its scope and returns."""
    from apps.accounts import services as account_services
    from apps.generations import tasks

    gen = _create(tenants)
    Generation.all_orgs.filter(pk=gen.pk).update(state="in_progress", provider_job_id="job_1")
    gone = account_services.organization_create(owner=tenants.charlie, name="Gone Films")
    gone_id = gone.pk
    gone.delete()
    for task in (tasks.submit, tasks.poll, tasks.download, tasks.reconcile):
        assert task(generation_id=gen.pk, org_id=gone_id) is None
        assert task(generation_id=gen.pk, org_id=tenants.org_b.pk) is None
    gen.refresh_from_db()
    assert (gen.state, gen.poll_count) == ("in_progress", 0)
