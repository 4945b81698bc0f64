"""API overhead: create and retrieve through MediaRouter versus directly against the same emulator.

Starts, on 127.0.0.1: a fresh PostgreSQL database (``mediarouter_bench_api``), gunicorn with
``DJANGO_ENV=production`` (PostgreSQL + Redis db 14), one Celery worker (+beat), and the OpenAI
emulator. Then, in one run:

1. latency, one client, interleaved: ``POST /v1/video/generations`` (MediaRouter) versus
   ``POST /v1/videos`` (emulator), then ``GET /v1/video/generations/<id>`` versus
   ``GET /v1/videos/<id>``; p50/p95/p99 of each and the added latency (MediaRouter minus direct);
2. retrieve throughput with 50 concurrent clients (threads, one ``requests.Session`` each);
3. the same with ``wrk`` when it is installed (a C client: shows the server's capacity when the
   load generator does not eat one of the two cores).

Targets: p50 added latency on retrieve <= 5 ms; >= 500 retrieves/s on 2 cores.

Run:  .venv/bin/python bench/api_overhead.py [--quick] [--web-workers 3] [--samples 300]
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

BODY_MR = {"model": "sora-2", "prompt": "a paper boat on a pond", "duration": 4, "size": "1280x720"}
BODY_DIRECT = {"model": "sora-2", "prompt": "a paper boat on a pond", "seconds": "4", "size": "1280x720"}


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def throughput(urls: list[str], headers: dict, *, clients: int, seconds: float) -> dict:
    import requests

    counts = {"ok": 0, "non2xx": 0, "errors": 0}
    latencies: list[float] = []
    lock = threading.Lock()
    start_evt = threading.Event()
    stop_at = [0.0]

    def client() -> None:
        session = requests.Session()
        session.headers.update(headers)
        local_lat, ok, bad, err = [], 0, 0, 0
        rnd = random.Random()
        start_evt.wait()
        while time.perf_counter() < stop_at[0]:
            url = rnd.choice(urls)
            t0 = time.perf_counter()
            try:
                r = session.get(url, timeout=30)
                if r.status_code == 200:
                    ok += 1
                else:
                    bad += 1
            except requests.RequestException:
                err += 1
            local_lat.append((time.perf_counter() - t0) * 1000)
        with lock:
            counts["ok"] += ok
            counts["non2xx"] += bad
            counts["errors"] += err
            latencies.extend(local_lat)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start_evt.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    return {
        **counts,
        "rps": counts["ok"] / elapsed,
        "p50": c.percentile(latencies, 50),
        "p99": c.percentile(latencies, 99),
    }


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
    p99 = next((line.split()[1] for line in out.splitlines() if line.strip().startswith("99%")), "?")
    return {"rps": rps, "non2xx": non2xx, "p99": p99}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--samples", type=int, default=300, help="sequential creates and retrieves per side")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the throughput run")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers (Procfile default: 3)")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.seconds = 40, 3.0

    import requests

    procs = c.Procs()
    work = c.workdir("api")
    db = "mediarouter_bench_api"
    c.fresh_database(db)
    _emu_proc, emu_url = c.start_emulator(
        procs, work / "emulator.log", args=["--job-seconds", "1", "--poll-after-ms", "1000"]
    )
    env = c.production_env(db_name=db, var_dir=work, OPENAI_BASE_URL=emu_url)
    c.flush_redis(env["REDIS_URL"])
    c.migrate(env)
    c.django_setup(env)
    from tests.emulators.sora import API_KEY

    tenant = c.create_tenant(sora_api_key=API_KEY)
    base = c.start_gunicorn(procs, env, work / "gunicorn.log", workers=args.web_workers)
    c.start_worker(procs, env, work / "worker.log", concurrency=2, beat=True)
    print(f"MediaRouter {base} (gunicorn x{args.web_workers}), emulator {emu_url}, logs in {work}")

    mr = requests.Session()
    mr.headers["Authorization"] = f"Bearer {tenant['token']}"
    direct = requests.Session()
    direct.headers["Authorization"] = f"Bearer {API_KEY}"

    # warm up both sides (connections, first-request imports in every gunicorn worker)
    for _ in range(20):
        mr.get(f"{base}/v1/models")
        direct.get(f"{emu_url}/videos", params={"limit": 1})

    create_mr, create_direct, ids_mr, ids_direct = [], [], [], []
    for _ in range(args.samples):
        ms, r = timed(lambda: direct.post(f"{emu_url}/videos", json=BODY_DIRECT))
        assert r.status_code == 200, r.text
        create_direct.append(ms)
        ids_direct.append(r.json()["id"])
        ms, r = timed(lambda: mr.post(f"{base}/v1/video/generations", json=BODY_MR))
        assert r.status_code == 201, r.text
        create_mr.append(ms)
        ids_mr.append(r.json()["id"])

    # let the worker finish the jobs, so it is idle during the retrieve measurements
    from apps.generations.models import Generation, State

    deadline = time.monotonic() + 120
    while Generation.all_orgs.exclude(state__in=[State.COMPLETED, State.FAILED]).exists():
        if time.monotonic() > deadline:
            print("warning: jobs still running after 120 s")
            break
        time.sleep(0.5)
    completed = Generation.all_orgs.filter(state=State.COMPLETED).count()

    retrieve_mr, retrieve_direct = [], []
    for i in range(args.samples):
        ms, r = timed(lambda i=i: direct.get(f"{emu_url}/videos/{ids_direct[i]}"))
        assert r.status_code == 200
        retrieve_direct.append(ms)
        ms, r = timed(lambda i=i: mr.get(f"{base}/v1/video/generations/{ids_mr[i]}"))
        assert r.status_code == 200
        retrieve_mr.append(ms)

    urls_mr = [f"{base}/v1/video/generations/{i}" for i in ids_mr]
    urls_direct = [f"{emu_url}/videos/{i}" for i in ids_direct]
    tp_mr = throughput(urls_mr, dict(mr.headers), clients=args.clients, seconds=args.seconds)
    tp_direct = throughput(urls_direct, dict(direct.headers), clients=args.clients, seconds=args.seconds)
    wrk = run_wrk(
        urls_mr[0], f"Authorization: Bearer {tenant['token']}", clients=args.clients, seconds=int(args.seconds)
    )

    rows = []
    for name, mine, theirs in (("create", create_mr, create_direct), ("retrieve", retrieve_mr, retrieve_direct)):
        for p in (50, 95, 99):
            a, b = c.percentile(mine, p), c.percentile(theirs, p)
            target = "<= 5 ms" if (name, p) == ("retrieve", 50) else ""
            okay = c.ok(a - b <= 5) if target else ""
            rows.append((f"{name} p{p} added (MR {a:.1f} ms - direct {b:.1f} ms)", f"{a - b:.1f} ms", target, okay))
    rows.append(
        (
            f"retrieve throughput, {args.clients} threads x requests.Session",
            f"{tp_mr['rps']:.0f}/s (p99 {tp_mr['p99']:.0f} ms, non-2xx {tp_mr['non2xx']}, errors {tp_mr['errors']})",
            ">= 500/s",
            c.ok(tp_mr["rps"] >= 500),
        )
    )
    rows.append(
        (
            "  same load directly against the emulator",
            f"{tp_direct['rps']:.0f}/s (p99 {tp_direct['p99']:.0f} ms)",
            "",
            "",
        )
    )
    if wrk:
        rows.append(
            (
                f"retrieve throughput, wrk -c{args.clients} (C client)",
                f"{wrk['rps']:.0f}/s (p99 {wrk['p99']}, non-2xx {wrk['non2xx']})",
                ">= 500/s",
                c.ok(wrk["rps"] >= 500 and wrk["non2xx"] == 0),
            )
        )
    rows.append(("generations completed by the worker", f"{completed}/{args.samples}", "", ""))
    c.print_machine()
    c.print_table(f"API overhead (gunicorn x{args.web_workers}, production settings, {args.samples} samples)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
