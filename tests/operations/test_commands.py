"""Housekeeping commands: safe from cron, safe to run twice, and --dry-run changes nothing."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations import services
from apps.generations.models import Generation, State
from tests.generations.helpers import run_steps

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_sandbox(settings):
    settings.SANDBOX_JOB_SECONDS = 0.2


def _gen(tenants, org=None, user=None):
    org = org or tenants.org_a
    with org_scope(org):
        return services.generation_create(
            org=org,
            user=user or tenants.alice,
            request=services.GenerationRequest(model="sandbox-video", prompt="p", seconds=2),
        )


def _call(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_reconcile_resolves_stuck_jobs_and_is_idempotent(tenants):
    stuck = _gen(tenants)  # its submit message was "lost": never sent
    Generation.all_orgs.filter(pk=stuck.pk).update(next_poll_at=timezone.now() - timedelta(minutes=2))
    healthy = _gen(tenants)  # not due yet

    out = _call("reconcile_generations", "--dry-run")
    assert stuck.public_id in out and "would run submit" in out and healthy.public_id not in out
    stuck.refresh_from_db()
    assert stuck.state == State.CREATED  # dry run changed nothing

    out = _call("reconcile_generations")
    assert stuck.public_id in out
    stuck.refresh_from_db()
    assert stuck.state == State.QUEUED and stuck.provider_job_id and stuck.submit_attempts == 1
    out = _call("reconcile_generations")  # twice: nothing left to do, nothing submitted again
    assert stuck.public_id not in out
    stuck.refresh_from_db()
    assert stuck.submit_attempts == 1


def test_reconcile_leaves_polling_jobs_that_are_merely_due(tenants, settings):
    """The batched poll step takes a polling job when it falls due: that is not stuck. Only a job
    later than the lease grace is (a dead poll worker)."""
    settings.GENERATION_LEASE_GRACE_SECONDS = 30
    due, late = _gen(tenants), _gen(tenants)
    now = timezone.now()
    Generation.all_orgs.filter(pk=due.pk).update(state=State.IN_PROGRESS, next_poll_at=now - timedelta(seconds=5))
    Generation.all_orgs.filter(pk=late.pk).update(state=State.IN_PROGRESS, next_poll_at=now - timedelta(seconds=90))
    out = _call("reconcile_generations", "--dry-run")
    assert late.public_id in out and "would run poll" in out
    assert due.public_id not in out


def test_reconcile_fails_jobs_past_their_deadline_without_charge(tenants):
    gen = _gen(tenants)
    Generation.all_orgs.filter(pk=gen.pk).update(
        next_poll_at=timezone.now() - timedelta(minutes=1), deadline_at=timezone.now() - timedelta(seconds=1)
    )
    assert "past its deadline" in _call("reconcile_generations")
    gen.refresh_from_db()
    assert gen.state == State.FAILED and gen.error_code == "timeout"
    assert not UsageEntry.all_orgs.filter(generation=gen, kind="charge").exists()


def test_purge_media_honours_retention_and_keeps_the_ledger(tenants):
    old_a, new_a = run_steps(_gen(tenants)), run_steps(_gen(tenants))
    old_b = run_steps(_gen(tenants, org=tenants.org_b, user=tenants.charlie))
    long_ago = timezone.now() - timedelta(days=40)
    Generation.all_orgs.filter(pk__in=[old_a.pk, old_b.pk]).update(created_at=long_ago)
    tenants.org_b.retention_days = 90  # org B keeps videos for 90 days, whatever --older-than says
    tenants.org_b.save()

    out = _call("purge_media", "--older-than", "30", "--dry-run")
    assert old_a.public_id in out and old_b.public_id not in out and new_a.public_id not in out
    assert default_storage.exists(old_a.video_file)

    out = _call("purge_media", "--older-than", "30")
    assert "deleted the files of 1 generation" in out
    old_a_after = Generation.all_orgs.get(pk=old_a.pk)
    assert old_a_after.video_file == "" and not default_storage.exists(old_a.video_file)
    assert old_a_after.state == State.COMPLETED and old_a_after.sha256 == old_a.sha256  # metadata kept
    assert UsageEntry.all_orgs.filter(generation=old_a, kind="charge").exists()  # ledger kept
    assert default_storage.exists(new_a.video_file) and default_storage.exists(old_b.video_file)

    assert "deleted the files of 0 generation" in _call("purge_media", "--older-than", "30")  # twice: no-op


def test_purge_media_without_older_than_only_touches_orgs_with_retention(tenants):
    gen = run_steps(_gen(tenants))
    Generation.all_orgs.filter(pk=gen.pk).update(created_at=timezone.now() - timedelta(days=400))
    assert "0 generation" in _call("purge_media")
    tenants.org_a.retention_days = 365
    tenants.org_a.save()
    assert "1 generation" in _call("purge_media")
