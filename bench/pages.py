"""Pages: Gallery and Usage render time and query count with 10,000 generations in the org.

Runs in this process with production settings against a fresh PostgreSQL database
(``mediarouter_bench_pages``) and Redis db 12, through ``django.test.Client`` (a logged-in owner)
and ``CaptureQueriesContext``. The organization gets 1,000 generations first, then 10,000 in
all (three members, several models and states, spread over three months, each with its ledger
entries), and each page is measured at both sizes: the query count must not grow with the number
of rows (no N+1), and the render time should stay flat (pagination).

The pages are found by URL name (``gallery``/``generation-gallery``, ``usage``/``generation-usage``
under ``/o/<slug>/``); a page that does not exist yet is reported as missing.

Run:  .venv/bin/python bench/pages.py [--quick] [--rows 10000] [--repeat 10]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

PAGES = {"Gallery": ("generation-gallery", "gallery"), "Usage": ("generation-usage", "usage")}
TARGET_MS = 300


def fill(org, users, count: int, start_index: int) -> None:
    """``count`` finished generations with their ledger entries (bulk inserts)."""
    from django.utils import timezone

    from apps.billing.models import EntryKind, UsageEntry
    from apps.core.ids import public_id
    from apps.generations.models import Generation, State

    rnd = random.Random(start_index)
    models = [("sora", "sora-2", Decimal("0.10")), ("sora", "sora-2-pro", Decimal("0.30"))]
    now = timezone.now()
    batch = 1000
    for offset in range(0, count, batch):
        gens = []
        for i in range(offset, min(offset + batch, count)):
            provider, model, price = rnd.choice(models)
            seconds = rnd.choice([4, 8, 12])
            created = now - timedelta(days=rnd.uniform(0, 90))
            state = rnd.choices([State.COMPLETED, State.FAILED, State.CANCELED], weights=[90, 8, 2])[0]
            gid = public_id("video")
            gens.append(
                Generation(
                    organization=org,
                    public_id=gid,
                    user=rnd.choice(users),
                    provider=provider,
                    model=model,
                    prompt=f"bench video {start_index + i}: a paper boat on a pond at dawn, cinematic",
                    seconds=seconds,
                    size="1280x720",
                    state=state,
                    progress=100,
                    provider_job_id=f"video_{gid}",
                    deadline_at=created + timedelta(hours=2),
                    estimated_cost=price * seconds,
                    final_cost=price * seconds if state == State.COMPLETED else None,
                    video_file=f"orgs/{org.slug}/videos/{gid}.mp4" if state == State.COMPLETED else "",
                    thumbnail_file=f"orgs/{org.slug}/thumbnails/{gid}.webp" if state == State.COMPLETED else "",
                    content_type="video/mp4",
                    bytes=1_000_000 if state == State.COMPLETED else None,
                    error_code="moderation_blocked" if state == State.FAILED else "",
                    completed_at=created + timedelta(seconds=60),
                )
            )
        Generation.all_orgs.bulk_create(gens)
        # created_at is auto_now_add: spread it over three months afterwards
        for g in gens:
            g.created_at = g.deadline_at - timedelta(hours=2)
        Generation.all_orgs.bulk_update(gens, ["created_at"])
        entries = []
        for g in gens:
            common = dict(
                organization=org,
                user=g.user,
                generation=g,
                provider=g.provider,
                model=g.model,
                seconds=g.seconds,
                period=g.created_at.date().replace(day=1),
            )
            entries.append(UsageEntry(kind=EntryKind.HOLD, amount=g.estimated_cost, **common))
            entries.append(UsageEntry(kind=EntryKind.RELEASE, amount=-g.estimated_cost, **common))
            if g.state == State.COMPLETED:
                entries.append(UsageEntry(kind=EntryKind.CHARGE, amount=g.final_cost, **common))
        UsageEntry.all_orgs.bulk_create(entries)
        for e in entries:
            e.created_at = e.generation.created_at
        UsageEntry.all_orgs.bulk_update(entries, ["created_at"])


def measure(client, url: str, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm up (template loading, first queries)
    times, queries, sql_ms, status = [], 0, 0.0, None
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
        queries = len(ctx.captured_queries)
        sql_ms = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
    return {"status": status, "p50": c.percentile(times, 50), "max": max(times), "queries": queries, "sql_ms": sql_ms}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (200 then 1,000 rows)")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    first = 1000
    if args.quick:
        first, args.rows, args.repeat = 200, 1000, 3

    work = c.workdir("pages")
    db = "mediarouter_bench_pages"
    c.fresh_database(db)
    env = c.production_env(db_name=db, var_dir=work, redis_url="redis://127.0.0.1:6379/12")
    c.flush_redis(env["REDIS_URL"])
    c.migrate(env)
    c.collectstatic(env)
    c.django_setup(env)
    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    from apps.accounts.models import Membership, Role, User
    from apps.core.ids import public_id
    from apps.core.scoping import scopes_disabled

    tenant = c.create_tenant()
    org, owner = tenant["org"], tenant["user"]
    users = [owner]
    with scopes_disabled():
        for n in range(2):
            u = User.objects.create_user(f"member{n}-{org.slug}@example.com", "x" * 16, name=f"Member {n}")
            Membership.all_orgs.create(organization=org, user=u, role=Role.MEMBER, public_id=public_id("mem"))
            users.append(u)

    urls = {}
    for label, names in PAGES.items():
        for name in names:
            try:
                urls[label] = reverse(name, kwargs={"org_slug": org.slug})
                break
            except NoReverseMatch:
                continue

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(owner)
    results: dict[tuple[str, int], dict] = {}
    filled = 0
    for size in (first, args.rows):
        print(f"filling the organization up to {size} generations")
        fill(org, users, size - filled, filled)
        filled = size
        for label, url in urls.items():
            results[(label, size)] = measure(client, url, args.repeat)

    rows = []
    for label in PAGES:
        if label not in urls:
            rows.append((f"{label} page", f"MISSING: no URL named {' or '.join(PAGES[label])}", "", "NO"))
            continue
        small, big = results[(label, first)], results[(label, args.rows)]
        for size, r in ((first, small), (args.rows, big)):
            rows.append(
                (
                    f"{label} {urls[label]} @ {size} rows: HTTP {r['status']}",
                    f"p50 {r['p50']:.0f} ms (max {r['max']:.0f}), {r['queries']} queries, SQL {r['sql_ms']:.0f} ms",
                    f"< {TARGET_MS} ms" if size == args.rows else "",
                    c.ok(r["status"] == 200 and r["p50"] < TARGET_MS) if size == args.rows else "",
                )
            )
        rows.append(
            (
                f"{label}: queries independent of rows (no N+1)",
                f"{small['queries']} -> {big['queries']}",
                "equal",
                c.ok(small["queries"] == big["queries"]),
            )
        )
    c.print_machine()
    c.print_table(f"Pages ({args.rows} generations in the org, {args.repeat} renders each)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
