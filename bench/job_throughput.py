"""Job throughput: 1,000 generations in flight against an OpenAI emulator whose jobs take 20-60 s.

Starts, on 127.0.0.1: a fresh PostgreSQL database (``mediarouter_bench_jobs``), Redis db 13, one
Celery worker with ``--concurrency 2`` (two pool processes) and a separate beat, all with
``DJANGO_ENV=production`` and the engine's default timings; the OpenAI emulator runs in this
process (so it can count status calls per job and knows when each job finished). The generations
are created with ``services.generation_create`` in this process, as fast as it goes.

Reports:
- lag from the provider's completion to ``completed`` in MediaRouter (p50, p99), which includes
  the download of the video (``--video-bytes``, 1 MiB by default) and thumbnail;
- provider status calls per job against the minimum needed: a job of length L polled with the
  provider's hint h needs at least ceil(L / h) + 1 calls (one call per hint interval while it
  runs, and the one that sees it completed);
- peak RSS of the worker (main process and its pool children, from /proc every 0.5 s);
- jobs created at the provider (must be exactly one per generation) and end states.

Targets: p99 lag <= hint + 5 s; status calls <= 1.5x the minimum.

Run:  .venv/bin/python bench/job_throughput.py [--quick] [--jobs 1000] [--hint-ms 5000]
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c


def make_emulator(**kwargs):
    from tests.emulators.sora import OpenAIEmulator

    class CountingEmulator(OpenAIEmulator):
        """Counts status calls per job."""

        def __init__(self, **kw) -> None:
            super().__init__(**kw)
            self.retrieves: Counter[str] = Counter()

        def retrieve(self, request):
            self.retrieves[request.params["id"]] += 1
            return super().retrieve(request)

    return CountingEmulator(**kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (50 jobs of 5-10 s)")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--min-seconds", type=float, default=20.0)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--hint-ms", type=int, default=5000, help="the emulator's openai-poll-after-ms")
    parser.add_argument("--video-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pool", default="prefork", help="the worker's pool: prefork (processes) or threads")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each with its own pool)")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.min_seconds, args.max_seconds, args.hint_ms = 50, 5.0, 10.0, 2000
    hint = args.hint_ms / 1000

    procs = c.Procs()
    work = c.workdir("jobs")
    db = "mediarouter_bench_jobs"
    c.fresh_database(db)
    emulator = make_emulator(
        job_seconds=args.min_seconds, job_seconds_max=args.max_seconds, video_bytes=args.video_bytes
    )
    emulator.poll_after_ms = args.hint_ms
    emulator.start()
    env = c.production_env(
        db_name=db,
        var_dir=work,
        redis_url="redis://127.0.0.1:6379/13",
        OPENAI_BASE_URL=emulator.base_url,
        LOG_LEVEL="WARNING",
    )
    c.flush_redis(env["REDIS_URL"])
    c.migrate(env)
    c.django_setup(env)
    from tests.emulators.sora import API_KEY

    tenant = c.create_tenant(sora_api_key=API_KEY)
    emulator.reset()
    emulator.retrieves.clear()
    worker = c.start_worker(procs, env, work / "worker.log", concurrency=args.concurrency, beat=False, pool=args.pool)
    for n in range(1, args.workers):
        c.start_worker(
            procs, env, work / f"worker{n}.log", concurrency=args.concurrency, beat=False, pool=args.pool, name=f"w{n}"
        )
    beat_cmd = [
        c.PYTHON, "-m", "celery", "-A", "mediarouter", "beat", "--loglevel", "INFO",
        "--schedule", str(work / "beat-schedule"),
    ]  # fmt: skip
    procs.start("beat", beat_cmd, env=env, log=work / "beat.log")

    peak = {"rss": 0.0, "idle": c.tree_rss_mb(worker.pid)}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], c.tree_rss_mb(worker.pid))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    from apps.core.scoping import org_scope
    from apps.generations import services
    from apps.generations.models import TERMINAL_STATES, Generation, State

    org, user = tenant["org"], tenant["user"]
    print(f"creating {args.jobs} generations (jobs of {args.min_seconds:g}-{args.max_seconds:g} s, hint {hint:g} s)")
    t0 = time.monotonic()
    with org_scope(org):
        for i in range(args.jobs):
            services.generation_create(
                org=org,
                user=user,
                request=services.GenerationRequest(model="sora-2", prompt=f"job {i}", seconds=4, size="1280x720"),
            )
    create_s = time.monotonic() - t0
    print(f"created in {create_s:.1f} s; waiting for them to finish (logs in {work})")

    timeout = args.max_seconds + 300
    deadline = time.monotonic() + timeout
    while True:
        active = Generation.all_orgs.exclude(state__in=TERMINAL_STATES).count()
        if active == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    total_s = time.monotonic() - t0
    stop.set()
    sampler.join()

    gens = list(Generation.all_orgs.filter(organization=org))
    states = Counter(g.state for g in gens)
    lags, actual, minimum, ratios = [], 0, 0, []
    with emulator.lock:
        videos = dict(emulator.jobs)
    for g in gens:
        video = videos.get(g.provider_job_id)
        if g.state != State.COMPLETED or video is None:
            continue
        length = video.length if video.length is not None else emulator.job_seconds
        done_at = video.created + length
        lags.append(g.completed_at.timestamp() - done_at)
        calls = emulator.retrieves[g.provider_job_id]
        need = math.ceil(length / hint) + 1
        actual += calls
        minimum += need
        ratios.append(calls / need)
    stats = emulator.stats()
    emulator.stop()

    p50, p99 = c.percentile(lags, 50), c.percentile(lags, 99)
    ratio = actual / minimum if minimum else float("nan")
    completed = states.get(State.COMPLETED, 0)
    rows = [
        (
            "generations completed / failed / other",
            f"{completed} / {states.get(State.FAILED, 0)} / {len(gens) - completed - states.get(State.FAILED, 0)}",
            f"{args.jobs} / 0 / 0",
            c.ok(completed == args.jobs),
        ),
        ("jobs created at the provider", stats["jobs_created"], args.jobs, c.ok(stats["jobs_created"] == args.jobs)),
        ("time to create them (one process)", f"{create_s:.1f} s ({args.jobs / create_s:.0f}/s)", "", ""),
        ("time until all finished", f"{total_s:.0f} s", "", ""),
        ("lag provider done -> completed, p50", f"{p50:.2f} s", "", ""),
        (
            "lag provider done -> completed, p99",
            f"{p99:.2f} s",
            f"<= {hint + 5:g} s (hint + 5)",
            c.ok(p99 <= hint + 5),
        ),
        ("lag max", f"{max(lags) if lags else float('nan'):.2f} s", "", ""),
        ("status calls, total / minimum", f"{actual} / {minimum} = {ratio:.2f}x", "<= 1.5x", c.ok(ratio <= 1.5)),
        ("status calls per job vs minimum, p99", f"{c.percentile(ratios, 99):.2f}x", "", ""),
        ("all provider calls", dict(stats["calls"]), "", ""),
        ("worker RSS idle -> peak (main + pool)", f"{peak['idle']:.0f} -> {peak['rss']:.0f} MB", "", ""),
    ]
    c.print_machine()
    c.print_table(
        f"Job throughput ({args.jobs} jobs, {args.min_seconds:g}-{args.max_seconds:g} s, hint {hint:g} s, "
        f"{args.workers} worker(s) --pool {args.pool} --concurrency {args.concurrency})",
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
