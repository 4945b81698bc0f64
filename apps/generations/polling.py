"""The batched poll step: every queued or running job whose ``next_poll_at`` has passed, polled
in batches instead of one Celery message per poll.

One Celery message per status call cost about 12 ms of a pool child's time (publish, fetch,
dispatch, ack, two queries) and capped a two-core worker at ~120 polls/s (bench/RESULTS.md). Here
one task (``generations.poll_due``, sent by beat every ``GENERATION_POLL_STEP_INTERVAL_SECONDS``
and re-sent by itself while a full batch comes back) does, for up to
``GENERATION_POLL_BATCH_SIZE`` jobs:

1. **claim** them (:func:`claim_due`): ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, a
   conditional ``UPDATE … RETURNING`` on SQLite, moving each row's ``next_poll_at`` to a lease
   (``GENERATION_POLL_LEASE_SECONDS``), so two steps never poll the same job and a job whose step
   died is due again when the lease runs out;
2. **ask** the providers concurrently (:func:`status_calls`): a thread pool of
   ``GENERATION_POLL_CONCURRENCY``, at most ``GENERATION_POLL_SUPPLIER_CONCURRENCY`` calls in flight
   and ``GENERATION_POLL_SUPPLIER_RATE`` calls per second per supplier (``<SLUG>_POLL_CONCURRENCY``
   and ``<SLUG>_POLL_RATE`` override them for one supplier; both per worker process); a job over
   the rate is not called but due again when the supplier has room;
3. **write** the answers (:func:`write_back`): each answer is decided by ``engine.decide_poll``,
   the same decision as the single-job step; the common one (still running, same state, no webhook
   event) is written for the whole batch with one UPDATE per state, and every other one (finished,
   failed, canceled, an error, a state change) through ``engine.apply_poll``, so downloads,
   releases, fallbacks, events and metrics happen exactly as they did.

The database stays the source of truth: nothing about a poll lives in the broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Case, CharField, DateTimeField, F, IntegerField, Min, Value, When
from django.utils import timezone

from apps.core.prepared import update_returning
from apps.core.scoping import org_scope
from apps.generations import engine, routing
from apps.generations.models import POLLING_STATES, Generation
from apps.providers import registry
from apps.providers.base import JobStatus, ProviderError, VideoProvider

logger = logging.getLogger(__name__)


def _setting(name: str) -> float:
    return float(getattr(settings, name))


# --- 1. claim ----------------------------------------------------------------------------------


def _due(now: datetime):
    return Generation.all_orgs.filter(state__in=POLLING_STATES, next_poll_at__lte=now).order_by("next_poll_at")


def claim_due(*, limit: int, now: datetime | None = None) -> list[Generation]:
    """Claim up to ``limit`` due polling jobs for this step (across organizations) and return them
    with their key and organization loaded. A claimed row's ``next_poll_at`` is the lease's end:
    no other claimer sees it as due until then."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=_setting("GENERATION_POLL_LEASE_SECONDS"))
    related = ("provider_key", "organization")
    if connection.features.has_select_for_update_skip_locked:
        # PostgreSQL: rows another claimer holds are skipped, not waited for
        with transaction.atomic():
            rows = list(_due(now).select_for_update(skip_locked=True, of=("self",)).select_related(*related)[:limit])
            if rows:
                Generation.all_orgs.filter(pk__in=[g.pk for g in rows]).update(next_poll_at=lease)
        for gen in rows:
            gen.next_poll_at = lease
        return rows
    # SQLite (one writer at a time): one conditional UPDATE; a row another claimer took meanwhile
    # is no longer due, so the WHERE leaves it out and RETURNING does not name it
    candidates = list(_due(now).values_list("pk", flat=True)[:limit])
    if not candidates:
        return []
    won = update_returning(_due(now).filter(pk__in=candidates).order_by(), ["id"], next_poll_at=lease)
    return list(Generation.all_orgs.filter(pk__in=[pk for (pk,) in won]).select_related(*related).order_by("pk"))


# --- 2. ask, within each supplier's limits --------------------------------------------------------


class SupplierLimits:
    """Per-supplier concurrency (a semaphore) and rate (a token bucket) for status calls, shared
    by every poll step of this process (a threads pool runs several at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # slug -> (tokens, at)

    @staticmethod
    def concurrency(slug: str) -> int:
        default = int(_setting("GENERATION_POLL_SUPPLIER_CONCURRENCY"))
        return max(int(float(registry.provider_setting(slug, "POLL_CONCURRENCY", str(default)))), 1)

    @staticmethod
    def rate(slug: str) -> float:
        """Status calls per second to ``slug`` (0: no limit)."""
        default = _setting("GENERATION_POLL_SUPPLIER_RATE")
        return max(float(registry.provider_setting(slug, "POLL_RATE", str(default))), 0.0)

    def semaphore(self, slug: str) -> threading.BoundedSemaphore:
        with self._lock:
            if slug not in self._semaphores:
                self._semaphores[slug] = threading.BoundedSemaphore(self.concurrency(slug))
            return self._semaphores[slug]

    def take(self, slug: str, *, clock=time.monotonic) -> float:
        """Take one call from ``slug``'s budget: 0.0 when allowed now, else the seconds until the
        next call is (nothing is taken then). Bursts up to one second's worth of calls."""
        rate = self.rate(slug)
        if rate <= 0:
            return 0.0
        with self._lock:
            now = clock()
            tokens, at = self._buckets.get(slug, (max(rate, 1.0), now))
            tokens = min(max(rate, 1.0), tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[slug] = (tokens - 1.0, now)
                return 0.0
            self._buckets[slug] = (tokens, now)
            return (1.0 - tokens) / rate

    def reset(self) -> None:
        with self._lock:
            self._semaphores.clear()
            self._buckets.clear()


LIMITS = SupplierLimits()


def _adapters(gens: Iterable[Generation]) -> dict[int, VideoProvider | ProviderError]:
    """Each job's adapter (or why it has none), built once per supplier and key: a key is
    decrypted once per batch, not once per job."""
    built: dict[tuple[str, int | None], VideoProvider | ProviderError] = {}
    out: dict[int, VideoProvider | ProviderError] = {}
    for gen in gens:
        key = (gen.provider, gen.provider_key_id)
        if key not in built:
            try:
                built[key] = engine.adapter_for(gen)
            except ProviderError as exc:
                built[key] = exc
        out[gen.pk] = built[key]
    return out


def _interleaved(gens: list[Generation]) -> list[Generation]:
    """Round-robin over suppliers, so a slow or limited supplier's jobs do not take every thread
    while the others wait behind them."""
    by_supplier: dict[str, list[Generation]] = defaultdict(list)
    for gen in gens:
        by_supplier[gen.provider].append(gen)
    queues = list(by_supplier.values())
    out: list[Generation] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def status_calls(
    gens: list[Generation], *, limits: SupplierLimits = LIMITS
) -> tuple[dict[int, JobStatus | ProviderError], dict[int, float]]:
    """Ask each job's provider for its status, concurrently within the limits. Returns the
    answers by job id, and the jobs not asked (over their supplier's rate) with the seconds until
    their supplier has room."""
    adapters = _adapters(gens)
    answers: dict[int, JobStatus | ProviderError] = {}
    deferred: dict[int, float] = {}
    calls: list[tuple[Generation, VideoProvider]] = []
    for gen in _interleaved(gens):
        adapter = adapters[gen.pk]
        if isinstance(adapter, ProviderError):
            answers[gen.pk] = adapter
            continue
        wait = limits.take(gen.provider)
        if wait > 0:
            deferred[gen.pk] = wait
            continue
        calls.append((gen, adapter))

    def call(gen: Generation, adapter: VideoProvider) -> JobStatus | ProviderError:
        try:
            with limits.semaphore(gen.provider):
                return engine.status_call(adapter, gen)
        finally:
            connections.close_all()  # this thread's own connections, if an adapter opened one

    if calls:
        workers = min(int(_setting("GENERATION_POLL_CONCURRENCY")), len(calls))
        with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="poll") as pool:
            futures = [(gen.pk, pool.submit(call, gen, adapter)) for gen, adapter in calls]
            for pk, future in futures:
                answers[pk] = future.result()
    return answers, deferred


# --- 3. write back ---------------------------------------------------------------------------------


def _per_row(fields: dict[int, dict], name: str, output_field):
    """One column's values for one UPDATE of many rows: a constant when they agree (the usual
    case: same hint, same status), else ``CASE WHEN id IN (…) THEN …`` with one branch per
    distinct value (not per row: building a branch per row costs more than the UPDATE)."""
    by_value: dict[object, list[int]] = defaultdict(list)
    for pk, f in fields.items():
        by_value[f[name]].append(pk)
    if len(by_value) == 1:
        return Value(next(iter(by_value)), output_field=output_field)
    whens = [When(pk__in=pks, then=Value(value, output_field=output_field)) for value, pks in by_value.items()]
    return Case(*whens, output_field=output_field)


def _write_quiet(gens: list[Generation], results: dict[int, engine.PollResult]) -> None:
    """One UPDATE per state for every still-running job whose state did not change: the columns
    ``transition()`` would write (engine.running_fields), each row's own values."""
    by_state: dict[str, list[Generation]] = defaultdict(list)
    for gen in gens:
        by_state[gen.state].append(gen)
    now = timezone.now()
    for state, group in by_state.items():
        fields = {g.pk: engine.running_fields(results[g.pk]) for g in group}
        for pk, f in fields.items():  # one clock for the batch: the same delay is the same value
            f["next_poll_at"] = now + timedelta(seconds=results[pk].delay)
        Generation.all_orgs.filter(pk__in=list(fields), state=state).update(
            progress=_per_row(fields, "progress", IntegerField(null=True)),
            provider_status=_per_row(fields, "provider_status", CharField()),
            next_poll_at=_per_row(fields, "next_poll_at", DateTimeField()),
            poll_count=F("poll_count") + 1,
            transient_errors=0,
            updated_at=now,
        )
        for gen in group:  # as transition() leaves the instance
            f = fields[gen.pk]
            gen.progress, gen.provider_status, gen.next_poll_at = f["progress"], f["provider_status"], f["next_poll_at"]
            gen.poll_count, gen.transient_errors, gen.updated_at = gen.poll_count + 1, 0, now


def _orgs_without_endpoints(org_ids: set[int]) -> set[int]:
    """Organizations with no enabled webhook endpoint: a progress step there records no event
    (webhooks.services.video_event returns before writing anything), so it is a quiet write."""
    from apps.webhooks import selectors as webhook_selectors

    return {org_id for org_id in org_ids if not webhook_selectors.active_endpoints(org_id=org_id)}


def write_back(gens: list[Generation], answers: dict[int, JobStatus | ProviderError]) -> dict[int, engine.PollResult]:
    """Decide each answer (engine.decide_poll) and write it: the quiet ones in bulk, the others
    through engine.apply_poll in their organization's scope. Returns the decisions by job id."""
    results = {gen.pk: engine.decide_poll(gen, answers[gen.pk]) for gen in gens if gen.pk in answers}
    silent = _orgs_without_endpoints({g.organization_id for g in gens if g.pk in results})
    quiet = [
        g
        for g in gens
        if g.pk in results and engine.writes_quietly(g, results[g.pk], events_wanted=g.organization_id not in silent)
    ]
    if quiet:
        _write_quiet(quiet, results)
    # the supplier answered: close its circuits once per supplier and key, not once per job
    answered = {
        (g.provider, g.provider_key.public_id if g.provider_key_id else None)
        for g in gens
        if g.pk in results and results[g.pk].error is None
    }
    for supplier, key_id in answered:
        routing.circuit_record(supplier, key_id, ok=True)
    quiet_ids = {g.pk for g in quiet}
    for gen in gens:
        if gen.pk in results and gen.pk not in quiet_ids:
            with org_scope(gen.organization):
                engine.apply_poll(gen, results[gen.pk], record_success=False)
    return results


def _defer(deferred: dict[int, float]) -> None:
    """Jobs over their supplier's rate: due again once it has room (one UPDATE per wait)."""
    by_wait: dict[float, list[int]] = defaultdict(list)
    for pk, wait in deferred.items():
        by_wait[round(wait, 1)].append(pk)
    for wait, pks in by_wait.items():
        Generation.all_orgs.filter(pk__in=pks, state__in=POLLING_STATES).update(next_poll_at=engine.due_in(wait))


def poll_batch(gens: list[Generation]) -> dict[int, engine.PollResult]:
    """Poll claimed jobs: end those past their deadline, ask the rest, write the answers."""
    live = []
    for gen in gens:
        with org_scope(gen.organization):
            if not engine.expire_if_late(gen):
                live.append(gen)
    answers, deferred = status_calls(live)
    if deferred:
        _defer(deferred)
    return write_back(live, answers)


def _next_due_in(now: datetime) -> float | None:
    """Seconds until the earliest polling job is due (one indexed query), None when none is."""
    earliest = Generation.all_orgs.filter(state__in=POLLING_STATES).aggregate(at=Min("next_poll_at"))["at"]
    return None if earliest is None else (earliest - now).total_seconds()


def poll_due(
    *,
    limit: int | None = None,
    window: float | None = None,
    again: Callable[[], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """The poll step: claim a batch of due jobs and poll them, again and again for ``window``
    seconds (GENERATION_POLL_STEP_WINDOW_SECONDS, about beat's interval), waiting between batches
    only until the next job is due: a job is polled within a few hundredths of a second of its
    time, not at the next beat tick, and beat's next message finds the loop already done. A full
    batch means more are due than one step takes: ``again()`` (the task re-sending itself, once
    per step) lets another worker process start on them at once. Returns how many jobs it polled."""
    limit = limit or int(_setting("GENERATION_POLL_BATCH_SIZE"))
    window = _setting("GENERATION_POLL_STEP_WINDOW_SECONDS") if window is None else window
    ends = clock() + window
    polled, sent_again = 0, False
    while True:
        gens = claim_due(limit=limit)
        if len(gens) >= limit and again is not None and not sent_again:
            again()
            sent_again = True
        if gens:
            poll_batch(gens)
            polled += len(gens)
        left = ends - clock()
        if left <= 0:
            return polled
        if len(gens) < limit:  # nothing more due now: wait for the next one, within the window
            wait = _next_due_in(timezone.now())
            if wait is None or wait >= left:
                return polled
            if wait > 0:
                sleep(max(wait, 0.01))
