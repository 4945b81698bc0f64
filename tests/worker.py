"""A real Celery worker process for integration tests, against the real broker of this leg
(kombu's filesystem transport on the embedded default, Redis when REDIS_URL is set)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from mediarouter.celery import app as celery_app
from tests.utils import PYTHON, ROOT, subprocess_env


class WorkerProcess:
    def __init__(self, log_path: Path, concurrency: int = 2, beat: bool = False, env: dict | None = None) -> None:
        self.log_path = log_path
        self.env = env or {}
        self.concurrency = concurrency
        self.beat = beat
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [
            PYTHON, "-m", "celery", "-A", "mediarouter", "worker",
            "--loglevel", "INFO", "--concurrency", str(self.concurrency),
            "--queues", ",".join(run_queues()),
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--hostname", f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]  # fmt: skip
        if self.beat:
            cmd += ["--beat", "--schedule", str(self.log_path.with_suffix(".beat"))]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd,
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

    def stop(self) -> None:
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
        time.sleep(0.2)
    raise RuntimeError(f"worker not ready after {timeout}s:\n{worker.log()[-4000:]}")
