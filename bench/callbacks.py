"""Completion latency with provider callbacks vs polling, against the fal emulator.

Starts, on 127.0.0.1: a fresh PostgreSQL database (``mediarouter_bench_callbacks``), Redis db 3,
gunicorn (which receives the callbacks) and one Celery worker with beat, all with
``DJANGO_ENV=production`` and the engine's default timings (polls from 2 s growing 1.5x to 30 s);
the fal emulator runs in this process (it signs and POSTs its webhooks, and knows when each job
finished). The same jobs run twice:

- **polling**: no callback URL is known (``SITE_URL`` is http on 127.0.0.1), the engine polls;
- **callbacks**: ``PROVIDER_CALLBACK_BASE_URL`` points at gunicorn, the poll interval stretches to
  ``PROVIDER_CALLBACK_POLL_SECONDS`` (60 s) and fal's signed webhook triggers the status read.

Reports the lag from the provider's completion to ``completed`` in MediaRouter (p50, p95, max;
it includes the download of the video) and the status calls per job. Figures, not a test: the
expectation is that callback lag is bounded by the worker (about a second), not the poll interval.

Run:  .venv/bin/python bench/callbacks.py [--quick] [--jobs 20] [--seconds 12]
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

REDIS_URL = "redis://127.0.0.1:6379/3"


def run(mode: str, args, emulator, tenant, base_env: dict, work: Path) -> dict:
    from apps.core.scoping import org_scope
    from apps.generations import services
    from apps.generations.models import TERMINAL_STATES, Generation, State

    extra = {"PROVIDER_CALLBACK_POLL_SECONDS": "60"}
    procs = c.Procs()
    try:
        web = c.start_gunicorn(procs, base_env, work / f"{mode}-web.log", workers=2, threads=4)
        if mode == "callbacks":
            extra["PROVIDER_CALLBACK_BASE_URL"] = web
        env = {**base_env, **extra}
        c.start_worker(procs, env, work / f"{mode}-worker.log", concurrency=2, beat=True, name=mode)
        emulator.reset()
        org, user = tenant["org"], tenant["user"]
        with org_scope(org):
            ids = [
                services.generation_create(
                    org=org,
                    user=user,
                    request=services.GenerationRequest(
                        model="fal/seedance-2.0", prompt=f"{mode} {i}", seconds=5, size="1280x720"
                    ),
                ).pk
                for i in range(args.jobs)
            ]
        deadline = time.monotonic() + args.seconds + 180
        while time.monotonic() < deadline:
            if not Generation.all_orgs.filter(pk__in=ids).exclude(state__in=TERMINAL_STATES).exists():
                break
            time.sleep(0.5)
        gens = list(Generation.all_orgs.filter(pk__in=ids))
        with emulator.lock:
            jobs = dict(emulator.jobs)
            status_calls = emulator.calls.get("status", 0)
            webhooks = list(emulator.webhook_log)
        lags = [
            g.completed_at.timestamp() - jobs[g.provider_job_id].end
            for g in gens
            if g.state == State.COMPLETED and g.provider_job_id in jobs
        ]
        return {
            "completed": sum(g.state == State.COMPLETED for g in gens),
            "lags": lags,
            "status_calls": status_calls,
            "polls": sum(g.poll_count for g in gens),
            "webhooks": len(webhooks),
            "webhooks_ok": sum(1 for w in webhooks if w["status"] == 200),
        }
    finally:
        procs.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (5 jobs of 6 s)")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=12.0, help="how long each job runs at the emulator")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.seconds = 5, 6.0

    from tests.emulators.fal import FalEmulator

    work = c.workdir("callbacks")
    db = "mediarouter_bench_callbacks"
    c.fresh_database(db)
    emulator = FalEmulator(job_seconds=args.seconds)
    emulator.start()
    env = c.production_env(
        db_name=db,
        var_dir=work,
        redis_url=REDIS_URL,
        LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        **emulator.settings(),
    )
    c.flush_redis(REDIS_URL)
    try:
        c.migrate(env)
        c.django_setup(env)
        from apps.accounts.models import Membership
        from apps.api_keys import services as key_services
        from apps.core.scoping import org_scope

        tenant = c.create_tenant()
        owner = Membership.all_orgs.get(user=tenant["user"], organization=tenant["org"])
        with org_scope(tenant["org"]):
            key_services.provider_key_create(by=owner, provider="fal", **emulator.key_fields())
        print(f"{args.jobs} fal jobs of {args.seconds:g} s, twice (logs in {work})")
        results = {mode: run(mode, args, emulator, tenant, env, work) for mode in ("polling", "callbacks")}
    finally:
        emulator.stop()
        c.flush_redis(REDIS_URL)

    rows = []
    for mode, r in results.items():
        lags, done = r["lags"], r["completed"]
        worst = max(lags, default=float("nan"))
        rows += [
            (f"{mode}: completed", f"{done} / {args.jobs}", str(args.jobs), c.ok(done == args.jobs)),
            (f"{mode}: lag done -> completed, p50", f"{c.percentile(lags, 50):.2f} s", "", ""),
            (f"{mode}: lag p95 / max", f"{c.percentile(lags, 95):.2f} / {worst:.2f} s", "", ""),
            (f"{mode}: status calls per job", f"{r['status_calls'] / max(args.jobs, 1):.1f}", "", ""),
            (f"{mode}: webhooks sent / answered 200", f"{r['webhooks']} / {r['webhooks_ok']}", "", ""),
        ]
    cb, poll = results["callbacks"]["lags"], results["polling"]["lags"]
    rows.append(
        (
            "callbacks: p95 lag bounded by the worker, not the 60 s poll interval",
            f"{c.percentile(cb, 95):.2f} s vs polling {c.percentile(poll, 95):.2f} s",
            "< 5 s",
            c.ok(bool(cb) and c.percentile(cb, 95) < 5),
        )
    )
    c.print_machine()
    c.print_table(f"Provider callbacks vs polling ({args.jobs} fal jobs of {args.seconds:g} s)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
