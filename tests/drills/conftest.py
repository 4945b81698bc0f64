"""Fault drills: a real Celery worker (with beat) against the OpenAI emulator, on this leg's real
broker and database, with things breaking underneath it. Each drill ends by checking the same
invariants (``Drill.assert_all_accounted_for``): every generation ended completed or failed, the
provider saw exactly one job per generation that has a job id (none lost, none duplicated), each
stored video is whole, and every hold is settled or released."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import pytest
from django.core.files.storage import default_storage

from apps.accounts.models import Membership
from apps.api_keys import services as key_services
from apps.core.scoping import org_scope
from apps.generations.models import Generation, State
from tests.generations.helpers import assert_ledger_balanced

# Short leases so the dispatcher (beat, every second in the test settings) rescues a killed
# worker's steps, and the poll step re-takes the jobs a killed step had claimed, within seconds;
# a read timeout of 2 s so "very slow" provider answers time out.
DRILL_ENV = {
    "PROVIDER_READ_TIMEOUT": "2",
    "GENERATION_SUBMIT_LEASE_SECONDS": "4",
    "GENERATION_DOWNLOAD_LEASE_SECONDS": "6",
    "GENERATION_POLL_LEASE_SECONDS": "6",
}


@dataclass
class Drill:
    tenants: object
    worker: object
    emulator: object
    ids: list[str] = field(default_factory=list)

    def create(self, n: int, **body) -> list[str]:
        client = self.tenants.api_client_for(self.tenants.alice_token)
        payload = {"model": "sora-2", "prompt": "fault drill", "duration": 4, "size": "1280x720", **body}
        created = []
        for _ in range(n):
            r = client.post("/v1/video/generations", payload, content_type="application/json")
            assert r.status_code == 201, r.content
            created.append(r.json()["id"])
        self.ids += created
        return created

    def generations(self) -> list[Generation]:
        return list(Generation.all_orgs.filter(public_id__in=self.ids))

    def wait_for(self, predicate, *, timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.generations()):
                return
            time.sleep(0.1)
        states = [(g.public_id, g.state) for g in self.generations()]
        raise AssertionError(f"timed out waiting for {what}: {states}\n{self.worker.log()[-4000:]}")

    def wait_all(self, *, timeout: float = 90.0) -> list[Generation]:
        self.wait_for(lambda gens: all(g.is_terminal for g in gens), timeout=timeout, what="every job to end")
        return self.generations()

    def restart_worker(self) -> None:
        from tests.worker import wait_until_ready

        self.worker.kill()
        self.worker.start()
        wait_until_ready(self.worker)

    def assert_all_accounted_for(self, *, allow_failed: bool = True) -> list[Generation]:
        gens = self.wait_all()
        assert len(gens) == len(self.ids)
        for gen in gens:
            assert gen.state in (State.COMPLETED, State.FAILED), (gen.public_id, gen.state, gen.error_message)
            if not allow_failed:
                assert gen.state == State.COMPLETED, (gen.public_id, gen.error_code, gen.error_message)
            assert_ledger_balanced(gen)
            if gen.state == State.COMPLETED:
                with default_storage.open(gen.video_file, "rb") as fh:
                    digest, size = hashlib.sha256(), 0
                    for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                        digest.update(chunk)
                        size += len(chunk)
                assert size == gen.bytes and digest.hexdigest() == gen.sha256, gen.public_id
        job_ids = [g.provider_job_id for g in gens if g.provider_job_id]
        assert len(set(job_ids)) == len(job_ids), "two generations share a provider job"
        assert self.emulator.stats()["jobs_created"] == len(job_ids), (self.emulator.stats(), len(job_ids))
        return gens


@pytest.fixture
def drill_env() -> dict[str, str]:
    """Extra environment for the drill's worker; a drill module overrides it (the Redis drill points
    the worker at a Redis server of its own)."""
    return {}


@pytest.fixture
def drill(tenants, transactional_db, tmp_path, settings, openai_emulator, drill_env):
    from tests.worker import WorkerProcess, broker_mode, purge_queue, wait_until_ready

    settings.OPENAI_BASE_URL = openai_emulator.base_url
    alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    with org_scope(tenants.org_a):
        key_services.provider_key_create(by=alice, provider="sora", api_key=openai_emulator.api_key)
    openai_emulator.reset()  # count generation traffic only
    worker = WorkerProcess(
        tmp_path / "worker.log",
        beat=True,
        env={"OPENAI_BASE_URL": openai_emulator.base_url, **DRILL_ENV, **drill_env},
    )
    with broker_mode():
        purge_queue()  # messages an earlier test left behind would delay this worker
        worker.start()
        try:
            wait_until_ready(worker)
            yield Drill(tenants=tenants, worker=worker, emulator=openai_emulator)
        finally:
            worker.discard()  # SIGKILL: a warm shutdown takes seconds for nothing
