"""`make run`: gunicorn + worker + beat under supervisord (mediarouter/run.py).

The integration test runs the Makefile's own `run` recipe (`make -o .venv/.installed run`: the same
command line, without the install step) on a free port with a temporary MEDIAROUTER_VAR_DIR, on the
embedded default whatever this test run uses (SQLite, the filesystem broker), and checks what a
developer relies on: DEBUG off, static files, keep-alive, 50 simultaneous creates, a killed worker
and beat coming back while web keeps answering, and Ctrl-C stopping every process.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from supervisor.options import ServerOptions

from mediarouter import run
from mediarouter.queues import queue_names
from tests.utils import ROOT

# What the developer's shell or this test run may have set that `make run` must not inherit here:
# the test must start the embedded default, never touch the suite's PostgreSQL database or Redis.
_DROP = {
    "DJANGO_SETTINGS_MODULE", "DJANGO_ENV", "DEBUG", "DATABASE_URL", "DATABASE_URL_FILE", "REDIS_URL",
    "REDIS_URL_FILE", "SECRET_KEY", "SECRET_KEY_FILE", "FERNET_KEYS", "FERNET_KEYS_FILE", "MEDIA_ROOT",
    "AWS_STORAGE_BUCKET_NAME", "WEB_CONCURRENCY", "WEB_THREADS", "WORKER_CONCURRENCY", "DOWNLOAD_CONCURRENCY",
    "CELERY_QUEUE_PREFIX", "PROMETHEUS_MULTIPROC_DIR",
    "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_run_env(var_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP and not k.startswith("MEDIAROUTER_")}
    env.update(
        PORT=str(port),
        MEDIAROUTER_VAR_DIR=str(var_dir),
        # shorter jobs, and a shorter wait before the dispatcher re-sends a step the killed worker lost
        SANDBOX_JOB_SECONDS="1",
        GENERATION_LEASE_GRACE_SECONDS="3",
        GENERATION_DISPATCH_INTERVAL_SECONDS="1",
    )
    return env


# --- the generated configuration ------------------------------------------------------------


def _parse(tmp: Path, *, dev: bool) -> ServerOptions:
    run_dir = tmp / "var 100%" / "run"  # a space and a % (supervisord %-interpolates values)
    run_dir.mkdir(parents=True)
    conf = run_dir / "supervisord.conf"
    python = str(tmp / "venv 5%" / "python")
    progs = run.programs(dev=dev, port=8123, web_workers=3, web_threads=5, worker_concurrency=2, python=python)
    conf.write_text(run.supervisord_conf(run_dir=run_dir, programs=progs))
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    return options


def _programs(options: ServerOptions) -> dict:
    return {p.name: p for group in options.process_group_configs for p in group.process_configs}


def test_supervisord_config_follows_var_dir_and_port():
    tmp = Path(tempfile.mkdtemp(prefix="mr-run-conf-"))
    try:
        options = _parse(tmp, dev=False)
        run_dir = tmp / "var 100%" / "run"
        assert options.nodaemon is True
        assert options.logfile == str(run_dir / "supervisord.log")
        assert options.server_configs[0]["file"] == str(run_dir / "supervisor.sock")
        assert options.server_configs[0]["chmod"] == 0o700
        progs = _programs(options)
        assert set(progs) == {"web", "worker", "polls", "downloads", "beat"}
        python = str(tmp / "venv 5%" / "python")
        web = progs["web"].command
        assert web.startswith(f"'{python}' -m gunicorn mediarouter.wsgi --bind 127.0.0.1:8123 --workers 3 ")
        assert "--worker-class gthread --threads 5 --keep-alive 5 --backlog 2048" in web
        # polls and downloads have pools of their own: a long download or a burst of submits never
        # holds up the poll step
        q = queue_names()  # this test run's prefix (CELERY_QUEUE_PREFIX), else "mediarouter"
        assert progs["worker"].command.endswith(
            f"worker --hostname worker@%h --queues {q['default']},{q['submit']} --loglevel INFO --concurrency 2"
        )
        assert progs["polls"].command.endswith(
            f"worker --hostname polls@%h --queues {q['poll']} --loglevel INFO --concurrency 1"
        )
        assert progs["downloads"].command.endswith(
            f"worker --hostname downloads@%h --queues {q['download']} --loglevel INFO --concurrency 1"
        )
        for program in progs.values():
            assert program.autorestart is not False and program.killasgroup is True
            assert program.directory == str(ROOT)
        # beat stops first, web last
        order = ["web", "worker", "polls", "downloads", "beat"]
        priorities = [progs[name].priority for name in order]
        assert priorities == sorted(set(priorities))
    finally:
        shutil.rmtree(tmp)


def test_dev_config_runs_runserver_and_stops_its_reloader_too():
    tmp = Path(tempfile.mkdtemp(prefix="mr-run-conf-"))
    try:
        web = _programs(_parse(tmp, dev=True))["web"]
        assert web.command.endswith(" manage.py runserver 127.0.0.1:8123")
        assert web.stopasgroup is True
    finally:
        shutil.rmtree(tmp)


def test_a_port_in_use_is_refused_before_anything_starts():
    var_dir = Path(tempfile.mkdtemp(prefix="mr-run-busy-"))
    busy = socket.socket()
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "mediarouter.run"],
            cwd=ROOT,
            env=_make_run_env(var_dir, port),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert f"127.0.0.1:{port} is in use" in result.stderr
        assert not (var_dir / "run").exists() and not (var_dir / "db.sqlite3").exists()
    finally:
        busy.close()
        shutil.rmtree(var_dir)


def test_a_second_start_on_the_same_var_dir_is_refused():
    var_dir = Path(tempfile.mkdtemp(prefix="mr-run-twice-"))
    (var_dir / "run").mkdir()
    live = socket.socket(socket.AF_UNIX)  # what a running supervisord listens on
    try:
        live.bind(str(var_dir / "run" / "supervisor.sock"))
        live.listen()
        result = subprocess.run(
            [sys.executable, "-m", "mediarouter.run"],
            cwd=ROOT,
            env=_make_run_env(var_dir, _free_port()),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0 and "already running" in result.stderr
        assert not (var_dir / "run" / "supervisord.conf").exists() and not (var_dir / "db.sqlite3").exists()
    finally:
        live.close()
        shutil.rmtree(var_dir)


def test_a_var_dir_too_long_for_a_unix_socket_gets_a_short_one():
    deep = Path("/srv") / ("d" * 120) / "run"
    other = Path("/srv") / ("e" * 120) / "run"
    sock = run.socket_path(deep)
    assert len(os.fsencode(sock)) <= 100 and sock.parent == Path(tempfile.gettempdir())
    assert sock != run.socket_path(other)
    assert run.socket_path(Path("/srv/v/run")) == Path("/srv/v/run/supervisor.sock")


# --- the real thing -------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, None once it is gone. The start time (in clock
    ticks since boot) tells a process from a later one that reuses its pid, and survives exec()."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _descendants(root: int) -> dict[int, int]:
    """{pid: start time} of every process below ``root``."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))):
            children.setdefault(stat[1], []).append((int(entry.name), stat[2]))
    found, todo = {}, [root]
    while todo:
        for child, started in children.get(todo.pop(), []):
            found[child] = started
            todo.append(child)
    return found


def _alive(pid: int, started: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z" and stat[2] == started  # the same process, not a reused pid


def _still_alive(processes: dict[int, int]) -> list[str]:
    return [f"{pid} {_cmdline(pid)}" for pid, started in processes.items() if _alive(pid, started)]


class MakeRun:
    """`make run` in a session of its own (a terminal's foreground process group)."""

    def __init__(self, var_dir: Path, port: int) -> None:
        self.var_dir, self.port = var_dir, port
        self.base = f"http://127.0.0.1:{port}"
        self.env = _make_run_env(var_dir, port)
        self.log_path = var_dir / "make-run.log"
        self.seen: dict[int, int] = {}  # every process it ever had, for the final check and clean-up
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self, tail: int = 8000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def processes(self) -> dict[int, int]:
        found = _descendants(self.proc.pid)
        self.seen.update(found)
        return found

    def wait_healthy(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"make run exited ({self.proc.returncode}):\n{self.log()}"
            self.processes()
            try:
                if requests.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(f"/healthz not 200 after {timeout:.0f} s:\n{self.log()}")

    def supervisorctl(self, *args: str) -> subprocess.CompletedProcess:
        conf = self.var_dir / "run" / "supervisord.conf"
        cmd = [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(conf), *args]
        return subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=30)

    def running_pids(self) -> dict[str, int]:
        """{program: pid} of the programs supervisord reports RUNNING."""
        pids = {}
        for line in self.supervisorctl("status").stdout.splitlines():
            fields = line.split()  # "worker   RUNNING   pid 123, uptime 0:00:05"
            if fields[1:3] == ["RUNNING", "pid"]:
                pids[fields[0]] = int(fields[3].rstrip(","))
        return pids

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def kill_everything(self) -> None:
        for pid, started in self.processes().items() | self.seen.items():
            if _alive(pid, started):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def make_run():
    var_dir = Path(tempfile.mkdtemp(prefix="mr-make-run-"))  # short: it holds supervisord's unix socket
    started = MakeRun(var_dir, _free_port())
    try:
        yield started
    finally:
        started.kill_everything()
        shutil.rmtree(var_dir, ignore_errors=True)


def _create_fifty_at_once(base: str, token: str) -> list[requests.Response | Exception]:
    barrier = threading.Barrier(50)
    results: list[requests.Response | Exception] = [None] * 50  # type: ignore[list-item]

    def create(i: int) -> None:
        barrier.wait()
        try:
            results[i] = requests.post(
                f"{base}/v1/videos",
                json={"model": "sandbox-video", "prompt": f"a kite, take {i}", "seconds": "2", "size": "1280x720"},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
                timeout=120,
            )
        except requests.RequestException as exc:
            results[i] = exc

    threads = [threading.Thread(target=create, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_make_run_serves_like_production_restarts_crashes_and_stops_on_ctrl_c(make_run):
    make_run.wait_healthy()
    base = make_run.base

    # DEBUG is off: an unknown page is the app's own 404, not Django's technical page
    missing = requests.get(f"{base}/no-such-page/", timeout=10)
    assert missing.status_code == 404
    assert "DEBUG = True" not in missing.text and "URLconf" not in missing.text
    assert "MediaRouter" in missing.text
    # static files come from the collected copy (WhiteNoise), as in production
    css = requests.get(f"{base}/static/css/app.css", timeout=10)
    assert css.status_code == 200 and css.content == (ROOT / "static" / "css" / "app.css").read_bytes()

    # keep-alive: three requests over one TCP connection
    conn = http.client.HTTPConnection("127.0.0.1", make_run.port, timeout=10)
    local_ports = set()
    for _ in range(3):
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        assert response.status == 200 and response.getheader("Connection", "").lower() != "close"
        local_ports.add(conn.sock.getsockname()[1])
    conn.close()
    assert len(local_ports) == 1

    # 50 simultaneous creates: every connection is accepted and answered
    slug = make_run.manage(
        "create_org", "--email", "dev@example.com", "--password", "a long pass phrase", "--org", "Dev"
    )
    token = make_run.manage("create_api_token", "--email", "dev@example.com", "--org", slug).splitlines()[-1]
    results = _create_fifty_at_once(base, token)
    assert [r.status_code if isinstance(r, requests.Response) else repr(r) for r in results] == [200] * 50
    ids = {r.json()["id"] for r in results}
    assert len(ids) == 50

    # a SIGKILLed worker and beat come back, new processes, while web keeps answering
    old = make_run.running_pids()
    assert set(old) == {"web", "worker", "polls", "downloads", "beat"}, make_run.supervisorctl("status").stdout
    old_pool = {p: c for p, c in make_run.processes().items() if (_proc_stat(p) or ("", 0, 0))[1] == old["worker"]}
    assert len(old_pool) == 2, old_pool  # WORKER_CONCURRENCY's default
    killed = {p: s[2] for p in (old["worker"], old["beat"]) if (s := _proc_stat(p))}
    os.kill(old["worker"], signal.SIGKILL)
    os.kill(old["beat"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _still_alive(killed):  # until supervisord has reaped them
        time.sleep(0.05)
    assert not _still_alive(killed)
    # worker and beat are dead or still starting: web answers all the same
    assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
    new: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = make_run.running_pids()
        if new.get("worker", old["worker"]) != old["worker"] and new.get("beat", old["beat"]) != old["beat"]:
            break
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        time.sleep(0.3)
    assert {"worker", "beat"} <= set(new) and new["worker"] != old["worker"] and new["beat"] != old["beat"], (
        new,
        old,
        make_run.log(),
    )
    assert new["web"] == old["web"]  # web itself was never restarted
    # the killed worker's pool processes do not linger
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _still_alive(old_pool):
        time.sleep(0.2)
    assert not _still_alive(old_pool)

    # the new worker and beat run the jobs to the end (the dispatcher re-sends what the kill lost)
    deadline = time.monotonic() + 180
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        listing = requests.get(
            f"{base}/v1/videos", params={"limit": 100}, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        if listing.status_code == 200:
            statuses = {v["id"]: v["status"] for v in listing.json()["data"]}
            if set(statuses) == ids and set(statuses.values()) == {"completed"}:
                break
        time.sleep(2)
    assert set(statuses) == ids and set(statuses.values()) == {"completed"}, (statuses, make_run.log())
    # /metrics (open on loopback in development) adds up what every program observed: the downloads
    # program's histograms, written into $MEDIAROUTER_VAR_DIR/prometheus, reach the web's scrape
    scrape = requests.get(f"{base}/metrics", timeout=30)
    assert scrape.status_code == 200, scrape.text
    assert 'mediarouter_generations{provider="sandbox",state="completed"} 50.0' in scrape.text
    assert 'mediarouter_download_seconds_count{provider="sandbox"} 50.0' in scrape.text
    assert list((make_run.var_dir / "prometheus").glob("*.db"))

    # Ctrl-C: SIGINT to the foreground process group stops web, worker and beat, and make returns
    children = make_run.processes()
    # supervisord, gunicorn + 2 workers, the Celery worker + 2 pool processes, beat
    assert len(children) >= 7, [_cmdline(p) for p in children]
    os.killpg(make_run.proc.pid, signal.SIGINT)
    make_run.proc.wait(timeout=90)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _still_alive(make_run.seen):
        time.sleep(0.2)
    assert not _still_alive(make_run.seen), make_run.log()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/healthz", timeout=5)
    log = make_run.log(tail=10**9)
    assert "received SIGINT" in log and "stopped: web" in log and "stopped: worker" in log
