"""The job's life, step by step, in-process with the sandbox provider (no network, no worker).
The same steps run in a real worker in test_worker_flow.py."""

import hashlib
import threading

import av
import pytest
from django.core.files.storage import default_storage

from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations import engine, services
from apps.generations.models import Generation, GenerationEvent, State
from apps.generations.services import GenerationRequest
from apps.providers.base import JobState, JobStatus, ProviderError
from apps.providers.sandbox import adapter as sandbox
from tests.generations.helpers import assert_ledger_balanced, ledger_of, run_steps

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_sandbox(settings):
    settings.SANDBOX_JOB_SECONDS = 0.3


def _create(tenants, prompt="a lighthouse at dusk", **kw):
    with org_scope(tenants.org_a):
        return services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=GenerationRequest(model="sandbox-video", prompt=prompt, seconds=2, size="1280x720"),
            **kw,
        )


def test_it_runs_to_a_stored_playable_video_and_charges_the_member(tenants):
    gen = run_steps(_create(tenants))
    assert gen.state == State.COMPLETED and gen.progress == 100
    assert gen.video_file == f"orgs/{tenants.org_a.slug}/videos/{gen.public_id}.mp4"
    with default_storage.open(gen.video_file, "rb") as fh:
        data = fh.read()
    assert gen.bytes == len(data) and gen.sha256 == hashlib.sha256(data).hexdigest()
    with av.open(default_storage.path(gen.video_file)) as container:
        assert container.streams.video and container.streams.audio
    assert gen.thumbnail_file and default_storage.exists(gen.thumbnail_file)
    assert_ledger_balanced(gen)
    assert UsageEntry.all_orgs.get(generation=gen, kind="charge").user == tenants.bob
    states = list(GenerationEvent.all_orgs.filter(generation=gen).values_list("to_state", flat=True))
    assert states[0] == "created" and states[-1] == "completed" and "downloading" in states


def test_a_failed_job_costs_nothing_and_says_why(tenants):
    gen = run_steps(_create(tenants, prompt="please [fail] now"))
    assert gen.state == State.FAILED and gen.error_message
    assert not gen.video_file
    assert_ledger_balanced(gen)


def test_a_retried_submit_never_submits_twice(tenants, monkeypatch):
    calls = []
    original = sandbox.SandboxProvider.submit

    def counting_submit(self, spec):
        calls.append(spec.client_reference)
        return original(self, spec)

    monkeypatch.setattr(sandbox.SandboxProvider, "submit", counting_submit)
    gen = _create(tenants)
    with org_scope(tenants.org_a):
        engine.generation_submit(generation_id=gen.pk)
        engine.generation_submit(generation_id=gen.pk)  # a redelivered message
        Generation.objects.filter(pk=gen.pk).update(state=State.CREATED)  # even a row that looks new
        engine.generation_submit(generation_id=gen.pk)
    assert calls == [gen.public_id]
    gen.refresh_from_db()
    assert gen.state == State.QUEUED and gen.provider_job_id


def test_transient_submit_error_retries_later_and_permanent_fails(tenants, monkeypatch):
    attempts = []

    def flaky(self, spec):
        attempts.append(1)
        if len(attempts) == 1:
            raise ProviderError("upstream 503", code="server_error", retry_after=0)
        raise ProviderError("prompt rejected by moderation", code="moderation_blocked", permanent=True)

    monkeypatch.setattr(sandbox.SandboxProvider, "submit", flaky)
    gen = _create(tenants)
    with org_scope(tenants.org_a):
        engine.generation_submit(generation_id=gen.pk)
        gen.refresh_from_db()
        assert gen.state == State.CREATED and gen.transient_errors == 1 and gen.next_poll_at
        engine.generation_submit(generation_id=gen.pk)
    gen.refresh_from_db()
    assert gen.state == State.FAILED and "moderation" in gen.error_message
    assert_ledger_balanced(gen)


def test_an_uncertain_submit_is_not_repeated_where_the_provider_cannot_look_it_up(tenants, monkeypatch):
    def timeout(self, spec):
        raise ProviderError("read timeout", code="timeout", uncertain=True)

    monkeypatch.setattr(sandbox.SandboxProvider, "submit", timeout)
    gen = _create(tenants)
    with org_scope(tenants.org_a):
        engine.generation_submit(generation_id=gen.pk)
        gen.refresh_from_db()
        assert gen.state == State.SUBMITTING and gen.submit_uncertain
        engine.generation_reconcile_submit(generation_id=gen.pk)
    gen.refresh_from_db()
    assert gen.state == State.FAILED and gen.error_code == "submit_uncertain"
    assert_ledger_balanced(gen)


def test_poll_errors_back_off_and_the_deadline_ends_the_job(tenants, monkeypatch):
    gen = _create(tenants)
    with org_scope(tenants.org_a):
        engine.generation_submit(generation_id=gen.pk)

        def down(self, job_id, **kwargs):
            raise ProviderError("429 slow down", code="rate_limited", retry_after=7)

        monkeypatch.setattr(sandbox.SandboxProvider, "status", down)
        from django.utils import timezone

        before = timezone.now()
        engine.generation_poll(generation_id=gen.pk)
        gen.refresh_from_db()
        assert gen.state == State.QUEUED and gen.transient_errors == 1
        # Retry-After honoured: the job is not due for the poll step before then
        assert (gen.next_poll_at - before).total_seconds() >= 7
        Generation.objects.filter(pk=gen.pk).update(deadline_at=timezone.now())
        engine.generation_poll(generation_id=gen.pk)
    gen.refresh_from_db()
    assert gen.state == State.FAILED and gen.error_code == "timeout"
    assert_ledger_balanced(gen)


@pytest.mark.django_db(transaction=True)
def test_two_workers_polling_one_generation_only_one_acts(tenants, monkeypatch):
    """Both workers see the provider say 'completed' at the same moment; the conditional UPDATE
    lets exactly one move the row on and schedule the download."""
    scheduled = []
    monkeypatch.setattr(engine, "schedule", lambda step, g, delay: scheduled.append(step))
    gen = _create(tenants)
    with org_scope(tenants.org_a):
        engine.generation_submit(generation_id=gen.pk)
    scheduled.clear()
    barrier = threading.Barrier(2)

    def completed(self, job_id, **kwargs):
        barrier.wait(timeout=5)
        return JobStatus(state=JobState.COMPLETED, progress=100, raw_status="completed")

    monkeypatch.setattr(sandbox.SandboxProvider, "status", completed)
    errors = []

    def worker():
        try:
            with org_scope(tenants.org_a):
                engine.generation_poll(generation_id=gen.pk)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert scheduled == ["download"]
    assert GenerationEvent.all_orgs.filter(generation=gen, to_state="downloading").count() == 1


def test_a_download_is_idempotent_and_charges_once(tenants):
    gen = _create(tenants)
    gen = run_steps(gen)
    with org_scope(tenants.org_a):
        # a late duplicate download message after completion does nothing
        Generation.objects.filter(pk=gen.pk).update(state=State.DOWNLOADING)
        engine.generation_download(generation_id=gen.pk)
    gen.refresh_from_db()
    assert gen.state == State.COMPLETED
    assert ledger_of(gen).get("charge") == [gen.final_cost]
    stored = default_storage.listdir(f"orgs/{tenants.org_a.slug}/videos")[1]
    assert [name for name in stored if name.startswith(gen.public_id)] == [f"{gen.public_id}.mp4"]


def test_a_broken_download_is_retried_then_succeeds(tenants, monkeypatch):
    gen = _create(tenants)
    with org_scope(tenants.org_a):
        engine.generation_submit(generation_id=gen.pk)
    original = sandbox.SandboxProvider.download
    broke = []

    def broken_once(self, job_id, *, url=None, variant="video", job_data=None):
        download = original(self, job_id, url=url, variant=variant, job_data=job_data)
        if variant == "video" and not broke:
            broke.append(1)

            def chunks():
                yield next(iter(download.chunks))
                raise ProviderError("connection reset mid-stream", code="download_interrupted")

            return type(download)(chunks=chunks(), content_type=download.content_type)
        return download

    monkeypatch.setattr(sandbox.SandboxProvider, "download", broken_once)
    gen = run_steps(gen)
    assert broke and gen.state == State.COMPLETED and gen.download_attempts == 2
    with default_storage.open(gen.video_file, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == gen.sha256
    assert_ledger_balanced(gen)


def test_dispatcher_resends_lost_steps_once(tenants, monkeypatch):
    from django.utils import timezone

    from apps.generations import tasks

    gen = _create(tenants)
    sent = []
    monkeypatch.setattr(tasks.submit, "apply_async", lambda kwargs, **kw: sent.append(("submit", kwargs)))
    Generation.all_orgs.filter(pk=gen.pk).update(next_poll_at=timezone.now())
    assert engine.generation_dispatch_due() == 1
    assert engine.generation_dispatch_due() == 0  # claimed: not sent twice
    assert sent == [("submit", {"generation_id": gen.pk, "org_id": tenants.org_a.pk})]


def test_cancel_before_submit_releases_the_hold(tenants):
    from apps.accounts.models import Membership

    gen = _create(tenants)
    with org_scope(tenants.org_a):
        services.generation_cancel(by=Membership.objects.get(user=tenants.bob), generation=gen)
    gen.refresh_from_db()
    assert gen.state == State.CANCELED
    assert_ledger_balanced(gen)


def test_delete_removes_files_and_keeps_the_ledger(tenants):
    from apps.accounts.models import Membership

    gen = run_steps(_create(tenants))
    path = gen.video_file
    with org_scope(tenants.org_a):
        services.generation_delete(by=Membership.objects.get(user=tenants.alice), generation=gen)
    gen.refresh_from_db()
    assert gen.deleted_at and not gen.video_file and not default_storage.exists(path)
    assert ledger_of(gen).get("charge") == [gen.final_cost]
