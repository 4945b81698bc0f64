"""Pages: Gallery and Usage render time and query count with 100,000 generations in the org.

Runs in this process with production settings against a fresh PostgreSQL database
(``mediarouter_bench_pages``) and Redis (``BENCH_REDIS_URL``), through ``django.test.Client`` (a
logged-in owner) and ``CaptureQueriesContext``. The organization is filled to 1,000, 10,000 and
``--rows`` (100,000) generations (three members, several models and states, spread over three
months, each with its ledger entries; ``bulk_create`` in batches, about a minute for 100,000), and
each page is measured at every size: the query count must not grow with the number of rows (no
N+1), and the render time must stay under 100 ms at the largest size. ``--explain`` prints
``EXPLAIN ANALYZE`` of each page's slowest queries there.

The pages are found by URL name (``gallery``/``generation-gallery``, ``usage``/``generation-usage``
under ``/o/<slug>/``); a page that does not exist yet is reported as missing.

Run:  .venv/bin/python bench/pages.py [--quick] [--rows 100000] [--repeat 10] [--explain]
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

PAGES = {
    "Gallery": ("generation-gallery", "gallery"),
    "Usage": ("generation-usage", "usage"),  # its default range: this month so far
    "Usage, last 30 days": ("generation-usage", "usage"),
}
QUERIES = {"Usage, last 30 days": lambda today: f"?start={today - timedelta(days=29):%Y-%m-%d}&end={today:%Y-%m-%d}"}
TARGET_MS = 100


def fill(org, users, count: int, start_index: int) -> None:
    """``count`` finished generations with their ledger entries: ``bulk_create`` in batches of
    5,000, then two statements that spread ``created_at`` (``auto_now_add`` on insert) over the
    three months the rows were made for. 100,000 rows take about a minute on 2 cores."""
    from django.db.models import F, OuterRef, Subquery
    from django.utils import timezone

    from apps.billing.models import EntryKind, UsageEntry
    from apps.core.ids import public_id
    from apps.generations import media
    from apps.generations.models import Generation, State, reported_cost

    rnd = random.Random(start_index)
    models = [("sora", "sora-2", Decimal("0.10")), ("sora", "sora-2-pro", Decimal("0.30"))]
    now = timezone.now()
    batch = 5000
    first_pk = None
    for offset in range(0, count, batch):
        gens = []
        for i in range(offset, min(offset + batch, count)):
            provider, model, price = rnd.choice(models)
            seconds = rnd.choice([4, 8, 12])
            created = now - timedelta(days=rnd.uniform(0, 90))
            state = rnd.choices([State.COMPLETED, State.FAILED, State.CANCELED], weights=[90, 8, 2])[0]
            gid = public_id("video")
            # what a real completed video carries: the probe's figures (5 % not as asked) and, for
            # one of the two models, the supplier's reported cost; the columns as the writers derive them
            checked = {}
            if state == State.COMPLETED:
                short = rnd.random() < 0.05
                found = [{"field": "duration", "asked": seconds, "delivered": seconds - 1}] if short else []
                probed = {"duration": float(seconds), "width": 1280, "height": 720, "has_audio": True}
                usage = {"cost_usd": str(price * seconds)} if model == "sora-2-pro" else {}
                checked = {
                    **media.probe_fields(probed, found),
                    "provider_usage": usage,
                    "provider_cost": reported_cost(usage),
                }
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
                    deadline_at=created + timedelta(hours=2),  # created_at is derived from it below
                    estimated_cost=price * seconds,
                    final_cost=price * seconds if state == State.COMPLETED else None,
                    video_file=f"orgs/{org.slug}/videos/{gid}.mp4" if state == State.COMPLETED else "",
                    thumbnail_file=f"orgs/{org.slug}/thumbnails/{gid}.webp" if state == State.COMPLETED else "",
                    content_type="video/mp4",
                    bytes=1_000_000 if state == State.COMPLETED else None,
                    error_code="moderation_blocked" if state == State.FAILED else "",
                    completed_at=created + timedelta(seconds=60),
                    **checked,
                )
            )
        Generation.all_orgs.bulk_create(gens, batch_size=batch)
        first_pk = gens[0].pk if first_pk is None else first_pk
        entries = []
        for g in gens:
            common = dict(
                organization=org,
                user=g.user,
                generation=g,
                provider=g.provider,
                model=g.model,
                seconds=g.seconds,
                period=(g.deadline_at - timedelta(hours=2)).date().replace(day=1),
                video_day=(g.deadline_at - timedelta(hours=2)).date(),
            )
            entries.append(UsageEntry(kind=EntryKind.HOLD, amount=g.estimated_cost, **common))
            entries.append(UsageEntry(kind=EntryKind.RELEASE, amount=-g.estimated_cost, **common))
            if g.state == State.COMPLETED:
                entries.append(UsageEntry(kind=EntryKind.CHARGE, amount=g.final_cost, **common))
        UsageEntry.all_orgs.bulk_create(entries, batch_size=batch)
    new_gens = Generation.all_orgs.filter(organization=org, pk__gte=first_pk)
    new_gens.update(created_at=F("deadline_at") - timedelta(hours=2))
    UsageEntry.all_orgs.filter(organization=org, generation_id__gte=first_pk).update(
        created_at=Subquery(Generation.all_orgs.filter(pk=OuterRef("generation_id")).values("created_at")[:1])
    )
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum would have done by now: statistics,
            for table in ("generations_generation", "generations_usageentry"):  # the visibility map
                cursor.execute(f"VACUUM (ANALYZE) {table}")


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
        slowest = sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))[:3]
    return {
        "status": status,
        "p50": c.percentile(times, 50),
        "max": max(times),
        "queries": queries,
        "sql_ms": sql_ms,
        "slowest": [(float(q["time"]) * 1000, q["sql"]) for q in slowest],
    }


def explain(sql: str) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of a captured query (PostgreSQL; the SQL as Django logged it,
    parameters inlined by psycopg), its plan lines with the timing."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (200, 1,000 then 5,000 rows)")
    parser.add_argument("--rows", type=int, default=100_000, help="the largest size measured")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE the slowest queries at the largest size"
    )
    args = parser.parse_args()
    sizes = [1000, 10_000, args.rows]
    if args.quick:
        sizes, args.repeat = [200, 1000, 5000], 3
    sizes = sorted(set(sizes))

    work = c.workdir("pages")
    db = "mediarouter_bench_pages"
    c.fresh_database(db)
    env = c.production_env(db_name=db, var_dir=work)
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
                if label in QUERIES:
                    from django.utils import timezone

                    urls[label] += QUERIES[label](timezone.localdate())
                break
            except NoReverseMatch:
                continue

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(owner)
    results: dict[tuple[str, int], dict] = {}
    filled = 0
    for size in sizes:
        started = time.perf_counter()
        fill(org, users, size - filled, filled)
        print(f"filled the organization up to {size} generations in {time.perf_counter() - started:.1f} s", flush=True)
        filled = size
        for label, url in urls.items():
            results[(label, size)] = measure(client, url, args.repeat)

    largest = sizes[-1]
    rows = []
    for label in PAGES:
        if label not in urls:
            rows.append((f"{label} page", f"MISSING: no URL named {' or '.join(PAGES[label])}", "", "NO"))
            continue
        for size in sizes:
            r = results[(label, size)]
            rows.append(
                (
                    f"{label} {urls[label]} @ {size:,} rows: HTTP {r['status']}",
                    f"p50 {r['p50']:.0f} ms (max {r['max']:.0f}), {r['queries']} queries, SQL {r['sql_ms']:.0f} ms",
                    f"< {TARGET_MS} ms" if size == largest else "",
                    c.ok(r["status"] == 200 and r["p50"] < TARGET_MS) if size == largest else "",
                )
            )
        counts = [results[(label, size)]["queries"] for size in sizes]
        rows.append(
            (
                f"{label}: queries independent of rows (no N+1)",
                " -> ".join(str(n) for n in counts),
                "equal",
                c.ok(len(set(counts)) == 1),
            )
        )
    c.print_machine()
    c.print_table(f"Pages ({largest:,} generations in the org, {args.repeat} renders each, PostgreSQL)", rows)
    for label in urls:
        print(f"\n{label} @ {largest:,}: slowest queries of the last render")
        for ms, sql in results[(label, largest)]["slowest"]:
            print(f"- {ms:.1f} ms: {sql[:300]}")
            if args.explain:
                print("  " + explain(sql).replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
