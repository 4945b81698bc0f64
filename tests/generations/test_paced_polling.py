"""Polls paced by the job's own figures (engine.paced_delay): a running job that reports progress is
asked again at half the time its progress says it has left, a queued one at half the time it has
waited; never sooner than the hint, never later than GENERATION_POLL_PACED_MAX_SECONDS (the backoff
without a hint keeps GENERATION_POLL_MAX_SECONDS)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.scoping import org_scope
from apps.generations import engine, polling, services
from apps.generations.models import Generation, State
from apps.generations.services import GenerationRequest
from apps.providers.base import JobState, JobStatus
from apps.providers.sandbox import adapter as sandbox

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def paced(settings):
    settings.GENERATION_POLL_PACED = True
    settings.GENERATION_POLL_MAX_SECONDS = 30.0
    settings.GENERATION_POLL_PACED_MAX_SECONDS = 60.0


def _gen(**fields) -> Generation:
    return Generation(**{"state": State.IN_PROGRESS, "poll_count": 3, **fields})


def _running(progress: int | None, *, hint: float = 5.0) -> JobStatus:
    return JobStatus(state=JobState.IN_PROGRESS, progress=progress, raw_status="in_progress", poll_after=hint)


def _ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def test_a_running_job_is_asked_at_half_the_time_its_progress_leaves():
    # 40 s after it was seen running it is at 25 %: 120 s left at that rate, asked in 60 s
    result = engine.decide_poll(_gen(running_since=_ago(40)), _running(25))
    assert result.kind == engine.RUNNING and result.delay == pytest.approx(60, abs=0.5)
    # at 80 %: 10 s left, asked in 5 s
    assert engine.decide_poll(_gen(running_since=_ago(40)), _running(80)).delay == pytest.approx(5, abs=0.2)


def test_near_the_end_the_job_is_asked_at_the_hint_and_never_later_than_the_maximum(settings):
    assert engine.decide_poll(_gen(running_since=_ago(100)), _running(97)).delay == 5.0  # 1.5 s left / 2 < hint
    assert engine.decide_poll(_gen(running_since=_ago(100)), _running(97, hint=8)).delay == 8.0
    # 1 % after 100 s: 9,900 s left by that rate, but never later than the maximum
    assert engine.decide_poll(_gen(running_since=_ago(100)), _running(1)).delay == 60.0
    settings.GENERATION_POLL_PACED_MAX_SECONDS = 20.0
    assert engine.decide_poll(_gen(running_since=_ago(100)), _running(1)).delay == 20.0


def test_the_paced_maximum_is_its_own_and_the_backoff_without_a_hint_keeps_the_poll_maximum(settings):
    # a paced poll may wait past GENERATION_POLL_MAX_SECONDS (30 here), up to the paced maximum
    assert engine.decide_poll(_gen(running_since=_ago(100)), _running(50)).delay == pytest.approx(50, abs=0.5)
    # without a hint the 1.5x backoff still stops at GENERATION_POLL_MAX_SECONDS, whatever pacing allows
    no_hint = JobStatus(state=JobState.IN_PROGRESS, progress=None, raw_status="in_progress")
    assert engine.decide_poll(_gen(poll_count=40, running_since=_ago(100)), no_hint).delay == 30.0
    # a hint at or above the paced maximum is taken as it is
    settings.GENERATION_POLL_PACED_MAX_SECONDS = 10.0
    assert engine.decide_poll(_gen(running_since=_ago(100)), _running(50, hint=12)).delay == 12.0


@pytest.mark.parametrize("progress", [None, 0, 100])
def test_without_a_usable_progress_the_job_is_asked_at_the_hint(progress):
    assert engine.decide_poll(_gen(running_since=_ago(100)), _running(progress)).delay == 5.0


def test_a_job_not_yet_seen_running_is_asked_at_the_hint():
    assert engine.decide_poll(_gen(running_since=None), _running(50)).delay == 5.0


def test_a_queued_job_is_asked_at_half_the_time_it_has_waited():
    queued = JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=5.0)
    assert engine.decide_poll(_gen(state=State.QUEUED, submitted_at=_ago(4)), queued).delay == 5.0
    waited_30 = _gen(state=State.QUEUED, submitted_at=_ago(30))
    assert engine.decide_poll(waited_30, queued).delay == pytest.approx(15, abs=0.2)
    assert engine.decide_poll(_gen(state=State.QUEUED, submitted_at=_ago(600)), queued).delay == 60.0


def test_pacing_off_asks_every_time_at_the_hint(settings):
    settings.GENERATION_POLL_PACED = False
    assert engine.decide_poll(_gen(running_since=_ago(40)), _running(25)).delay == 5.0
    queued = JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=5.0)
    assert engine.decide_poll(_gen(state=State.QUEUED, submitted_at=_ago(30)), queued).delay == 5.0


def test_a_callback_jobs_safety_net_is_not_shortened(settings):
    settings.PROVIDER_CALLBACK_POLL_SECONDS = 90.0
    gen = _gen(running_since=_ago(40), callback_digest="d" * 64)
    assert engine.decide_poll(gen, _running(80)).delay == 90.0


def _submitted(tenants) -> Generation:
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=GenerationRequest(model="sandbox-video", prompt="paced", seconds=2, size="1280x720"),
        )
    Generation.all_orgs.filter(pk=gen.pk).update(
        state=State.QUEUED, provider_job_id="job-x", submitted_at=_ago(2), next_poll_at=_ago(1)
    )
    return Generation.all_orgs.get(pk=gen.pk)


def test_the_poll_step_starts_the_clock_when_it_first_sees_the_job_running(tenants, monkeypatch):
    answers = iter([_running(10), _running(50)])
    monkeypatch.setattr(sandbox.SandboxProvider, "status", lambda self, job_id, job_data=None: next(answers))
    gen = _submitted(tenants)
    assert gen.running_since is None

    polling.poll_batch(polling.claim_due(limit=10))  # queued -> in_progress: the clock starts
    gen.refresh_from_db()
    assert gen.state == State.IN_PROGRESS and gen.running_since is not None
    started = gen.running_since
    assert abs((gen.next_poll_at - timezone.now()).total_seconds() - 5.0) < 2  # first seen: at the hint

    # 30 s later (the clock moved back by 30 s) at 50 %: 30 s left, asked in 15 s; the clock stays
    Generation.all_orgs.filter(pk=gen.pk).update(running_since=started - timedelta(seconds=30), next_poll_at=_ago(1))
    polling.poll_batch(polling.claim_due(limit=10))  # the quiet, batched write
    gen.refresh_from_db()
    assert gen.running_since == started - timedelta(seconds=30)
    assert abs((gen.next_poll_at - timezone.now()).total_seconds() - 15.0) < 2
