"""Fixtures that run the real thing: a Celery worker (with beat) against the provider emulators.

``live_engine`` gives org A (alice's) a validated key for every emulator and a worker pointed at
them. Use it with pytest-django's ``live_server`` to drive MediaRouter over HTTP (the openai SDK,
the browser)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from apps.accounts.models import Membership
from apps.api_keys import services as key_services
from apps.core.scoping import org_scope
from apps.generations.models import Generation


@dataclass
class LiveEngine:
    """A real worker (with beat, so the dispatcher runs) against the three provider emulators."""

    worker: object
    emulators: dict
    keys: dict

    def wait(self, public_id: str, *, timeout: float = 60.0, until=None) -> Generation:
        until = until or (lambda g: g.is_terminal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            gen = Generation.all_orgs.select_related("user").get(public_id=public_id)
            if until(gen):
                return gen
            if self.worker.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{public_id} stuck in {gen.state}; worker log:\n{self.worker.log()[-6000:]}")


@pytest.fixture
def live_engine(tenants, transactional_db, tmp_path, settings, openai_emulator, runway_emulator, kling_emulator):
    from tests.worker import WorkerProcess, broker_mode, purge_queue, wait_until_ready

    emulators = {"sora": openai_emulator, "runway": runway_emulator, "kling": kling_emulator}
    urls = {
        "OPENAI_BASE_URL": openai_emulator.base_url,
        "RUNWAY_BASE_URL": runway_emulator.base_url,
        "KLING_BASE_URL": kling_emulator.base_url,
    }
    for name, value in urls.items():
        setattr(settings, name, value)
    alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    with org_scope(tenants.org_a):
        keys = {
            "sora": key_services.provider_key_create(by=alice, provider="sora", api_key=openai_emulator.api_key),
            "runway": key_services.provider_key_create(by=alice, provider="runway", api_key=runway_emulator.api_key),
            "kling": key_services.provider_key_create(
                by=alice, provider="kling", access_key=kling_emulator.access_key, secret_key=kling_emulator.secret_key
            ),
        }
    for emulator in emulators.values():
        emulator.reset()  # forget the validation calls: tests count generation traffic only
    worker = WorkerProcess(tmp_path / "worker.log", beat=True, env={**urls, "PROVIDER_READ_TIMEOUT": "2"})
    with broker_mode():
        purge_queue()  # messages an earlier test left behind would delay this worker
        worker.start()
        try:
            wait_until_ready(worker)
            yield LiveEngine(worker=worker, emulators=emulators, keys=keys)
        finally:
            worker.stop()
