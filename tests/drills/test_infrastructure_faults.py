"""Drills: the broker restarted mid-run (Redis leg only) and every database connection of the
worker dropped mid-run (PostgreSQL leg only). Queued messages are lost with Redis (``--save ""``);
the dispatcher re-sends whatever is overdue, so every job still ends, once.

The Redis drill never touches the machine's Redis (``REDIS_URL``, which other tests, benchmarks or
services may be using): it starts a ``redis-server`` of its own on a free port, points this process
and the drill's worker at it, and restarts that one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import connection

from apps.generations.models import State
from mediarouter.celery import app as celery_app

pytestmark = [pytest.mark.integration]

REDIS_LEG = bool(getattr(settings, "REDIS_URL", None))


class OwnRedis:
    """A throw-away ``redis-server`` on 127.0.0.1 (no persistence), owned by the test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        """Start on ``self.port``, or on a free port the first time (a few tries: another process
        may take a port between our probe and the server's bind)."""
        for _ in range(5):
            port = self.port or _free_port()
            self.proc = subprocess.Popen(
                [
                    "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self.port = port
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.ping():
                    return
                time.sleep(0.05)
            self.stop()
            if self.port != port:
                break
        log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")

    def shutdown(self) -> None:
        """What a crash or an operator's restart does: gone, with every queued message."""
        try:
            redis.Redis(port=self.port, socket_timeout=2).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reset_celery_connections() -> None:
    # Celery caches its broker connection pool, producer pool and result backend per app (and the
    # backend per thread); dropping them makes the next send and result read use the current
    # configuration. Celery internals: re-check on a Celery upgrade (the drill fails if they change).
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app._backend_cache = None
    celery_app._local = threading.local()
    # kombu keeps the pools in process-wide registries keyed by the connection's settings: a closed
    # pool left there is handed out again by the next send to the same broker ("Acquire on closed pool")
    kombu.pools.reset()


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Send this process's tasks through ``url``, and read their results from it, while active."""
    conf = celery_app.conf
    saved = (conf.broker_url, conf.result_backend)
    _reset_celery_connections()
    conf.broker_url = conf.result_backend = url
    try:
        yield
    finally:
        _reset_celery_connections()
        conf.broker_url, conf.result_backend = saved


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    if not shutil.which("redis-server"):
        pytest.skip("the Redis drill starts its own redis-server: install it (apt-get install redis-server)")
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def drill_env(request) -> Iterator[dict[str, str]]:
    """The drill's worker, and this process, on the drill's own Redis (broker, results, cache)."""
    if "own_redis" not in request.fixturenames:  # the PostgreSQL drill: the leg's own broker
        yield {}
        return
    own_redis = request.getfixturevalue("own_redis")
    with celery_broker(own_redis.url):
        yield {"REDIS_URL": own_redis.url}


def _shared_redis_run_id() -> str:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5).info("server")["run_id"]


@pytest.mark.skipif(not REDIS_LEG, reason="Redis leg only: REDIS_URL is unset (the embedded broker has no server)")
def test_redis_restarted_mid_run(own_redis, drill):
    shared_before = _shared_redis_run_id()
    drill.emulator.job_seconds = 6.0
    drill.create(4)
    drill.wait_for(
        lambda gens: all(g.state in (State.QUEUED, State.IN_PROGRESS) for g in gens), what="every job submitted"
    )
    own_redis.shutdown()
    assert not own_redis.ping()
    time.sleep(2)  # the worker and beat lose their connections; pending messages are gone
    own_redis.start()  # the same port: clients reconnect to an empty server
    # Celery 5.7 / kombu 5.7: a worker that loses Redis while it holds unacknowledged messages can
    # exit ("Unrecoverable error: AttributeError: 'NoneType' object has no attribute 'hostname'",
    # from restore_unacked on the dead connection). In production its supervisor restarts it
    # (Docker restart policy, systemd); do what the supervisor does, then check nothing was lost.
    time.sleep(3)
    if drill.worker.proc.poll() is not None:
        drill.restart_worker()
    drill.create(2)  # the API works again at once (tasks are sent on commit; lost ones are re-sent)
    gens = drill.assert_all_accounted_for(allow_failed=False)  # all six completed, each submitted once
    assert len(gens) == 6 and all(g.submit_attempts == 1 for g in gens)
    # the machine's Redis was never restarted (nor used as this drill's broker)
    assert _shared_redis_run_id() == shared_before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL leg only (needs pg_terminate_backend)")
def test_postgres_connections_dropped_mid_run(drill):
    drill.emulator.job_seconds = 5.0
    drill.emulator.video_bytes = 4 * 1024 * 1024
    drill.create(5)
    drill.wait_for(
        lambda gens: all(g.state in (State.QUEUED, State.IN_PROGRESS) for g in gens), what="every job submitted"
    )
    killed, until = 0, time.monotonic() + 6
    # for 6 s, drop every other connection to the test database as soon as it appears: polls,
    # downloads and settles all meet a dead connection mid-task
    while time.monotonic() < until:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            killed += cursor.fetchone()[0]
        time.sleep(0.05)
    assert killed >= 1, "the worker had no database connection open"
    gens = drill.assert_all_accounted_for(allow_failed=False)
    assert all(g.submit_attempts == 1 for g in gens)
