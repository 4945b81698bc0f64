"""API overhead: create and retrieve on ``make run`` and on the production setup, side by side,
against the provider's own create and retrieve (the emulator), with keep-alive clients.

Starts, on 127.0.0.1, one OpenAI emulator (the provider) and two MediaRouters in front of it:

- **make run**: ``python -m mediarouter.run`` itself (supervisord; gunicorn gthread with keep-alive,
  worker, downloads, beat) on the embedded default: SQLite, the filesystem broker, the SQLite
  throttle file, in a temporary ``MEDIAROUTER_VAR_DIR``;
- **production**: the ``Procfile``'s ``web`` line (gunicorn sync workers, access log on) with
  ``DJANGO_ENV=production`` on a fresh PostgreSQL database (``mediarouter_bench_api``) and Redis
  (``BENCH_REDIS_URL``, default db 14), plus one Celery worker with beat.

Then, for each, in one run, every client a ``requests.Session`` (keep-alive, like the openai SDK):

1. create, interleaved: ``POST /v1/videos`` through MediaRouter versus ``POST /v1/videos`` at the
   emulator; p50/p95/p99 and the difference (target: p50 ≤ 10 ms over the provider's create);
2. retrieve, interleaved the same way, on both API shapes (target: p50 ≤ 3 ms as the client sees
   it), and through the openai SDK itself (``client.videos.retrieve``) when it is installed;
3. per-request costs counted on the server: SQL queries and cache/throttle round trips of one
   retrieve and one create (from a ``manage.py shell`` run in each setup, ``django.test.Client``);
4. retrieve throughput with ``--clients`` threads, and with ``wrk`` when it is installed.

``--profile DIR`` also records the web processes with py-spy (``record --subprocesses -f raw``)
during a retrieve loop of each setup and prints the functions with the most time (self and total).

Run:  .venv/bin/python bench/api_overhead.py [--quick] [--samples 300] [--setups make-run,production]
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379 (for the
production setup only).
"""

from __future__ import annotations

import argparse
import atexit
import collections
import functools
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

MODEL = "sora-2"
BODY = {"model": MODEL, "prompt": "a paper boat on a pond", "seconds": "4", "size": "1280x720"}
PY_SPY = Path(c.PYTHON).with_name("py-spy")
RETRIEVE_TARGET_MS = 3.0
CREATE_TARGET_MS = 10.0

# What `make run` must not inherit from this shell: it starts the embedded default (as
# tests/core/test_make_run.py does).
_MAKE_RUN_DROP = {
    "DJANGO_SETTINGS_MODULE", "DJANGO_ENV", "DEBUG", "DATABASE_URL", "DATABASE_URL_FILE", "REDIS_URL",
    "REDIS_URL_FILE", "SECRET_KEY", "SECRET_KEY_FILE", "FERNET_KEYS", "FERNET_KEYS_FILE", "MEDIA_ROOT",
    "AWS_STORAGE_BUCKET_NAME", "WEB_CONCURRENCY", "WEB_THREADS", "WORKER_CONCURRENCY", "DOWNLOAD_CONCURRENCY",
    "CELERY_QUEUE_PREFIX", "PROMETHEUS_MULTIPROC_DIR", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
}  # fmt: skip
_THROTTLES = {f"API_THROTTLE_{name}_RATE": "10000000/min" for name in ("CREATE", "READ", "ORG_CREATE", "ORG_READ")}


@dataclass
class Setup:
    name: str
    base: str
    token: str
    env: dict
    proc: subprocess.Popen
    figures: dict = field(default_factory=dict)


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


# --- the two setups ------------------------------------------------------------------------------


def _django_env(env: dict) -> dict:
    """A setup's environment for a Django process of our own (``manage.py`` would name the settings)."""
    return {"DJANGO_SETTINGS_MODULE": "mediarouter.settings", **env}


def tenant(env: dict, api_key: str) -> str:
    """An owner, an organization, an API token and a Sora key, made in the setup's own database
    (a subprocess with its settings); returns the token."""
    code = (
        "import json, sys; sys.path.insert(0, 'bench'); import _common as c; c.django_setup({}); "
        f"t = c.create_tenant(sora_api_key={api_key!r}); print('TOKEN=' + t['token'])"
    )
    out = subprocess.run([c.PYTHON, "-c", code], cwd=c.ROOT, env=_django_env(env), capture_output=True, text=True)
    token = next((line[6:] for line in out.stdout.splitlines() if line.startswith("TOKEN=")), None)
    if out.returncode or not token:
        raise SystemExit(f"could not create the tenant:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return token


def start_make_run(procs: c.Procs, work: Path, emu_url: str, extra_env: dict) -> Setup:
    var_dir = work / "make-run"
    port = c.free_port()
    env = {k: v for k, v in os.environ.items() if k not in _MAKE_RUN_DROP and not k.startswith("MEDIAROUTER_")}
    env.update(PORT=str(port), MEDIAROUTER_VAR_DIR=str(var_dir), OPENAI_BASE_URL=emu_url, PYTHONPATH=str(c.ROOT))
    env.update(_THROTTLES, **extra_env)
    log = work / "make-run.log"
    proc = procs.start("make run", [c.PYTHON, "-m", "mediarouter.run"], env=env, log=log)
    c.wait_http(f"http://127.0.0.1:{port}/healthz", proc, log, timeout=120)
    from tests.emulators.sora import API_KEY

    return Setup("make run", f"http://127.0.0.1:{port}", tenant(env, API_KEY), env, proc)


def start_production(procs: c.Procs, work: Path, emu_url: str, extra_env: dict, web_args: list[str]) -> Setup:
    db = "mediarouter_bench_api"
    c.fresh_database(db)
    env = c.production_env(db_name=db, var_dir=work / "production", OPENAI_BASE_URL=emu_url, **extra_env)
    c.flush_redis(env["REDIS_URL"])
    c.migrate(env)
    from tests.emulators.sora import API_KEY

    token = tenant(env, API_KEY)
    proc, base = c.start_procfile_web(procs, env, work / "production-web.log", web_args)
    c.start_worker(procs, env, work / "production-worker.log", concurrency=2, beat=True)
    return Setup("production", base, token, env, proc)


def stop(procs: c.Procs, setup: Setup) -> None:
    procs.stop(setup.proc, timeout=60)  # supervisord stops its programs gracefully first
    if setup.name == "production":
        c.flush_redis(setup.env["REDIS_URL"])


# --- per-request costs, counted inside the setup ---------------------------------------------------

# Run in a subprocess with the setup's settings: SQL queries (CaptureQueriesContext) and round trips
# to the cache or the throttle's store, of one warm retrieve and one create through the test client.
_COUNT_CODE = r"""
import json, sys, sqlite3
sys.path.insert(0, "bench")
import _common as c
c.django_setup({})
from django.conf import settings
settings.ALLOWED_HOSTS = ["*"]
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
calls = {"n": 0}
try:
    import redis.connection as rc
    real = rc.AbstractConnection.send_packed_command
    def counted(self, *a, **k):
        calls["n"] += 1
        return real(self, *a, **k)
    rc.AbstractConnection.send_packed_command = counted
except ImportError:
    pass
from apps.core import throttling
real_hit = throttling.SqliteCounters.hit
def sqlite_hit(self, *a, **k):
    calls["n"] += 1
    return real_hit(self, *a, **k)
throttling.SqliteCounters.hit = sqlite_hit
token = sys.argv[1]
client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
body = json.loads(sys.argv[2])
out = {}
created = client.post("/v1/videos", body, content_type="application/json").json()["id"]
for _ in range(3):
    client.get(f"/v1/videos/{created}")
for name, call in (
    ("retrieve", lambda: client.get(f"/v1/videos/{created}")),
    ("native retrieve", lambda: client.get(f"/v1/video/generations/{created}")),
    ("list", lambda: client.get("/v1/videos?limit=20")),
    ("create", lambda: client.post("/v1/videos", body, content_type="application/json")),
):
    calls["n"] = 0
    with CaptureQueriesContext(connection) as ctx:
        status = call().status_code
    out[name] = {"status": status, "queries": len(ctx.captured_queries), "round_trips": calls["n"],
                 "sql": [q["sql"][:160] for q in ctx.captured_queries]}
print("COUNTS=" + json.dumps(out))
"""


def count_costs(setup: Setup) -> dict:
    out = subprocess.run(
        [c.PYTHON, "-c", _COUNT_CODE, setup.token, json.dumps(BODY)],
        cwd=c.ROOT,
        env=_django_env(setup.env),
        capture_output=True,
        text=True,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("COUNTS=")), None)
    if line is None:
        print(f"warning: could not count the costs of {setup.name}:\n{out.stderr[-2000:]}")
        return {}
    return json.loads(line[7:])


# --- measuring -----------------------------------------------------------------------------------


def wait_terminal(session, base: str, ids: list[str], timeout: float = 600) -> int:
    """Wait until the worker has finished every job (so that it is idle while retrieves are
    measured); returns how many completed. make run's one worker finished only 122 of 300 in the
    120 s this waited before (2026-12-03), so the retrieves were measured beside a busy worker;
    the sweep of status reads pauses 2 s between rounds so that it does not load the server it
    waits for."""
    deadline = time.monotonic() + timeout
    pending = set(ids)
    completed = 0
    while pending and time.monotonic() < deadline:
        for vid in list(pending):
            status = session.get(f"{base}/v1/videos/{vid}").json().get("status")
            if status in ("completed", "failed"):
                pending.discard(vid)
                completed += status == "completed"
        if pending:
            time.sleep(2)
    if pending:
        print(f"warning: {len(pending)} jobs still running after {timeout:.0f} s")
    return completed


def latencies(setup: Setup, emu_url: str, api_key: str, samples: int) -> dict:
    import requests

    mr = requests.Session()
    mr.headers["Authorization"] = f"Bearer {setup.token}"
    direct = requests.Session()
    direct.headers["Authorization"] = f"Bearer {api_key}"
    for _ in range(30):  # warm up: connections, first-request imports in every web process
        mr.get(f"{setup.base}/v1/models")
        direct.get(f"{emu_url}/videos", params={"limit": 1})

    fig = {"create": [], "create_direct": [], "retrieve": [], "native": [], "retrieve_direct": []}
    ids, ids_direct = [], []
    for _ in range(samples):
        ms, r = timed(lambda: direct.post(f"{emu_url}/videos", json=BODY))
        assert r.status_code == 200, r.text
        fig["create_direct"].append(ms)
        ids_direct.append(r.json()["id"])
        ms, r = timed(lambda: mr.post(f"{setup.base}/v1/videos", json=BODY))
        assert r.status_code == 200, r.text
        fig["create"].append(ms)
        ids.append(r.json()["id"])
    fig["completed"] = wait_terminal(mr, setup.base, ids)
    fig["ids"] = ids

    for i in range(samples):
        ms, r = timed(lambda i=i: direct.get(f"{emu_url}/videos/{ids_direct[i]}"))
        assert r.status_code == 200
        fig["retrieve_direct"].append(ms)
        ms, r = timed(lambda i=i: mr.get(f"{setup.base}/v1/videos/{ids[i]}"))
        assert r.status_code == 200
        fig["retrieve"].append(ms)
        ms, r = timed(lambda i=i: mr.get(f"{setup.base}/v1/video/generations/{ids[i]}"))
        assert r.status_code == 200
        fig["native"].append(ms)

    try:
        import openai
    except ImportError:
        return fig
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK's notice about Sora's API
    sdk = openai.OpenAI(base_url=f"{setup.base}/v1", api_key=setup.token, max_retries=0)
    sdk_direct = openai.OpenAI(base_url=emu_url, api_key=api_key, max_retries=0)
    for _ in range(20):
        sdk.videos.retrieve(ids[0])
        sdk_direct.videos.retrieve(ids_direct[0])
    fig["sdk"], fig["sdk_direct"] = [], []
    for i in range(samples):
        fig["sdk_direct"].append(timed(lambda i=i: sdk_direct.videos.retrieve(ids_direct[i]))[0])
        fig["sdk"].append(timed(lambda i=i: sdk.videos.retrieve(ids[i]))[0])
    fig["ids_direct"] = ids_direct
    return fig


def throughput(urls: list[str], headers: dict, *, clients: int, seconds: float) -> dict:
    import requests

    counts = {"ok": 0, "non2xx": 0, "errors": 0}
    lat: list[float] = []
    lock = threading.Lock()
    start_evt = threading.Event()
    stop_at = [0.0]

    def client() -> None:
        session = requests.Session()
        session.headers.update(headers)
        local, ok, bad, err = [], 0, 0, 0
        rnd = random.Random()
        start_evt.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                r = session.get(rnd.choice(urls), timeout=30)
                ok, bad = (ok + 1, bad) if r.status_code == 200 else (ok, bad + 1)
            except requests.RequestException:
                err += 1
            local.append((time.perf_counter() - t0) * 1000)
        with lock:
            counts["ok"] += ok
            counts["non2xx"] += bad
            counts["errors"] += err
            lat.extend(local)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start_evt.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    return {**counts, "rps": counts["ok"] / elapsed, "p50": c.percentile(lat, 50), "p99": c.percentile(lat, 99)}


def run_wrk(url: str, header: str, *, clients: int, seconds: int, threads: int = 2) -> dict | None:
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s", "--latency", "-H", header, url],
        capture_output=True,
        text=True,
    ).stdout
    rps = next((float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec")), 0.0)
    non2xx = next((int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line), 0)
    p50 = next((line.split()[1] for line in out.splitlines() if line.strip().startswith("50%")), "?")
    p99 = next((line.split()[1] for line in out.splitlines() if line.strip().startswith("99%")), "?")
    return {"rps": rps, "non2xx": non2xx, "p50": p50, "p99": p99}


# --- profiling -------------------------------------------------------------------------------------


def web_pids(setup: Setup) -> list[int]:
    """The gunicorn processes of a setup (master and workers)."""
    pids = []
    for pid in c.tree_pids(setup.proc.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"gunicorn" in cmdline:
            pids.append(pid)
    return pids


def profile(setup: Setup, out_dir: Path, seconds: float, clients: int) -> Path | None:
    """py-spy on the web processes while ``clients`` keep-alive clients retrieve for ``seconds``."""
    if not PY_SPY.exists():
        print(f"warning: {PY_SPY} not installed; no profile")
        return None
    pids = web_pids(setup)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{setup.name.replace(' ', '-')}-retrieve.txt"
    master = min(pids)
    spy = subprocess.Popen(
        [str(PY_SPY), "record", "--pid", str(master), "--subprocesses", "--idle", "-r", "500", "-f", "raw",
         "-o", str(raw), "-d", str(int(seconds) + 2)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)
    urls = [f"{setup.base}/v1/videos/{i}" for i in setup.figures["ids"]]
    throughput(urls, {"Authorization": f"Bearer {setup.token}"}, clients=clients, seconds=seconds)
    spy.wait(timeout=seconds + 60)
    return raw if raw.exists() else None


_IDLE = re.compile(r"(select|poll|epoll|wait|accept|_wait_for_tstate_lock|sleep) \(")


def top_functions(raw: Path, n: int = 18) -> tuple[list, list]:
    """(self, total) shares of the busiest functions in py-spy's raw (collapsed) output, counting
    only samples inside a request (under ``get_response``/``handle_request``)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_short(f) for f in stack.split(";")]
        if not any("handle_request" in f or "get_response" in f for f in frames):
            continue
        k = int(count)
        samples += k
        own[frames[-1]] += k
        for f in set(frames):
            total[f] += k
    if not samples:
        return [], []
    return (
        [(v / samples, f) for f, v in own.most_common(n)],
        [(v / samples, f) for f, v in total.most_common(n * 4) if not _IDLE.match(f)][:n],
    )


def _short(frame: str) -> str:
    m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return frame
    path = m.group(2)
    for marker in ("site-packages/", "/apps/", "/mediarouter/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group(1)} ({path})"


# --- the report ------------------------------------------------------------------------------------


def _throughput_cell(tp: dict) -> str:
    latency = f"p50 {tp['p50']:.0f}, p99 {tp['p99']:.0f} ms"
    return f"{tp['rps']:.0f}/s ({latency}, non-2xx {tp['non2xx']}, errors {tp['errors']})"


def pct(values: list[float], p: float) -> str:
    return f"{c.percentile(values, p):.1f}" if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--samples", type=int, default=300, help="sequential creates and retrieves per side")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each throughput run")
    parser.add_argument("--setups", default="make-run,production", help="comma-separated: make-run, production")
    parser.add_argument("--profile", type=Path, help="py-spy the web processes during retrieves; raw profiles here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    parser.add_argument(
        "--production-args",
        default="",
        help="gunicorn options appended to the Procfile's web line (the last one wins), e.g. "
        "'--worker-class gthread --threads 4 --keep-alive 5'",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a setting for both setups (repeatable)"
    )
    args = parser.parse_args()
    if args.quick:
        args.samples, args.seconds = 60, 3.0
    wanted = [s.strip() for s in args.setups.split(",") if s.strip()]
    extra_env = dict(item.split("=", 1) for item in args.env)

    work = c.workdir("api")
    if not args.keep:  # registered before Procs': atexit runs it after the processes have stopped
        atexit.register(shutil.rmtree, work, ignore_errors=True)
    procs = c.Procs()
    _emu_proc, emu_url = c.start_emulator(
        procs, work / "emulator.log", args=["--job-seconds", "1", "--poll-after-ms", "1000"]
    )
    from tests.emulators.sora import API_KEY

    print(f"emulator {emu_url}; logs in {work}")
    setups: list[Setup] = []
    starters = {
        "make-run": start_make_run,
        "production": functools.partial(start_production, web_args=shlex.split(args.production_args)),
    }
    for name in wanted:
        # one setup at a time, so that the other's processes do not share the two cores meanwhile
        setup = starters[name](procs, work, emu_url, extra_env)
        print(f"{setup.name}: {setup.base}", flush=True)
        setup.figures = latencies(setup, emu_url, API_KEY, args.samples)
        setup.figures["costs"] = count_costs(setup)
        urls = [f"{setup.base}/v1/videos/{i}" for i in setup.figures["ids"]]
        headers = {"Authorization": f"Bearer {setup.token}"}
        setup.figures["tp"] = throughput(urls, headers, clients=args.clients, seconds=args.seconds)
        setup.figures["wrk"] = run_wrk(
            urls[0], f"Authorization: Bearer {setup.token}", clients=args.clients, seconds=max(int(args.seconds), 1)
        )
        if args.profile:
            setup.figures["profile"] = profile(setup, args.profile, seconds=max(args.seconds, 5), clients=4)
        stop(procs, setup)
        setups.append(setup)
    direct_urls = [f"{emu_url}/videos/{i}" for i in setups[-1].figures.get("ids_direct", [])[:50]]
    tp_direct = (
        throughput(direct_urls, {"Authorization": f"Bearer {API_KEY}"}, clients=args.clients, seconds=args.seconds)
        if direct_urls
        else None
    )

    headers = ("metric", *(s.name for s in setups), "provider (emulator)", "target")
    rows = []
    first = setups[0].figures
    for label, key, direct_key, target in (
        ("create p50 / p95 / p99 ms", "create", "create_direct", None),
        ("retrieve GET /v1/videos/{id} p50 / p95 / p99 ms", "retrieve", "retrieve_direct", RETRIEVE_TARGET_MS),
        ("retrieve GET /v1/video/generations/{id} p50 / p95 / p99", "native", "retrieve_direct", RETRIEVE_TARGET_MS),
        ("openai SDK videos.retrieve p50 / p95 / p99 ms", "sdk", "sdk_direct", None),
    ):
        if key not in first:
            continue
        cells = [" / ".join(pct(s.figures[key], p) for p in (50, 95, 99)) for s in setups]
        direct = " / ".join(pct(first[direct_key], p) for p in (50, 95, 99))
        if target:
            cells = [
                f"{cell} ({c.ok(c.percentile(s.figures[key], 50) <= target)})"
                for cell, s in zip(cells, setups, strict=True)
            ]
        rows.append((label, *cells, direct, f"p50 <= {target:g} ms" if target else ""))
    added = []
    for s in setups:
        diff = c.percentile(s.figures["create"], 50) - c.percentile(s.figures["create_direct"], 50)
        added.append(f"{diff:.1f} ms ({c.ok(diff <= CREATE_TARGET_MS)})")
    rows.append(("create p50 added over the provider's create", *added, "", f"<= {CREATE_TARGET_MS:g} ms"))
    for kind in ("retrieve", "native retrieve", "list", "create"):
        cells = []
        for s in setups:
            cost = s.figures["costs"].get(kind)
            cells.append(f"{cost['queries']} queries, {cost['round_trips']} store trips" if cost else "?")
        rows.append((f"{kind}: SQL queries, cache/throttle round trips", *cells, "", ""))
    rows.append(
        (
            f"retrieve throughput, {args.clients} threads x requests.Session",
            *(_throughput_cell(s.figures["tp"]) for s in setups),
            f"{tp_direct['rps']:.0f}/s (p99 {tp_direct['p99']:.0f} ms)" if tp_direct else "",
            "",
        )
    )
    if all(s.figures["wrk"] for s in setups):
        rows.append(
            (
                f"retrieve throughput, wrk -c{args.clients} (one URL)",
                *(
                    f"{s.figures['wrk']['rps']:.0f}/s (p50 {s.figures['wrk']['p50']}, p99 {s.figures['wrk']['p99']}, "
                    f"non-2xx {s.figures['wrk']['non2xx']})"
                    for s in setups
                ),
                "",
                "",
            )
        )
    rows.append(
        ("generations completed by the worker", *(f"{s.figures['completed']}/{args.samples}" for s in setups), "", "")
    )
    c.print_machine()
    print(f"load average before the report: {os.getloadavg()[0]:.2f}")
    settings_note = "".join(f"; {k}={v}" for k, v in extra_env.items())
    if args.production_args:
        settings_note += f"; production web + {args.production_args}"
    c.print_table(
        f"API overhead, keep-alive clients ({args.samples} samples each; make run = embedded default under "
        f"supervisord; production = the Procfile's web line on PostgreSQL + Redis{settings_note})",
        rows,
        headers=headers,
    )
    for s in setups:
        costs = s.figures["costs"]
        for kind in ("retrieve", "create"):
            if costs.get(kind):
                print(f"{s.name}, {kind}: " + " | ".join(costs[kind]["sql"]))
        raw = s.figures.get("profile")
        if raw:
            own, total = top_functions(raw)
            print(f"\n## py-spy, {s.name}, retrieve under 4 keep-alive clients ({raw})\n")
            print("| self | function | | total | function |\n|---|---|---|---|---|")
            for (a, fa), (b, fb) in zip(own, total, strict=False):
                print(f"| {a:.1%} | {fa} | | {b:.1%} | {fb} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
