"""Load drill: 200 concurrent API clients for 60 s against gunicorn with production settings.

Starts, on 127.0.0.1: a fresh PostgreSQL database (``mediarouter_bench_load``), Redis
(``BENCH_REDIS_URL``), gunicorn as the ``Procfile`` starts it (``DJANGO_ENV=production``), one
Celery worker (+beat) and the OpenAI emulator (jobs of
5 s). The clients are threads with a ``requests.Session`` each, spread over 4 processes so the
load generator is not limited by one interpreter lock. Each client loops: 10 % create, 15 % list,
75 % retrieve of a random generation. Throttles are raised via the environment.

Targets: no 5xx and no connection errors; p99 latency under 2 s.

Run:  .venv/bin/python bench/load_drill.py [--quick] [--clients 200] [--seconds 60]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

BODY = {"model": "sora-2", "prompt": "load drill", "duration": 4, "size": "1280x720"}


def client_process(base: str, token: str, ids: list[str], clients: int, seconds: float, seed: int, out) -> None:
    import requests

    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + seconds

    def client(n: int) -> None:
        rnd = random.Random(seed * 1000 + n)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        local_ids = list(ids)
        while time.monotonic() < stop_at:
            roll = rnd.random()
            t0 = time.monotonic()
            try:
                if roll < 0.10:
                    r = session.post(f"{base}/v1/video/generations", json=BODY, timeout=30)
                    if r.status_code == 201:
                        local_ids.append(r.json()["id"])
                elif roll < 0.25:
                    r = session.get(f"{base}/v1/video/generations", params={"limit": 20}, timeout=30)
                else:
                    r = session.get(f"{base}/v1/video/generations/{rnd.choice(local_ids)}", timeout=30)
                code = r.status_code
            except requests.RequestException as exc:
                with lock:
                    errors[type(exc).__name__] += 1
                continue
            with lock:
                statuses[code] += 1
                latencies.append(time.monotonic() - t0)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"statuses": dict(statuses), "errors": dict(errors), "latencies": latencies})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (50 clients, 10 s)")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--web-workers", type=int, default=0, help="gunicorn workers (default: the Procfile's)")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds = 50, 10.0

    procs = c.Procs()
    work = c.workdir("load")
    db = "mediarouter_bench_load"
    c.fresh_database(db)
    _emu, emu_url = c.start_emulator(
        procs, work / "emulator.log", args=["--job-seconds", "5", "--poll-after-ms", "2000"]
    )
    env = c.production_env(db_name=db, var_dir=work, OPENAI_BASE_URL=emu_url)
    c.flush_redis(env["REDIS_URL"])
    c.migrate(env)
    c.django_setup(env)
    from tests.emulators.sora import API_KEY

    tenant = c.create_tenant(sora_api_key=API_KEY)
    # the production setup: the Procfile's web line (gthread workers with keep-alive)
    extra = ["--workers", str(args.web_workers)] if args.web_workers else []
    _web, base = c.start_procfile_web(procs, env, work / "gunicorn.log", extra)
    c.start_worker(procs, env, work / "worker.log", concurrency=2, beat=True)
    import requests

    headers = {"Authorization": f"Bearer {tenant['token']}"}
    ids = [requests.post(f"{base}/v1/video/generations", json=BODY, headers=headers).json()["id"] for _ in range(20)]
    print(f"{args.clients} clients for {args.seconds:g} s against {base} (the Procfile's web line); logs in {work}")

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    per = [
        args.clients // args.processes + (1 if i < args.clients % args.processes else 0) for i in range(args.processes)
    ]
    workers = [
        ctx.Process(target=client_process, args=(base, tenant["token"], ids, n, args.seconds, i, out))
        for i, n in enumerate(per)
    ]
    for p in workers:
        p.start()
    results = [out.get(timeout=args.seconds + 120) for _ in workers]
    for p in workers:
        p.join()

    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    for r in results:
        statuses.update({int(k): v for k, v in r["statuses"].items()})
        errors.update(r["errors"])
        latencies += r["latencies"]
    total = sum(statuses.values())
    five = sum(v for k, v in statuses.items() if k >= 500)
    p99 = c.percentile(latencies, 99)
    rows = [
        ("requests answered", f"{total} ({total / args.seconds:.0f}/s)", "", ""),
        ("statuses", dict(sorted(statuses.items())), "", ""),
        ("5xx answers", five, "0", c.ok(five == 0)),
        ("connection errors / timeouts", dict(errors) or 0, "0", c.ok(not errors)),
        ("latency p50", f"{c.percentile(latencies, 50) * 1000:.0f} ms", "", ""),
        ("latency p99", f"{p99 * 1000:.0f} ms", "< 2000 ms", c.ok(p99 < 2)),
        ("latency max", f"{max(latencies) * 1000:.0f} ms" if latencies else "-", "", ""),
    ]
    c.print_machine()
    c.print_table(f"Load drill ({args.clients} clients, {args.seconds:g} s, the Procfile's gunicorn)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
