"""Fixtures that run the real thing: a Celery worker (with beat) against the provider emulators.

``live_engine`` gives org A (alice's) a validated key for every emulator and a worker pointed at
them. Use it with pytest-django's ``live_server`` to drive MediaRouter over HTTP (the openai SDK,
the browser)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from apps.accounts.models import Membership
from apps.api_keys import services as key_services
from apps.core.scoping import org_scope
from apps.generations.models import Generation


@dataclass
class LiveEngine:
    """A real worker (with beat, so the dispatcher runs) against every provider's emulator."""

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


def start_emulators(stack: ExitStack) -> dict:
    """Every keyed provider's emulator (the registry's slugs with ``tests/emulators/<slug>.py``),
    started on a free port for one test."""
    from apps.providers import registry
    from tests.emulators import emulator_class

    emulators = {}
    for slug in registry.PROVIDERS:
        cls = emulator_class(slug)
        if cls is not None:
            emulators[slug] = stack.enter_context(cls(job_seconds=1.0))
    return emulators


@pytest.fixture
def live_worker_env() -> dict:
    """Extra environment for the ``live_engine`` worker (a module overrides this fixture to give
    the worker a setting, e.g. ``C2PA_TRUST_ANCHORS``)."""
    return {}


@pytest.fixture
def live_engine(tenants, transactional_db, tmp_path, settings, live_worker_env):
    from tests.worker import WorkerProcess, broker_mode, purge_queue, wait_until_ready

    with ExitStack() as stack:
        emulators = start_emulators(stack)
        urls: dict[str, str] = {}
        for emulator in emulators.values():
            urls.update(emulator.settings())
        for name, value in urls.items():
            setattr(settings, name, value)
        alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
        with org_scope(tenants.org_a):
            keys = {
                slug: key_services.provider_key_create(by=alice, provider=slug, **emulator.key_fields())
                for slug, emulator in emulators.items()
            }
        for emulator in emulators.values():
            emulator.reset()  # forget the validation calls: tests count generation traffic only
        env = {**urls, "PROVIDER_READ_TIMEOUT": "2", **live_worker_env}
        worker = WorkerProcess(tmp_path / "worker.log", beat=True, env=env)
        with broker_mode():
            purge_queue()  # messages an earlier test left behind would delay this worker
            worker.start()
            try:
                wait_until_ready(worker)
                yield LiveEngine(worker=worker, emulators=emulators, keys=keys)
            finally:
                worker.stop()
