"""The API throttle's counting: cost per request and exactness under concurrency, on both stores.

In this process with production settings (Redis db 10 unless ``--redis-url``, flushed before and
after; no database needed): ``apps.core.throttling.hit`` with a request's two counters (token,
organization) against Redis (the Lua script through django-redis) and against the SQLite counter
file of the embedded default (in a temporary directory).

1. one client: microseconds per counted request;
2. ``--procs`` processes (forked, as gunicorn's workers are) hitting the same counters as fast as
   they can, with a limit of half the hits: exactly the limit must pass (a read-then-write store,
   as the file cache was, lets more through), and the aggregate rate.

Run:  .venv/bin/python bench/throttle.py [--quick] [--hits 5000] [--procs 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

_store = None  # the store under test, inherited by forked children


def _counters(limit: int):
    from apps.core import throttling

    return [
        throttling.Counter("throttle_api_token_read_bench", limit, 3600),
        throttling.Counter("throttle_api_org_read_bench", 10 * limit, 3600),
    ]


def _hits(n_limit: tuple[int, int]) -> tuple[int, float]:
    """``n`` counted requests on the shared counters; (allowed, seconds)."""
    n, limit = n_limit
    counters = _counters(limit)
    allowed = 0
    started = time.perf_counter()
    for _ in range(n):
        counts = _store.hit(counters, time.time())
        allowed += len(counts) == len(counters) and counts[0] <= limit
    return allowed, time.perf_counter() - started


def main() -> int:
    global _store
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--hits", type=int, default=5000, help="per client")
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10", help="flushed before and after")
    args = parser.parse_args()
    if args.quick:
        args.hits = 500

    work = c.workdir("throttle")
    env = c.production_env(db_name="mediarouter_bench_unused", var_dir=work, redis_url=args.redis_url)
    c.flush_redis(env["REDIS_URL"])
    c.django_setup(env)
    from apps.core import throttling

    stores = {
        "Redis (Lua via django-redis)": throttling.RedisCounters(),
        "SQLite counter file": throttling.SqliteCounters(work / "throttle.sqlite3"),
    }
    rows = []
    try:
        for name, store in stores.items():
            _store = store
            store.clear()
            allowed, seconds = _hits((args.hits, args.hits))
            assert allowed == args.hits
            rows.append((f"{name}: one client", f"{seconds / args.hits * 1e6:.0f} µs per request", "", ""))
            store.clear()
            total = args.hits * args.procs
            limit = total // 2
            with multiprocessing.get_context("fork").Pool(args.procs) as pool:
                started = time.perf_counter()
                results = pool.map(_hits, [(args.hits, limit)] * args.procs)
                elapsed = time.perf_counter() - started
            passed = sum(a for a, _s in results)
            rows.append(
                (
                    f"{name}: {args.procs} processes x {args.hits}, limit {limit}",
                    f"{passed} passed, {total / elapsed:.0f} requests/s together",
                    f"exactly {limit}",
                    c.ok(passed == limit),
                )
            )
            store.clear()
    finally:
        c.flush_redis(env["REDIS_URL"])
        shutil.rmtree(work, ignore_errors=True)
    c.print_machine()
    c.print_table("API throttle counting (apps.core.throttling)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
