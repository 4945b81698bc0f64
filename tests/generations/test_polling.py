"""The batched poll step (apps.generations.polling): the claim, the per-supplier limits, the few
statements it writes, and that every status outcome ends exactly as the single-job step ends it."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations import engine, polling, services
from apps.generations.models import Generation, GenerationEvent, State
from apps.generations.services import GenerationRequest
from apps.providers.base import JobState, JobStatus, ProviderError
from apps.providers.sandbox import adapter as sandbox
from tests.generations.helpers import ledger_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_limits():
    polling.LIMITS.reset()
    yield
    polling.LIMITS.reset()


@pytest.fixture
def scheduled(monkeypatch):
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(engine, "schedule", lambda step, g, delay: sent.append((step, g.pk)))
    return sent


def _running(tenants, n: int = 1, *, state=State.QUEUED, progress=0, due=True, **fields) -> list[Generation]:
    """``n`` submitted generations (sandbox, priced by the caller's fixture if any) in ``state``."""
    gens = []
    with org_scope(tenants.org_a):
        for i in range(n):
            gen = services.generation_create(
                org=tenants.org_a,
                user=tenants.bob,
                request=GenerationRequest(model="sandbox-video", prompt=f"job {i}", seconds=2, size="1280x720"),
            )
            gens.append(gen)
    when = timezone.now() - timedelta(seconds=1) if due else timezone.now() + timedelta(hours=1)
    Generation.all_orgs.filter(pk__in=[g.pk for g in gens]).update(
        state=state, provider_job_id="job-x", progress=progress, next_poll_at=when, poll_count=3, **fields
    )
    return [Generation.all_orgs.get(pk=g.pk) for g in gens]


# --- the claim --------------------------------------------------------------------------------------


def test_a_claim_takes_due_polling_jobs_only_and_leases_them(tenants):
    due = _running(tenants, 3)
    later = _running(tenants, 1, due=False)
    downloading = _running(tenants, 1, state=State.DOWNLOADING)
    claimed = polling.claim_due(limit=2)
    assert len(claimed) == 2 and {g.pk for g in claimed} < {g.pk for g in due}
    lease = timezone.now() + timedelta(seconds=60)
    for gen in claimed:
        assert Generation.all_orgs.get(pk=gen.pk).next_poll_at > lease  # no longer due for anyone
    rest = polling.claim_due(limit=10)
    assert [g.pk for g in rest] == [g.pk for g in due if g.pk not in {c.pk for c in claimed}]
    assert polling.claim_due(limit=10) == []
    assert Generation.all_orgs.get(pk=later[0].pk).next_poll_at > timezone.now()
    assert Generation.all_orgs.get(pk=downloading[0].pk).state == State.DOWNLOADING


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_get_the_same_row(tenants):
    """Four threads, each on its own database connection, claim at once (a barrier): every due
    row is claimed exactly once."""
    rows = _running(tenants, 40)
    barrier = threading.Barrier(4)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def claimer() -> None:
        try:
            barrier.wait(timeout=30)
            mine: list[int] = []
            while batch := polling.claim_due(limit=3):
                mine += [g.pk for g in batch]
            results.append(mine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    claimed = [pk for mine in results for pk in mine]
    assert sorted(claimed) == sorted(g.pk for g in rows)  # all of them, none twice


@pytest.mark.django_db(transaction=True)
def test_a_claim_passes_over_rows_another_claimer_holds(tenants):
    """PostgreSQL: rows locked by another transaction are skipped (SKIP LOCKED), not waited for.
    SQLite has one writer: a row another claimer moved between the read and the UPDATE is left
    out by the UPDATE's WHERE."""
    rows = _running(tenants, 4)
    held = {rows[0].pk, rows[1].pk}
    if connection.features.has_select_for_update_skip_locked:
        locked, release = threading.Event(), threading.Event()

        def holder() -> None:
            from django.db import transaction

            try:
                with transaction.atomic():
                    list(Generation.all_orgs.select_for_update().filter(pk__in=held))
                    locked.set()
                    release.wait(timeout=60)
            finally:
                connections.close_all()

        thread = threading.Thread(target=holder)
        thread.start()
        assert locked.wait(timeout=30)
        try:
            claimed = polling.claim_due(limit=10)
        finally:
            release.set()
            thread.join(timeout=60)
    else:
        original = polling._due

        def raced(now):
            qs = original(now)
            if not raced.done:  # after this step's read, another claimer takes two rows
                raced.done = True
                ids = list(qs.values_list("pk", flat=True))
                Generation.all_orgs.filter(pk__in=held).update(next_poll_at=now + timedelta(minutes=5))
                return original(now).filter(pk__in=ids)
            return qs

        raced.done = False
        polling._due = raced
        try:
            claimed = polling.claim_due(limit=10)
        finally:
            polling._due = original
    assert {g.pk for g in claimed} == {rows[2].pk, rows[3].pk}


# --- per-supplier limits -----------------------------------------------------------------------------


def test_the_rate_limit_is_a_token_bucket_per_supplier(settings):
    settings.GENERATION_POLL_SUPPLIER_RATE = 2.0
    settings.SORA_POLL_RATE = 0  # one supplier's own setting (<SLUG>_POLL_RATE): no limit
    clock = [100.0]
    limits = polling.SupplierLimits()
    take = lambda slug: limits.take(slug, clock=lambda: clock[0])  # noqa: E731
    assert [take("sandbox"), take("sandbox")] == [0.0, 0.0]  # a second's worth at once
    assert take("sandbox") == pytest.approx(0.5)  # then one every half second
    assert all(take("sora") == 0.0 for _ in range(50))
    clock[0] += 0.5
    assert take("sandbox") == 0.0 and take("sandbox") > 0


def test_a_job_over_its_suppliers_rate_is_not_asked_but_due_again_later(tenants, settings, monkeypatch):
    settings.GENERATION_POLL_SUPPLIER_RATE = 2.0
    asked = []
    status = JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=5.0)
    monkeypatch.setattr(sandbox.SandboxProvider, "status", lambda self, job_id, **kw: asked.append(job_id) or status)
    gens = _running(tenants, 5)
    before = timezone.now()
    polling.poll_batch(polling.claim_due(limit=10))
    assert len(asked) == 2
    rows = list(Generation.all_orgs.filter(pk__in=[g.pk for g in gens]))
    polled = [r for r in rows if r.poll_count == 4]
    waiting = [r for r in rows if r.poll_count == 3]  # not asked: nothing counted
    assert len(polled) == 2 and len(waiting) == 3
    assert all(r.next_poll_at >= before + timedelta(seconds=engine.poll_delay(3, 5.0)) for r in polled)
    # due again when the supplier has room: within the bucket's wait, not after the lease
    assert all(before < r.next_poll_at < before + timedelta(seconds=30) for r in waiting)


def test_at_most_the_suppliers_concurrency_is_in_flight(tenants, settings, monkeypatch):
    settings.GENERATION_POLL_CONCURRENCY = 16
    settings.SANDBOX_POLL_CONCURRENCY = 2
    lock, state = threading.Lock(), {"now": 0, "peak": 0}
    two_in = threading.Barrier(2)
    status = JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=5.0)

    def slow_status(self, job_id, **kw):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            two_in.wait(timeout=2)  # the first two meet here; a third in flight would be seen
        except threading.BrokenBarrierError:
            pass
        finally:
            with lock:
                state["now"] -= 1
        return status

    monkeypatch.setattr(sandbox.SandboxProvider, "status", slow_status)
    gens = _running(tenants, 8)
    answers, deferred = polling.status_calls(polling.claim_due(limit=10))
    assert deferred == {} and set(answers) == {g.pk for g in gens}
    assert state["peak"] == 2


# --- few statements ------------------------------------------------------------------------------------


def test_still_running_jobs_are_written_in_one_statement(tenants, monkeypatch, scheduled):
    status = JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=5.0)
    monkeypatch.setattr(sandbox.SandboxProvider, "status", lambda self, job_id, **kw: status)
    gens = _running(tenants, 25)
    scheduled.clear()  # the creates' submits
    events = GenerationEvent.all_orgs.count()
    claimed = polling.claim_due(limit=100)
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        polling.poll_batch(claimed)
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(writes) == 1, [w[:80] for w in writes]
    for gen in Generation.all_orgs.filter(pk__in=[g.pk for g in gens]):
        assert (gen.state, gen.poll_count, gen.provider_status) == (State.QUEUED, 4, "queued")
        assert gen.next_poll_at >= before + timedelta(seconds=engine.poll_delay(3, 5.0)) and gen.updated_at >= before
    assert GenerationEvent.all_orgs.count() == events and scheduled == []


def test_a_full_batch_sends_the_next_step_at_once(tenants, monkeypatch):
    status = JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=5.0)
    monkeypatch.setattr(sandbox.SandboxProvider, "status", lambda self, job_id, **kw: status)
    _running(tenants, 5)
    again = []
    assert polling.poll_due(limit=3, window=0, again=lambda: again.append(1)) == 3 and again == [1]
    assert polling.poll_due(limit=3, window=0, again=lambda: again.append(1)) == 2 and again == [1]
    assert polling.poll_due(limit=3, window=0, again=lambda: again.append(1)) == 0


def test_a_step_keeps_taking_jobs_as_they_fall_due_within_its_window(tenants, monkeypatch):
    """A job due 0.4 s into the step is polled by the same step after a wait of about that long
    (not at the next beat tick); one due after the window is left to the next step."""
    status = JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=5.0)
    monkeypatch.setattr(sandbox.SandboxProvider, "status", lambda self, job_id, **kw: status)
    (now_due,) = _running(tenants, 1)
    soon, late = _running(tenants, 2, due=False)
    Generation.all_orgs.filter(pk=soon.pk).update(next_poll_at=timezone.now() + timedelta(seconds=0.4))
    Generation.all_orgs.filter(pk=late.pk).update(next_poll_at=timezone.now() + timedelta(seconds=30))
    clock, waits = [0.0], []

    def sleep(seconds: float) -> None:  # the wait happens: the job falls due, the clock moves on
        waits.append(seconds)
        Generation.all_orgs.filter(pk=soon.pk).update(next_poll_at=timezone.now())
        clock[0] += seconds

    assert polling.poll_due(limit=10, window=1.0, clock=lambda: clock[0], sleep=sleep) == 2
    assert len(waits) == 1 and 0 < waits[0] <= 0.4
    counts = dict(Generation.all_orgs.filter(pk__in=[now_due.pk, soon.pk, late.pk]).values_list("pk", "poll_count"))
    assert counts == {now_due.pk: 4, soon.pk: 4, late.pk: 3}


# --- the same decisions as the single-job step ---------------------------------------------------------

OUTCOMES = {
    "queued": JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=4.0),
    "started": JobStatus(state=JobState.IN_PROGRESS, progress=5, raw_status="running", poll_after=4.0),
    "progress event": JobStatus(state=JobState.IN_PROGRESS, progress=60, raw_status="running"),
    "completed": JobStatus(
        state=JobState.COMPLETED, progress=100, raw_status="succeeded", output_urls=("https://x/v",)
    ),
    "canceled": JobStatus(state=JobState.CANCELED, raw_status="cancelled"),
    "failed": JobStatus(state=JobState.FAILED, raw_status="failed", error_code="moderation", error_message="no"),
    "transient error": ProviderError("503 busy", code="provider_unavailable", status_code=503, retry_after=9),
    "permanent error": ProviderError("job not found", code="not_found", status_code=404, permanent=True),
    "past deadline": JobStatus(state=JobState.QUEUED, progress=0, raw_status="queued", poll_after=4.0),
}


def _outcome_of(gen: Generation, started) -> dict:
    gen.refresh_from_db()
    delay = (gen.next_poll_at - started).total_seconds() if gen.next_poll_at else None
    return {
        "state": gen.state,
        "progress": gen.progress,
        "provider_status": gen.provider_status,
        "poll_count": gen.poll_count,
        "transient_errors": gen.transient_errors,
        "error_code": gen.error_code,
        "output_url": gen.output_url,
        "next poll in": None if delay is None else round(delay),
        "events": list(
            GenerationEvent.all_orgs.filter(generation_id=gen.pk).order_by("pk").values_list("to_state", "message")
        )[1:],  # after the created event
        "ledger": ledger_of(gen),
    }


@pytest.mark.parametrize("outcome", list(OUTCOMES))
def test_the_batch_ends_every_outcome_as_the_single_step_does(tenants, monkeypatch, scheduled, outcome, priced_sandbox):
    answer = OUTCOMES[outcome]

    def status(self, job_id, **kw):
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    monkeypatch.setattr(sandbox.SandboxProvider, "status", status)
    state = State.IN_PROGRESS if outcome == "progress event" else State.QUEUED
    single, batched = _running(tenants, 2, state=state, progress=50 if outcome == "progress event" else 0)
    if outcome == "past deadline":
        an_hour_ago = timezone.now() - timedelta(hours=1)
        Generation.all_orgs.filter(pk__in=[single.pk, batched.pk]).update(
            created_at=an_hour_ago - timedelta(hours=1), deadline_at=an_hour_ago
        )
    started = timezone.now()
    with org_scope(tenants.org_a):
        engine.generation_poll(generation_id=single.pk)
    one = _outcome_of(single, started)
    # the batched step on the other one only (the single one is no longer due, or ended)
    claimed = [g for g in polling.claim_due(limit=10) if g.pk == batched.pk]
    assert len(claimed) == 1
    polling.poll_batch(claimed)
    many = _outcome_of(batched, started)
    assert many == one
    assert scheduled.count(("download", single.pk)) == scheduled.count(("download", batched.pk))
    expected_state = {
        "queued": State.QUEUED,
        "started": State.IN_PROGRESS,
        "progress event": State.IN_PROGRESS,
        "completed": State.DOWNLOADING,
        "canceled": State.CANCELED,
        "failed": State.FAILED,
        "transient error": State.QUEUED,
        "permanent error": State.FAILED,
        "past deadline": State.FAILED,
    }[outcome]
    assert one["state"] == expected_state
    hold = Decimal("1.00")  # 2 s at $0.50
    if expected_state in (State.FAILED, State.CANCELED):  # released, never charged
        assert one["ledger"]["hold"] == [hold] and one["ledger"]["release"] == [-hold]
        assert "charge" not in one["ledger"]
    else:
        assert one["ledger"] == {"hold": [hold]}
    assert not UsageEntry.all_orgs.filter(generation__in=[single, batched], kind="charge").exists()


@pytest.mark.parametrize("endpoint", [False, True], ids=["no endpoint", "an endpoint"])
def test_a_progress_step_makes_the_same_webhook_event_in_a_batch(tenants, monkeypatch, scheduled, endpoint):
    """With a webhook endpoint, a 10 % progress step is a video.in_progress event, from the
    batch as from the single step; without one, the batch writes it in its one UPDATE."""
    from apps.accounts.models import Membership
    from apps.webhooks import services as webhook_services
    from apps.webhooks.models import WebhookEvent

    if endpoint:
        alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
        with org_scope(tenants.org_a):
            webhook_services.endpoint_create(by=alice, url="http://127.0.0.1:9/hooks")
    status = JobStatus(state=JobState.IN_PROGRESS, progress=60, raw_status="running", poll_after=4.0)
    monkeypatch.setattr(sandbox.SandboxProvider, "status", lambda self, job_id, **kw: status)
    single, batched = _running(tenants, 2, state=State.IN_PROGRESS, progress=40)
    with org_scope(tenants.org_a):
        engine.generation_poll(generation_id=single.pk)
    claimed = [g for g in polling.claim_due(limit=10) if g.pk == batched.pk]
    with CaptureQueriesContext(connection) as queries:
        polling.poll_batch(claimed)
    events = {
        g.public_id: list(WebhookEvent.all_orgs.filter(video_id=g.public_id).values_list("type", flat=True))
        for g in (single, batched)
    }
    expected = ["video.in_progress"] if endpoint else []
    assert events == {single.public_id: expected, batched.public_id: expected}
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1
    for gen in (single, batched):
        gen.refresh_from_db()
        assert (gen.progress, gen.poll_count) == (60, 4)


def test_the_poll_step_runs_on_the_poll_queue_within_its_lease(settings):
    """Routed with the polls (a long download never holds it up), with the poll time limit, sent
    by beat; a claimed job's lease outlasts the step's hard time limit, so a job is never polled
    by two steps because one of them ran long."""
    from mediarouter.celery import app

    route = app.amqp.router.route({}, "generations.poll_due")
    assert route["queue"].name == settings.CELERY_QUEUE_NAMES["poll"]
    limits = settings.CELERY_TASK_ANNOTATIONS["generations.poll_due"]
    assert limits == settings.CELERY_TASK_ANNOTATIONS["generations.poll"]
    assert settings.GENERATION_POLL_LEASE_SECONDS > limits["time_limit"]
    assert "generations.poll_due" in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


def test_the_dispatcher_resends_submits_and_downloads_but_no_polls(tenants, monkeypatch):
    """A due polling job is the poll step's, not a message: the dispatcher (the safety net for
    lost step messages) leaves it alone and still re-sends an overdue download."""
    from apps.generations import tasks

    sent = []
    for name, task in tasks.STEPS.items():
        monkeypatch.setattr(task, "apply_async", lambda *a, _name=name, **k: sent.append((_name, k["kwargs"])))
    (polling_job,) = _running(tenants, 1)
    (downloading,) = _running(tenants, 1, state=State.DOWNLOADING)
    assert engine.generation_dispatch_due() == 1
    assert sent == [("download", {"generation_id": downloading.pk, "org_id": tenants.org_a.pk})]
    assert [g.pk for g in polling.claim_due(limit=10)] == [polling_job.pk]
