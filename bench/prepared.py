"""Prepared queries on and off: what ``MEDIAROUTER_PREPARED_QUERIES`` buys on an API retrieve.

Runs in this process with production settings against a fresh PostgreSQL database
(``mediarouter_bench_prepared``) and Redis (db 10 unless ``--redis-url``), through
``django.test.Client`` with an API token: it creates sandbox videos through the API (no worker:
they stay queued, which is what a polling client sees), then retrieves them on both API shapes,
alternating rounds with the setting off (the default: the plain ORM) and on
(``apps.core.prepared.PreparedGet``), so that drift on a shared machine hits both alike. Wall and
CPU time per request, and the queries of one request:

- with the token's identity cached (``API_TOKEN_CACHE_SECONDS=5``, the default): the generation
  read is the only prepared query on the path;
- with the identity cache off (``API_TOKEN_CACHE_SECONDS=0``): the token lookup is one too;
- ``selectors.generation_get`` alone, in the organization's scope.

No target of its own: the API target is "p50 added latency <= 5 ms" (bench/api_overhead.py).

Run:  .venv/bin/python bench/prepared.py [--quick] [--rounds 10] [--per-round 100]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

MODES = {"off (ORM)": False, "on (prepared)": True}


def run_rounds(fn, *, rounds: int, per_round: int) -> dict[str, dict[str, list[float]]]:
    """``fn()`` ``per_round`` times per mode per round, modes alternating; wall and CPU ms."""
    from django.conf import settings

    out = {mode: {"wall": [], "cpu": []} for mode in MODES}
    for _ in range(rounds):
        for mode, on in MODES.items():
            settings.MEDIAROUTER_PREPARED_QUERIES = on
            fn()  # warm: the first call on a thread compiles the prepared query
            for _ in range(per_round):
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                out[mode]["wall"].append((time.perf_counter() - w0) * 1000)
                out[mode]["cpu"].append((time.process_time() - c0) * 1000)
    return out


def queries_of(fn, on: bool) -> int:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.MEDIAROUTER_PREPARED_QUERIES = on
    fn()
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--videos", type=int, default=50)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10", help="flushed before and after")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.per_round, args.videos = 2, 20, 5

    work = c.workdir("prepared")
    db = "mediarouter_bench_prepared"
    c.fresh_database(db)
    env = c.production_env(db_name=db, var_dir=work, redis_url=args.redis_url)
    c.flush_redis(env["REDIS_URL"])
    try:
        c.migrate(env)
        c.django_setup(env)
        rows = measure(args)
    finally:
        c.flush_redis(env["REDIS_URL"])  # the creates' queued first steps: no worker takes them
        shutil.rmtree(work, ignore_errors=True)
    c.print_machine()
    c.print_table(
        f"Prepared queries off/on: {args.rounds} rounds x {args.per_round} requests per mode, in-process, "
        "production settings (PostgreSQL + Redis)",
        rows,
        headers=("path", "mode", "wall p50 / p95 (ms)", "CPU p50 (ms)", "queries"),
    )
    return 0


def measure(args) -> list[tuple]:
    import itertools

    from django.conf import settings
    from django.test import Client

    from apps.core.scoping import org_scope
    from apps.generations import selectors

    tenant = c.create_tenant()
    client = Client(HTTP_HOST="127.0.0.1", headers={"Authorization": f"Bearer {tenant['token']}"})
    body = {"model": "sandbox-video", "prompt": "a paper boat on a pond", "duration": 2, "size": "1280x720"}
    ids = []
    for _ in range(args.videos):
        r = client.post("/v1/video/generations", body, content_type="application/json")
        assert r.status_code == 201, r.content
        ids.append(r.json()["id"])
    cycle = itertools.cycle(ids)

    def native():
        r = client.get(f"/v1/video/generations/{next(cycle)}")
        assert r.status_code == 200, r.content

    def openai_shape():
        r = client.get(f"/v1/videos/{next(cycle)}")
        assert r.status_code == 200, r.content

    def selector():
        with org_scope(tenant["org"]):
            assert selectors.generation_get(org=tenant["org"], public_id=next(cycle)) is not None

    paths = [
        ("GET /v1/video/generations/{id}, identity cached", native, 5.0),
        ("GET /v1/videos/{id}, identity cached", openai_shape, 5.0),
        ("GET /v1/videos/{id}, identity cache off", openai_shape, 0.0),
        ("selectors.generation_get alone", selector, 5.0),
    ]
    rows = []
    for label, fn, identity_ttl in paths:
        settings.API_TOKEN_CACHE_SECONDS = identity_ttl
        figures = run_rounds(fn, rounds=args.rounds, per_round=args.per_round)
        p50s = {}
        for mode, on in MODES.items():
            wall, cpu = figures[mode]["wall"], figures[mode]["cpu"]
            p50s[mode] = c.percentile(wall, 50)
            rows.append(
                (
                    label,
                    mode,
                    f"{p50s[mode]:.2f} / {c.percentile(wall, 95):.2f}",
                    f"{c.percentile(cpu, 50):.2f}",
                    queries_of(fn, on),
                )
            )
        off, on = p50s["off (ORM)"], p50s["on (prepared)"]
        rows.append((label, "on saves", f"{off - on:.2f} ms p50 ({(off - on) / off:.0%})", "", ""))
    settings.API_TOKEN_CACHE_SECONDS = 5.0
    return rows


if __name__ == "__main__":
    sys.exit(main())
