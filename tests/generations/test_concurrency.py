"""Concurrency (issue 18, item 20), on the priced sandbox ($0.50 a second, 2 s = $1.00) and on
both legs (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE on the organization row):

- the same ``Idempotency-Key`` sent by parallel requests makes one generation and one hold, on
  both API shapes;
- parallel creates against a member's monthly limit: exactly as many as fit;
- a download still running when its lease expires, re-sent by the dispatcher: one stored file,
  one charge.
"""

from __future__ import annotations

import hashlib
import threading
import time
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.db import connection

from apps.accounts.models import Membership
from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations import engine, services, tasks
from apps.generations.models import Generation, State
from apps.providers.base import Download
from apps.providers.sandbox.adapter import SandboxProvider
from tests.generations.helpers import ledger_of

pytestmark = pytest.mark.django_db(transaction=True)

PRICE = Decimal("1.00")


@pytest.fixture
def no_worker(monkeypatch):
    monkeypatch.setattr(engine, "schedule", lambda *a, **k: None)  # the steps are run by the test


def _parallel(n: int, call) -> list:
    """Run ``call(i)`` in ``n`` threads released together; their results (or exceptions), in order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = call(i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted on by the caller
            results[i] = exc
        finally:
            connection.close()  # this thread's own connection: none is left open

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


SHAPES = {
    "native": ("/v1/video/generations", {"model": "sandbox-video", "prompt": "only once", "duration": 2}),
    "openai": ("/v1/videos", {"model": "sandbox-video", "prompt": "only once", "seconds": "2"}),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_same_idempotency_key_in_parallel_makes_one_generation_and_one_hold(
    tenants, priced_sandbox, no_worker, shape
):
    url, body = SHAPES[shape]

    def send(i: int):
        client = tenants.api_client_for(tenants.alice_token)
        r = client.post(url, body, content_type="application/json", headers={"Idempotency-Key": "same-key-1"})
        return r.status_code, r.json()

    results = _parallel(8, send)
    assert all(isinstance(r, tuple) for r in results), results
    assert {status for status, _ in results} <= {200, 201}, results
    ids = {data["id"] for _, data in results}
    assert len(ids) == 1, ids
    gens = Generation.all_orgs.filter(organization=tenants.org_a)
    assert [g.public_id for g in gens] == list(ids)
    assert ledger_of(gens[0]) == {"hold": [PRICE]}  # one hold, of the price, for the one video


def test_parallel_creates_against_a_member_limit_fit_exactly(tenants, priced_sandbox, no_worker):
    with org_scope(tenants.org_a):
        Membership.objects.filter(user=tenants.bob).update(monthly_limit=Decimal("2.00"))  # two videos

    def send(i: int):
        client = tenants.api_client_for(tenants.bob_token)
        body = {"model": "sandbox-video", "prompt": f"bob's video {i}", "duration": 2}
        r = client.post("/v1/video/generations", body, content_type="application/json")
        return r.status_code, r.json()

    results = _parallel(6, send)
    assert all(isinstance(r, tuple) for r in results), results
    statuses = sorted(status for status, _ in results)
    assert statuses == [201, 201, 402, 402, 402, 402], results
    refused = [data for status, data in results if status == 402]
    assert all(d["error"]["code"] == "member_limit_exceeded" for d in refused), refused
    holds = UsageEntry.all_orgs.filter(organization=tenants.org_a, user=tenants.bob, kind="hold")
    assert sorted(e.amount for e in holds) == [PRICE, PRICE]
    assert Generation.all_orgs.filter(organization=tenants.org_a, user=tenants.bob).count() == 2


def test_a_download_outliving_its_lease_is_re_sent_and_stored_once(tenants, priced_sandbox, no_worker, settings):
    """The first download stalls after its first chunk (a provider that stops sending) until its
    lease has passed; the dispatcher re-sends the step, which downloads and completes the video.
    Then the stalled download wakes up and finishes too: still one stored file and one charge."""
    settings.GENERATION_DOWNLOAD_LEASE_SECONDS = 0.5
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.alice,
            request=services.GenerationRequest(model="sandbox-video", prompt="slow to fetch", seconds=2),
        )
        engine.generation_submit(generation_id=gen.pk)
        deadline = time.monotonic() + 20
        while gen.state != State.DOWNLOADING and time.monotonic() < deadline:
            time.sleep(0.1)
            engine.generation_poll(generation_id=gen.pk)
            gen.refresh_from_db()
    assert gen.state == State.DOWNLOADING

    original = SandboxProvider.download
    stalled, wake = threading.Event(), threading.Event()
    downloads: list[str] = []

    def stalling(self, job_id, **kwargs):
        download = original(self, job_id, **kwargs)
        if kwargs.get("variant", "video") != "video":
            return download
        downloads.append("stalled" if not downloads else "resent")
        if downloads[-1] == "resent":
            return download

        def chunks():
            it = iter(download.chunks)
            yield next(it)
            stalled.set()
            assert wake.wait(timeout=30)
            yield from it

        return Download(chunks=chunks(), content_type=download.content_type)

    SandboxProvider.download = stalling
    sent: list[dict] = []
    original_apply = tasks.STEPS["download"].apply_async
    tasks.STEPS["download"].apply_async = lambda *a, kwargs=None, **k: sent.append(kwargs)
    try:

        def first_download():
            try:
                with org_scope(tenants.org_a):
                    engine.generation_download(generation_id=gen.pk)
            finally:
                connection.close()  # this thread's own connection: none is left open

        first = threading.Thread(target=first_download)
        first.start()
        assert stalled.wait(timeout=20)
        time.sleep(0.7)  # the lease (0.5 s) has passed with no byte written
        assert engine.generation_dispatch_due() == 1
        assert sent == [{"generation_id": gen.pk, "org_id": tenants.org_a.pk}]
        with org_scope(tenants.org_a):
            engine.generation_download(generation_id=gen.pk)  # the re-sent step
            gen.refresh_from_db()
        assert gen.state == State.COMPLETED and gen.download_attempts == 2
        wake.set()
        first.join(timeout=30)
        assert not first.is_alive()
    finally:
        wake.set()
        SandboxProvider.download = original
        tasks.STEPS["download"].apply_async = original_apply

    assert downloads == ["stalled", "resent"]
    gen.refresh_from_db()
    assert gen.state == State.COMPLETED and gen.final_cost == PRICE
    assert ledger_of(gen) == {"hold": [PRICE], "release": [-PRICE], "charge": [PRICE]}
    folder, _ = gen.video_file.rsplit("/", 1)
    assert [n for n in default_storage.listdir(folder)[1] if n.startswith(gen.public_id)] == [f"{gen.public_id}.mp4"]
    with default_storage.open(gen.video_file, "rb") as fh:
        data = fh.read()
    assert len(data) == gen.bytes and hashlib.sha256(data).hexdigest() == gen.sha256
