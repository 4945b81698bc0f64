"""Shared plumbing of the benchmarks in bench/: processes on 127.0.0.1, production settings,
a fresh PostgreSQL database, a tenant with a provider key, percentiles and tables.

Not a test module and not imported by the app. Every process a bench starts is registered in
``Procs`` and stopped (its own process group, by id) when the bench exits, even on Ctrl-C.
"""

from __future__ import annotations

import atexit
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_URL_TEMPLATE = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/{name}")
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class Procs:
    """Processes this bench started; each in its own session, stopped by its group id."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        atexit.register(self.stop_all)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def start(self, name: str, cmd: list[str], *, env: dict, log: Path) -> subprocess.Popen:
        fh = open(log, "ab")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 15.0) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self.procs)):
            self.stop(proc)


# --- environment and database --------------------------------------------------------------


def workdir(name: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"mediarouter-bench-{name}-"))
    return path


def production_env(*, db_name: str, var_dir: Path, redis_url: str = REDIS_BASE, **extra: str) -> dict[str, str]:
    """The environment of a production deployment on 127.0.0.1 (http, local emulators)."""
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "mediarouter.settings",
            "DJANGO_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FERNET_KEYS": Fernet.generate_key().decode(),
            "DATABASE_URL": PG_URL_TEMPLATE.format(name=db_name),
            "REDIS_URL": redis_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "EMAIL_ALLOW_CONSOLE": "true",  # a benchmark sends no mail
            "PROVIDER_ALLOW_HTTP": "true",
            "MEDIAROUTER_VAR_DIR": str(var_dir),
            "MEDIA_ROOT": str(var_dir / "media"),
            **{f"API_THROTTLE_{name}_RATE": "10000000/min" for name in ("CREATE", "READ", "ORG_CREATE", "ORG_READ")},
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def fresh_database(db_name: str) -> None:
    """Drop and create ``db_name`` (a bench's own database; never the developer's)."""
    import psycopg

    assert db_name.startswith("mediarouter_bench"), db_name
    with psycopg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def migrate(env: dict) -> None:
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


def collectstatic(env: dict) -> None:
    """Production serves hashed static files from a manifest (pages need it)."""
    subprocess.run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


def django_setup(env: dict) -> None:
    """Configure Django in this process with ``env`` (call before importing any app module)."""
    os.environ.update(env)
    import django

    django.setup()


def create_tenant(*, sora_base_url: str | None = None, sora_api_key: str | None = None) -> dict:
    """An owner, an organization, an API token and (optionally) a validated Sora key."""
    from apps.accounts import services as account_services
    from apps.accounts.models import Membership, User
    from apps.api_keys import services as key_services
    from apps.core.scoping import org_scope

    email = f"bench-{secrets.token_hex(4)}@example.com"
    user = User.objects.create_user(email, secrets.token_urlsafe(16), name="Bench")
    org = account_services.organization_create(owner=user, name=f"Bench {secrets.token_hex(3)}")
    _, token = key_services.api_token_create(org=org, user=user, name="bench")
    key = None
    if sora_api_key:
        owner = Membership.all_orgs.get(user=user, organization=org)
        with org_scope(org):
            key = key_services.provider_key_create(by=owner, provider="sora", api_key=sora_api_key)
    return {"user": user, "org": org, "token": token, "key": key}


# --- processes -------------------------------------------------------------------------------


def start_gunicorn(procs: Procs, env: dict, log: Path, *, workers: int = 3, threads: int = 1) -> str:
    port = free_port()
    cmd = [
        PYTHON, "-m", "gunicorn", "mediarouter.wsgi",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--backlog", "2048", "--access-logfile", "-" if os.environ.get("BENCH_ACCESS_LOG") else "/dev/null",
    ]  # fmt: skip
    proc = procs.start("gunicorn", cmd, env=env, log=log)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
    return f"http://127.0.0.1:{port}"


def procfile_web(port: int) -> list[str]:
    """The ``Procfile``'s ``web`` command (the production setup), its ``${VAR:-default}`` expanded
    from this environment, bound to 127.0.0.1:``port``."""
    import shlex

    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    line = re.sub(r"\$\{PORT:-\d+\}", str(port), line.split(":", 1)[1])
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), line)
    argv = shlex.split(line.replace("0.0.0.0:", "127.0.0.1:"))
    return [PYTHON, "-m", "gunicorn", *argv[1:]] if argv[0] == "gunicorn" else argv


def start_procfile_web(procs: Procs, env: dict, log: Path, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """gunicorn as the ``Procfile`` starts it (plus ``extra`` options: the last one wins)."""
    port = free_port()
    proc = procs.start("gunicorn", [*procfile_web(port), *extra], env=env, log=log)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
    return proc, f"http://127.0.0.1:{port}"


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 40.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not up after {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


def start_worker(
    procs: Procs,
    env: dict,
    log: Path,
    *,
    concurrency: int = 2,
    beat: bool = True,
    name: str = "worker",
    pool: str = "prefork",
    queues: list[str] | None = None,
) -> subprocess.Popen:
    """A Celery worker; ``queues`` (names, e.g. from mediarouter.queues.queue_names()) limits it to
    those, as the Procfile's programs are (default: every queue)."""
    cmd = [
        PYTHON, "-m", "celery", "-A", "mediarouter", "worker", "--loglevel", "INFO", "--pool", pool,
        "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--hostname", f"bench-{name}-{os.getpid()}@%h",
    ]  # fmt: skip
    if queues:
        cmd += ["--queues", ",".join(queues)]
    if beat:
        cmd += ["--beat", "--schedule", str(log.with_suffix(".beat"))]
    proc = procs.start(name, cmd, env=env, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited:\n{log.read_text(errors='replace')[-3000:]}")
        if "ready." in log.read_text(errors="replace"):
            return proc
        time.sleep(0.2)
    raise RuntimeError(f"worker not ready:\n{log.read_text(errors='replace')[-3000:]}")


def start_emulator(
    procs: Procs, log: Path, *, module: str = "tests.emulators.sora", args: list[str] = ()
) -> tuple[subprocess.Popen, str]:
    """Run an emulator in its own process; returns (process, base URL)."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="mediarouter.settings_test")
    proc = procs.start("emulator", [PYTHON, "-m", module, "--port", str(port), *args], env=env, log=log)
    wait_port(port)
    prefix = "/v1" if module.endswith(("openai", "sora")) else ""  # the OpenAI emulator serves /v1/...
    return proc, f"http://127.0.0.1:{port}{prefix}"


# --- measuring and printing ------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def tree_pids(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    out, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(children.get(pid, []))
    return out


def status_kb(pid: int | str, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mb(root_pid: int) -> float:
    return sum(status_kb(pid, "VmRSS") for pid in tree_pids(root_pid)) / 1024


def machine() -> dict[str, str]:
    def run(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return "?"

    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    pg = run(["psql", PG_ADMIN_URL, "-Atc", "show server_version"])
    redis_v = re.search(r"v=(\S+)", run(["redis-server", "--version"]))
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "postgresql": pg or "?",
        "redis": redis_v.group(1) if redis_v else "?",
    }


def print_table(title: str, rows: list[tuple], headers: tuple[str, ...] = ("metric", "value", "target", "ok")) -> None:
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print()


def print_machine() -> None:
    info = machine()
    print(", ".join(f"{k}: {v}" for k, v in info.items()))


def ok(flag: bool) -> str:
    return "yes" if flag else "NO"
