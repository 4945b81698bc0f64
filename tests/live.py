"""Fixtures that run the real thing: a Celery worker (with beat) against the provider emulators.

``live_engine`` gives org A (alice's) a validated key for every emulator and a worker pointed at
them. Use it with pytest-django's ``live_server`` to drive MediaRouter over HTTP (the openai SDK,
the browser)::

    def test_something_end_to_end(tenants, live_engine):
        fal = live_engine.emulators["fal"]          # the emulator, fresh for this test
        fal.add_fault("submit", status=503)          # faults, clock, stats: as on any emulator
        ...create a generation over the API...
        gen = live_engine.wait(public_id)            # until terminal (or ``until=``)
        assert live_engine.keys["fal"].status == KeyStatus.VALID
        assert "generations.submit" in live_engine.worker.log()   # this test's part of the log

What is shared, and why a test still starts from nothing (the worker costs seconds to start and
to stop; a live test was paying both, plus ten emulators, every time):

- The emulators run for the whole session, on ports fixed for it (the worker's environment points
  at them). Before each test every emulator is reset and every attribute a test may have changed
  (``job_seconds``, switches, signing keys...) is put back as it was when it started
  (``EmulatorState``), so each test sees a fresh emulator: no job, call, fault or setting of an
  earlier test.
- The worker is shared by consecutive ``live_engine`` tests with the same worker environment
  (``live_engine_env`` plus this process's environment), with beat beside it. Between two tests
  its pool processes are replaced by fresh ones forked from its main process
  (``tests.worker.restart_pool``), so nothing an earlier test left in a worker's memory (a
  provider's model list, a token, a price) is seen by the next, and its queues are purged. Rows
  are per test as before (``transactional_db`` flushes them): keys are made for each test. A
  worker that a test killed (and did not restart) is replaced.
- The worker and beat are stopped as soon as the next test does not use ``live_engine``: no other test ever
  runs beside it (tests that count queued messages, or run a worker of their own).
  ``pytest_collection_modifyitems`` below runs the ``live_engine`` tests last, grouped by their
  ``live_engine_env``, keeping the order they had among themselves (pytest-randomly's), so a
  whole run starts the worker a handful of times.

A test that needs other settings in the worker overrides ``live_engine_env`` (a dict of
environment variables: see tests/generations/test_callbacks.py); one that breaks the worker beyond
what a restart mends (the drills) starts its own (tests/drills/conftest.py)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from apps.accounts.models import Membership
from apps.api_keys import services as key_services
from apps.core.scoping import org_scope
from apps.generations.models import Generation

LIVE_FIXTURE = "live_engine"
# the environment of this process that changes from test to test and means nothing to a worker
_VOLATILE_ENV = frozenset({"PYTEST_CURRENT_TEST"})


@dataclass
class LiveEngine:
    """A real worker (and beat, so the dispatcher runs) against every provider's emulator."""

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
            time.sleep(0.1)
        raise AssertionError(f"{public_id} stuck in {gen.state}; worker log:\n{self.worker.log()[-6000:]}")


class WorkerView:
    """The shared worker as one test sees it: everything is the worker's (``proc``, ``kill()``,
    ``start()``...) but ``log()``, which holds only what it wrote since this test began."""

    def __init__(self, worker, log_offset: int) -> None:
        self._worker = worker
        self._log_offset = log_offset

    def __getattr__(self, name: str):
        return getattr(self._worker, name)

    def log(self) -> str:
        path = self._worker.log_path
        if not path.exists():
            return ""
        with open(path, "rb") as fh:
            fh.seek(self._log_offset)
            return fh.read().decode(errors="replace")


# --- emulators: started once, fresh for every test --------------------------------------------

_SCALARS = (type(None), bool, int, float, complex, str, bytes)


class EmulatorState:
    """An emulator as it was right after it started, put back before each test: every number,
    string and switch (``job_seconds``, ``max_concurrency``, ``honour_cancel``...) to its value,
    every other attribute a test replaced (a list, a signing key) to the object it was, no
    attribute a test added; then the emulator's own ``reset()``, which forgets its jobs, calls,
    faults and what else it keeps (each emulator's contract: Vertex keeps the tokens it issued,
    which the processes' token caches may still hold)."""

    def __init__(self, emulator) -> None:
        self.emulator = emulator
        with emulator.lock:
            self.attrs = dict(vars(emulator))

    def restore(self) -> None:
        emulator = self.emulator
        with emulator.lock:
            for name in set(vars(emulator)) - set(self.attrs):
                delattr(emulator, name)
            for name, value in self.attrs.items():
                current = vars(emulator).get(name)
                if current is not value and not (isinstance(value, _SCALARS) and current == value):
                    setattr(emulator, name, value)
            emulator.reset()


def start_emulators(stack: ExitStack) -> dict:
    """Every keyed provider's emulator (the registry's slugs with ``tests/emulators/<slug>.py``),
    started on a free port until ``stack`` closes."""
    from apps.providers import registry
    from tests.emulators import emulator_class

    emulators = {}
    for slug in registry.PROVIDERS:
        cls = emulator_class(slug)
        if cls is not None:
            emulators[slug] = stack.enter_context(cls(job_seconds=1.0))
    return emulators


class SharedEngine:
    """The session's emulators and its shared worker (see the module docstring)."""

    def __init__(self, stack: ExitStack, folder: Path) -> None:
        self.folder = folder
        self.emulators = start_emulators(stack)
        self.states = [EmulatorState(emulator) for emulator in self.emulators.values()]
        self.urls: dict[str, str] = {}
        for emulator in self.emulators.values():
            self.urls.update(emulator.settings())
        self.worker = self.beat = None
        self.worker_env: dict[str, str] | None = None
        self.old_pool: set[int] | None = None  # the pool processes being replaced
        self.starts = 0

    def fresh_emulators(self) -> dict:
        for state in self.states:
            state.restore()
        return self.emulators

    def worker_begin(self, extra_env: dict[str, str]) -> None:
        """Purge the queues, then ask the running worker for fresh pool processes if its
        environment is this one, else start a new worker and beat; :meth:`worker_ready`
        waits for either (the test's keys are made meanwhile)."""
        from tests.utils import subprocess_env
        from tests.worker import BeatProcess, WorkerProcess, purge_queue, restart_pool

        env = {**self.urls, "PROVIDER_READ_TIMEOUT": "2", **extra_env}
        wanted = {k: v for k, v in subprocess_env(**env).items() if k not in _VOLATILE_ENV}
        purge_queue()  # messages an earlier test left behind would delay the worker
        alive = self.worker is not None and self.worker.proc.poll() is None and self.beat.proc.poll() is None
        if alive and wanted == self.worker_env:
            self.old_pool = restart_pool(self.worker)
            return
        self.stop_worker()
        self.starts += 1
        log = self.folder / f"worker-{self.starts}.log"
        # beat on its own, as `make run` runs it: the worker's children are then its pool only
        self.worker, self.beat = WorkerProcess(log, env=env, recyclable=True), BeatProcess(log, env=env)
        self.worker.start()
        self.beat.start()
        self.worker_env, self.old_pool = wanted, None

    def worker_ready(self):
        from tests.worker import wait_for_fresh_pool, wait_until_ready

        try:
            if self.old_pool is None:
                wait_until_ready(self.worker)
            else:
                wait_for_fresh_pool(self.worker, self.old_pool)
        except BaseException:
            self.stop_worker()
            raise
        return self.worker

    def stop_worker(self) -> None:
        for process in (self.worker, self.beat):
            if process is not None:
                process.discard()
        self.worker = self.beat = self.worker_env = None


_NEXT: dict[str, object] = {}  # the test that runs after the current one (None: the last)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    _NEXT["item"] = nextitem  # returns None: pytest's own implementation runs the test


def _uses_live_engine(item) -> bool:
    return item is not None and LIVE_FIXTURE in getattr(item, "fixturenames", ())


def _env_group(item) -> str:
    """Where the item's ``live_engine_env`` is defined: tests that share it share a worker."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get("live_engine_env") if info is not None else None
    return defs[-1].baseid if defs else ""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Run the ``live_engine`` tests last, grouped by ``live_engine_env`` (in the order each group
    first appears), each group in the order the tests had: one worker serves a whole group."""
    live = [item for item in items if _uses_live_engine(item)]
    if not live:
        return
    groups: dict[str, list] = {}
    for item in live:
        groups.setdefault(_env_group(item), []).append(item)
    others = [item for item in items if not _uses_live_engine(item)]
    items[:] = others + [item for group in groups.values() for item in group]


@pytest.fixture(scope="session")
def live_engine_shared(django_db_setup, tmp_path_factory):
    """The session's :class:`SharedEngine`; after ``django_db_setup``, so its worker is gone
    before the test database is dropped."""
    with ExitStack() as stack:
        from tests.worker import forget_control_messages

        shared = SharedEngine(stack, tmp_path_factory.mktemp("live-engine"))
        stack.callback(forget_control_messages)
        stack.callback(shared.stop_worker)
        yield shared


@pytest.fixture
def live_engine_env() -> dict[str, str]:
    """Extra environment for the worker of ``live_engine`` (override it in a module or conftest;
    tests with another value get another worker)."""
    return {}


@pytest.fixture
def live_engine(tenants, transactional_db, settings, live_engine_shared, live_engine_env):
    from tests.worker import broker_mode

    shared = live_engine_shared
    with broker_mode():
        try:
            shared.worker_begin(dict(live_engine_env))
            emulators = shared.fresh_emulators()
            for name, value in shared.urls.items():
                setattr(settings, name, value)
            alice = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
            with org_scope(tenants.org_a):
                keys = {
                    slug: key_services.provider_key_create(by=alice, provider=slug, **emulator.key_fields())
                    for slug, emulator in emulators.items()
                }
            worker = shared.worker_ready()
            # forget the validation calls (tests count generation traffic only), and whatever the
            # worker's old pool processes sent while they finished
            for emulator in emulators.values():
                emulator.reset()
            offset = worker.log_path.stat().st_size if worker.log_path.exists() else 0
            yield LiveEngine(worker=WorkerView(worker, offset), emulators=emulators, keys=keys)
        finally:
            if not _uses_live_engine(_NEXT.get("item")):
                shared.stop_worker()  # nothing else runs beside it
            shared.fresh_emulators()  # no webhook of this test's jobs is pushed after it
