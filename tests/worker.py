"""A real Celery worker process for integration tests, against the real broker of this leg
(kombu's filesystem transport on the embedded default, Redis when REDIS_URL is set)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from mediarouter.celery import app as celery_app
from tests.utils import PYTHON, ROOT, subprocess_env


class WorkerProcess:
    """``celery worker`` (prefork) as a child process in a session of its own, logging to
    ``log_path``; ``beat=True`` embeds beat in it. ``recyclable`` runs MediaRouter's app from
    tests/worker_app.py, which allows pool restarts (:func:`restart_pool`)."""

    def __init__(
        self,
        log_path: Path,
        concurrency: int = 2,
        beat: bool = False,
        env: dict | None = None,
        recyclable: bool = False,
    ) -> None:
        self.log_path = log_path
        self.env = env or {}
        self.concurrency = concurrency
        self.beat = beat
        self.recyclable = recyclable
        self.hostname = ""
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        # the node name spelled out (not ``%h``): remote control commands are addressed to it
        self.hostname = f"test-{os.getpid()}-{time.monotonic_ns()}@{socket.gethostname()}"
        cmd = [
            PYTHON, "-m", "celery", "-A", "tests.worker_app" if self.recyclable else "mediarouter", "worker",
            "--loglevel", "INFO", "--concurrency", str(self.concurrency),
            "--queues", ",".join(run_queues()),
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--hostname", self.hostname,
        ]  # fmt: skip
        if self.beat:
            cmd += ["--beat", "--schedule", str(self.log_path.with_suffix(".beat"))]
        return cmd

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=subprocess_env(MEDIAROUTER_TEST_WORKER="1", **self.env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def discard(self) -> None:
        """End a worker whose work no longer matters (a fixture's teardown): SIGKILL to the whole
        process group at once. A warm shutdown of a worker with beat ran into the 15 s timeout of
        :meth:`stop` in CI, for nothing: the next test purges the queues and the database is
        flushed."""
        self.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def stop(self) -> None:
        """A warm shutdown (SIGTERM: running tasks finish), SIGKILL after 15 s."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def run_queues() -> list[str]:
    """This run's queues (default, submit, poll, download: all named from the run's own prefix)."""
    return list(settings.CELERY_QUEUE_NAMES.values())


def purge_queue() -> int:
    """Drop every message waiting in this run's queues (left by an earlier test), so a new worker
    starts on empty queues. Returns how many were dropped."""
    with celery_app.connection_for_write() as conn:
        return sum(conn.default_channel.queue_purge(queue) or 0 for queue in run_queues())


@contextmanager
def broker_mode() -> Iterator[None]:
    """Send tasks through the broker for real (the unit-test default is eager)."""
    old = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = old


def wait_until_ready(worker: WorkerProcess, timeout: float = 60) -> None:
    from apps.core.tasks import ping

    deadline = time.monotonic() + timeout
    result = ping.apply_async(args=["ready"], ignore_result=False)
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{worker.log()[-4000:]}")
        if result.ready():
            assert result.get(timeout=1) == "ready"
            return
        time.sleep(0.05)
    raise RuntimeError(f"worker not ready after {timeout}s:\n{worker.log()[-4000:]}")


class BeatProcess(WorkerProcess):
    """``celery beat`` on its own (as ``make run`` runs it), beside a worker started without
    ``beat``: the worker's children are then its pool processes only (see :func:`restart_pool`)."""

    def command(self) -> list[str]:
        return [
            PYTHON, "-m", "celery", "-A", "mediarouter", "beat",
            "--loglevel", "INFO", "--schedule", str(self.log_path.with_suffix(".beat")),
        ]  # fmt: skip


def pool_processes(worker: WorkerProcess) -> set[int]:
    """The pids of the worker's living children: its pool processes, for a worker without an
    embedded beat (read from /proc: no broker round trip)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == worker.proc.pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def restart_pool(worker: WorkerProcess) -> set[int]:
    """Ask a recyclable worker (started without embedded beat) to replace its pool processes
    (remote control ``pool_restart``; each idle one exits within a second, a busy one after its
    task, and the worker forks a new one). Returns the old pids for :func:`wait_for_fresh_pool`.
    The new processes are forked from the worker's main process, which runs no task, so they hold
    nothing an earlier test put in memory (the providers' model lists, tokens and prices, HTTP
    connections): as good as a new worker for the next test, at a fraction of its start."""
    old = pool_processes(worker)
    celery_app.control.pool_restart(destination=[worker.hostname])
    return old


def forget_control_messages() -> None:
    """Remove the remote control messages that no worker will read (the embedded broker copies a
    broadcast into the mailbox of every worker that ever ran on it, dead ones too): the run leaves
    no pile of them behind in the broker folder. Nothing to do on Redis (they are published, not
    stored)."""
    if settings.CELERY_BROKER_URL != "mrfs://":
        return
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    for path in folder.glob("*.celery.pidbox.msg"):
        path.unlink(missing_ok=True)


def wait_for_fresh_pool(worker: WorkerProcess, old: set[int], timeout: float = 30) -> None:
    """Return once the worker has its whole pool again, none of the ``old`` processes among it,
    and runs a task."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited while its pool restarted:\n{worker.log()[-4000:]}")
        now = pool_processes(worker)
        if len(now) == worker.concurrency and not now & old:
            wait_until_ready(worker, timeout=max(deadline - time.monotonic(), 1.0))
            return
        time.sleep(0.05)
    raise RuntimeError(f"the worker's pool was not replaced after {timeout}s:\n{worker.log()[-4000:]}")


def recycle_pool(worker: WorkerProcess, timeout: float = 30) -> None:
    """Give a recyclable worker (without embedded beat) fresh pool processes; see
    :func:`restart_pool`."""
    wait_for_fresh_pool(worker, restart_pool(worker), timeout)
