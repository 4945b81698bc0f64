"""The job engine: each step of a generation's life after it is created, and the primitives the
steps, the create service and the operators' actions share.

The lifecycle (see docs/ARCHITECTURE.md):

    created -> submitting -> queued -> in_progress -> downloading -> completed
       any active state ------------------------------------------> failed / canceled

Every step (``generation_submit``, ``generation_reconcile_submit``, ``generation_poll``,
``generation_download``) is called by one thin Celery task (``apps.generations.tasks``). Every
state change is a conditional UPDATE on the expected state (:func:`transition`), so two workers
acting on one row cannot both win. A submit or download schedules its follow-up with a countdown
(:func:`schedule`) *and* moves ``next_poll_at`` to that time plus a grace period (:func:`alarm`):
if the message is lost or the worker dies, the dispatcher (:func:`generation_dispatch_due`, run by
beat) sends the step again. Polls are not messages: a queued or running job's ``next_poll_at`` is
simply when it is due (:func:`due_in`), and the batched poll step (``apps.generations.polling``)
claims due jobs by the hundred and polls them concurrently; :func:`generation_poll` is the same
decision for one job, now (a callback, an operator's retry). Nothing ever sleeps on a provider.

Public primitives: :func:`transition`, :func:`note`, :func:`schedule`, :func:`alarm`,
:func:`due_in`, :func:`backoff`, :func:`poll_delay`, :func:`fail` (ends a job and releases its
hold) and :func:`adapter_for` (the only place a generation's key is decrypted); a poll's decision
(:func:`status_call`, :func:`decide_poll`, :func:`apply_poll`), shared by both poll paths.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.api_keys import services as key_services
from apps.api_keys.crypto import DecryptionError
from apps.billing import ledger
from apps.core.prepared import PreparedGet, update_returning
from apps.core.scoping import scoped_organization_id
from apps.generations import callbacks, inputs, media, routing, storage
from apps.generations.models import (
    ACTIVE_STATES,
    POLLING_STATES,
    TERMINAL_STATES,
    Generation,
    GenerationEvent,
    State,
    reported_cost,
)
from apps.metrics import instruments as metrics
from apps.providers import catalog, registry
from apps.providers.base import (
    GenerationSpec,
    InputImage,
    JobState,
    JobStatus,
    ProviderError,
    VideoProvider,
    submitted,
)
from apps.webhooks import services as webhooks

logger = logging.getLogger(__name__)

THUMBNAIL_EXTENSIONS = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg"}


# --- primitives ------------------------------------------------------------------------------


def _now() -> datetime:
    return timezone.now()


def _seconds(name: str) -> float:
    return float(getattr(settings, name))


def transition(gen: Generation, *, from_states, to: str, message: str = "", **fields) -> bool:
    """Move ``gen`` to ``to`` only if it is still in one of ``from_states``. Records the event
    (only when the state changes, or with a message).

    One statement: ``F()`` fields (``poll_count + 1``…) come back from the UPDATE itself
    (``RETURNING``), so ``gen`` stays in step with the row without re-reading it."""
    fields["state"] = to
    fields["updated_at"] = _now()
    expressions = [name for name, value in fields.items() if hasattr(value, "resolve_expression")]
    qs = Generation.objects.filter(pk=gen.pk, state__in=list(from_states))
    # the UPDATE and the team webhook event (the outbox row) commit together, or neither does
    # (no savepoint inside a caller's transaction: a failure here fails that transaction anyway);
    # a change that makes no event (most polls) stays one statement, with no BEGIN/COMMIT
    makes_event = webhooks.makes_event(
        from_state=gen.state, state=to, progress=fields.get("progress", gen.progress), previous_progress=gen.progress
    )
    with transaction.atomic(savepoint=False) if makes_event else nullcontext():
        if expressions:
            rows = update_returning(qs, expressions, **fields)
            if len(rows) != 1:
                return False
            returned = dict(zip(expressions, rows[0], strict=True))
        elif qs.update(**fields) != 1:
            return False
        else:
            returned = {}
        previous, previous_progress = gen.state, gen.progress
        for name, value in fields.items():
            setattr(gen, name, returned[name] if name in returned else value)
        if previous != to or message:
            GenerationEvent.objects.create(
                generation_id=gen.pk, from_state=previous, to_state=to, message=message[:2000]
            )
        if makes_event:
            webhooks.video_event(
                org_id=gen.organization_id,
                video_id=gen.public_id,
                from_state=previous,
                state=to,
                progress=gen.progress,
                previous_progress=previous_progress,
            )
    if gen.batch_id and to in TERMINAL_STATES:
        from apps.generations import batches  # batches builds on the engine

        # its batch's slot is free: the next waiting item goes, once this change is committed
        transaction.on_commit(lambda: batches.on_item_finished(gen), robust=True)
    return True


def note(gen: Generation, message: str) -> None:
    GenerationEvent.objects.create(
        generation_id=gen.pk, from_state=gen.state, to_state=gen.state, message=message[:2000]
    )


def schedule(step: str, gen: Generation, delay: float) -> None:
    """Send ``step`` for ``gen`` after the transaction commits, ``delay`` seconds from now."""
    from apps.generations import tasks

    task = tasks.STEPS[step]
    kwargs = {"generation_id": gen.pk, "org_id": gen.organization_id}
    # robust: a broker hiccup must not fail the request; the dispatcher re-sends overdue steps
    transaction.on_commit(lambda: task.apply_async(kwargs=kwargs, countdown=max(delay, 0)), robust=True)


def alarm(delay: float) -> datetime:
    """When the dispatcher should step in if the scheduled step never ran."""
    return _now() + timedelta(seconds=delay + _seconds("GENERATION_LEASE_GRACE_SECONDS"))


def backoff(attempt: int, retry_after: float | None = None) -> float:
    base = _seconds("GENERATION_POLL_MIN_SECONDS") * (2 ** min(attempt, 8))
    delay = min(base, _seconds("GENERATION_POLL_MAX_SECONDS") * 4)
    return max(delay, retry_after or 0.0)


def poll_delay(poll_count: int, hint: float | None) -> float:
    low, high = _seconds("GENERATION_POLL_MIN_SECONDS"), _seconds("GENERATION_POLL_MAX_SECONDS")
    if hint is not None:
        return min(max(hint, 0.1), high)
    return min(low * (1.5 ** min(poll_count, 20)), high)


def paced_delay(gen: Generation, answer: JobStatus, delay: float) -> float:
    """The next status call's delay, stretched where the job's own figures say it cannot finish
    sooner (GENERATION_POLL_PACED):

    - running, with progress ``p`` (0 < p < 100) reported ``t`` seconds after the engine first saw
      it running: at the rate so far it has ``t * (100 - p) / p`` seconds left; ask again at half
      of that. The estimate errs early, not late: ``t`` starts when the engine *saw* the job
      running, after it started, so the rate is overestimated. Near the end half the time left is
      under the hint, so the last calls come at the hint and detection is as quick as before;
    - queued: a queue does not finish a job without running it, so ask again at half the time it
      has waited since it was submitted;

    never sooner than ``delay`` (the provider's hint, or the engine's own interval) and never later
    than GENERATION_POLL_PACED_MAX_SECONDS (60 s; the backoff without a hint keeps its own
    GENERATION_POLL_MAX_SECONDS). A supplier whose progress is not linear in time (slow, then fast)
    is seen late by at most that maximum; one that reports no progress is asked at ``delay``. A
    270 s job at a 5 s hint took 17 calls instead of 55 (bench/RESULTS.md). The cap is its own
    setting: with 10,000 long jobs in flight the calls at the cap are most of the poll step's load
    (10,000 / 30 s = 333 a second when every job is at a 30 s cap)."""
    high = _seconds("GENERATION_POLL_PACED_MAX_SECONDS")
    if not settings.GENERATION_POLL_PACED or delay >= high:
        return delay
    now = _now()
    if answer.state == JobState.IN_PROGRESS:
        p = answer.progress
        if p is None or not 0 < p < 100 or gen.running_since is None:
            return delay
        elapsed = (now - gen.running_since).total_seconds()
        wait = elapsed * (100 - p) / p / 2
    elif answer.state == JobState.QUEUED and gen.submitted_at is not None:
        wait = (now - gen.submitted_at).total_seconds() / 2
    else:
        return delay
    return min(max(delay, wait), high)


def _poll_interval(gen: Generation, delay: float) -> float:
    """A job whose provider will call back is polled only as a safety net for a lost callback."""
    if gen.callback_digest:
        return max(delay, _seconds("PROVIDER_CALLBACK_POLL_SECONDS"))
    return delay


def adapter_for(gen: Generation) -> VideoProvider:
    """Build the adapter with the decrypted key: the only place a generation's key is decrypted.

    A provider the operator switched off still serves the jobs it already accepted (they run to the
    end, so a paid video is not lost); a job not yet submitted fails without charge."""
    accepted = bool(gen.provider_job_id)
    try:
        cls = registry.get_provider_class(gen.provider, allow_disabled=accepted)
    except registry.UnknownProvider as exc:
        raise ProviderError(str(exc), code="provider_disabled", permanent=True) from None
    credentials = None
    if cls.requires_key:
        if gen.provider_key is None:
            raise ProviderError(
                f"The {cls.label} key this video was started with has been deleted.",
                code="missing_credentials",
                permanent=True,
            )
        try:
            credentials = key_services.provider_key_credentials(key=gen.provider_key)
        except DecryptionError as exc:
            raise ProviderError(str(exc), code="key_unreadable", permanent=True) from None
    return registry.build(gen.provider, credentials, allow_disabled=accepted)


def _spec(gen: Generation, *, callback_url: str | None = None) -> GenerationSpec:
    image = None
    if gen.input_image:
        with storage.open_for_read(gen.input_image) as fh:
            data = fh.read()
        # the bytes, and a short-lived URL for suppliers that fetch images by URL (None when this
        # server is not reachable from outside: then adapters send the bytes inline)
        image = InputImage(data=data, content_type=gen.input_image_type, url=inputs.input_image_url(gen.input_image))
    elif gen.input_image_url:
        image = InputImage(url=gen.input_image_url)
    return GenerationSpec(
        model=gen.model,
        prompt=gen.prompt,
        seconds=gen.seconds,
        size=gen.size,
        image=image,
        seed=gen.seed,
        negative_prompt=gen.negative_prompt or None,
        remix_of=gen.remix_of.provider_job_id if gen.remix_of_id else None,
        client_reference=gen.public_id,
        audio=gen.audio,
        callback_url=callback_url,
    )


# every step starts with this read: compiled to SQL once per thread (apps.core.prepared)
_generation_for_step = PreparedGet(
    lambda pk, org_id: Generation.all_orgs.filter(pk=pk, organization_id=org_id).select_related(
        "provider_key", "organization"
    ),
    pk=-7_000_000_000_000_002,
    org_id=-7_000_000_000_000_003,
)


def _fresh(generation_id: int) -> Generation | None:
    org_id = scoped_organization_id()  # a task runs in its organization's scope (TenantTask)
    if org_id is not None:
        return _generation_for_step(Generation.all_orgs.db, pk=generation_id, org_id=org_id)
    return Generation.objects.select_related("provider_key", "organization").filter(pk=generation_id).first()


def fail(gen: Generation, *, code: str, message: str, state: str = State.FAILED) -> bool:
    """End ``gen`` as failed (or canceled) and release its hold, atomically. No charge."""
    with transaction.atomic():
        done = transition(
            gen,
            from_states=ACTIVE_STATES,
            to=state,
            message=message,
            error_code=code if state == State.FAILED else "",
            error_message=message if state == State.FAILED else "",
            next_poll_at=None,
            completed_at=_now(),
        )
        if done:
            ledger.release(gen)
    if done:
        logger.info("generation %s %s: %s", gen.public_id, state, code)
    return done


def _provider_failure(gen: Generation, exc: ProviderError) -> None:
    """A permanent provider error ends the job. An auth error also marks the key invalid."""
    if exc.is_auth_error and gen.provider_key is not None:
        key_services.provider_key_mark_invalid(key=gen.provider_key, error=exc.message)
    fail(gen, code=exc.code or "provider_error", message=exc.message)


def _past_deadline(gen: Generation) -> bool:
    return _now() >= gen.deadline_at


def _expire(gen: Generation) -> None:
    """The job ran past its deadline: cancel it at the provider where possible, fail it here."""
    if gen.provider_job_id:
        try:
            adapter = adapter_for(gen)
            if adapter.supports_cancel:
                adapter.cancel(gen.provider_job_id, job_data=gen.provider_job_data)
        except ProviderError as exc:
            note(gen, f"Cancel after timeout failed: {exc.message}")
    hours = (gen.deadline_at - gen.created_at).total_seconds() / 3600
    fail(gen, code="timeout", message=f"The provider did not finish this video within {hours:g} hours. No charge.")


# --- the job's steps -------------------------------------------------------------------------


def generation_submit(*, generation_id: int) -> None:
    """Submit once. A row that already has a provider job id is polled, never resubmitted."""
    gen = _fresh(generation_id)
    if gen is None:
        return
    if gen.provider_job_id:
        # due now: the next poll step picks it up
        transition(gen, from_states=[State.CREATED, State.SUBMITTING], to=State.QUEUED, next_poll_at=_now())
        return
    if gen.state != State.CREATED:
        return
    if _past_deadline(gen):
        _expire(gen)
        return
    claimed = transition(
        gen,
        from_states=[State.CREATED],
        to=State.SUBMITTING,
        submit_attempts=F("submit_attempts") + 1,
        next_poll_at=_now() + timedelta(seconds=_seconds("GENERATION_SUBMIT_LEASE_SECONDS")),
    )
    if not claimed:
        return  # another worker has it
    key_id = gen.provider_key.public_id if gen.provider_key_id else None
    try:
        if not routing.circuit_allows(gen.provider, key_id):
            raise ProviderError(
                f"{gen.provider} is failing right now (its circuit is open); not sending the job there.",
                code="circuit_open",
                retry_after=_seconds("ROUTER_CIRCUIT_OPEN_SECONDS"),
            )
        adapter = adapter_for(gen)
        # the digest is stored before the submit: a callback may beat the submit's answer
        spec = _spec(gen, callback_url=callbacks.request_callback(gen, adapter))
        if gen.remix_of_id:
            job = submitted(adapter.remix(gen.remix_of.provider_job_id, spec))
        else:
            job = submitted(adapter.submit(spec))
    except ProviderError as exc:
        _record_health(gen, key_id, exc)
        _after_submit_error(gen, exc)
        return
    routing.circuit_record(gen.provider, key_id, ok=True)
    _accept_job(gen, job.job_id, via="submitted", job_data=dict(job.data))


def _record_health(gen: Generation, key_id: str | None, exc: ProviderError) -> None:
    """Count a failed call against the supplier's circuit: transient failures and timeouts only
    (a refused request is the request's problem, or the key's, not the supplier's health)."""
    metrics.provider_error(gen.provider, exc)  # every error, by code (apps/metrics)
    if exc.code == "circuit_open" or (exc.permanent and not exc.uncertain):
        return
    supplier_wide = exc.uncertain or (exc.status_code or 0) >= 500 or exc.status_code is None
    routing.circuit_record(gen.provider, key_id, ok=False, supplier_wide=supplier_wide)


def _accept_job(gen: Generation, job_id: str, *, via: str, job_data: dict | None = None) -> None:
    first_poll = _poll_interval(gen, poll_delay(0, None))
    if job_data is None:
        job_data = gen.provider_job_data or {}
    if transition(
        gen,
        from_states=[State.SUBMITTING],
        to=State.QUEUED,
        message=f"Provider job {job_id} {via}.",
        provider_job_id=job_id,
        provider_job_data=job_data,
        submitted_at=_now(),
        submit_uncertain=False,
        transient_errors=0,
        next_poll_at=due_in(first_poll),  # the poll step claims it then
    ):
        # a callback that came before this answer was stored: read the status now
        if gen.callback_digest and callbacks.arrived_early(gen):
            schedule("poll", gen, 0)
        return
    # The row moved on while we were submitting (an operator failed it): never lose the job id.
    Generation.objects.filter(pk=gen.pk, provider_job_id="").update(provider_job_id=job_id, provider_job_data=job_data)
    gen.refresh_from_db()
    note(gen, f"Provider job {job_id} {via} after the generation ended; canceling it at the provider.")
    try:
        adapter = adapter_for(gen)
        if adapter.supports_cancel:
            adapter.cancel(job_id, job_data=job_data)
    except ProviderError as exc:
        note(gen, f"Cancel failed: {exc.message}")


def _after_submit_error(gen: Generation, exc: ProviderError) -> None:
    if routing.certainly_not_created(exc) and fall_back(gen, reason=exc):
        return
    if exc.uncertain:
        # The request may have reached the provider: reconcile, never blindly resubmit.
        Generation.objects.filter(pk=gen.pk, state=State.SUBMITTING).update(
            submit_uncertain=True, next_poll_at=_now() + timedelta(seconds=backoff(0, exc.retry_after))
        )
        note(gen, f"Submit outcome unknown ({exc.message}); will look the job up instead of resubmitting.")
        return
    if exc.permanent:
        _provider_failure(gen, exc)
        return
    delay = backoff(gen.transient_errors, exc.retry_after)
    if _now() + timedelta(seconds=delay) >= gen.deadline_at:
        fail(gen, code=exc.code or "provider_unavailable", message=f"{exc.message} (gave up at the deadline)")
        return
    if transition(
        gen,
        from_states=[State.SUBMITTING],
        to=State.CREATED,
        message=f"Submit failed, retrying in {delay:.0f}s: {exc.message}",
        transient_errors=F("transient_errors") + 1,
        next_poll_at=alarm(delay),
    ):
        schedule("submit", gen, delay)


def fall_back(gen: Generation, *, reason: ProviderError | None = None, after_failure: str = "") -> bool:
    """Move a routed generation to its next usable supplier, re-pricing the hold within the
    budgets, and submit it there. Only for a submit that certainly created no job (``reason``), or,
    when the organization opted in, after the supplier failed the job for its own reasons
    (``after_failure``, the supplier's error message). Never for a pinned request. Returns False
    when there is nowhere to go (the caller then fails or retries as before)."""
    if gen.pinned or not gen.requested_model or gen.remix_of_id:
        return False
    from apps.generations import selectors

    try:
        route = selectors.route_for(org=gen.organization, model_id=gen.requested_model)
    except (catalog.UnknownModel, routing.Unroutable):
        return False
    tried = [a.get("supplier") for a in gen.attempts or []] + [gen.provider]
    outcome = reason.code if reason is not None else "supplier_failed"
    message = reason.message if reason is not None else after_failure
    for candidate in route.candidates:
        if not candidate.usable or candidate.supplier in tried:
            continue
        model = candidate.model
        if catalog.validate_request(
            model=model,
            seconds=gen.seconds,
            size=gen.size,
            has_image=bool(gen.input_image or gen.input_image_url),
            seed=gen.seed,
            negative_prompt=gen.negative_prompt or None,
        ):
            continue  # this supplier cannot make what was asked
        if _move_to(gen, candidate, outcome=outcome, message=message):
            return True
        return True  # _move_to ended the generation (the budget) or another worker moved it
    return False


def _move_to(gen: Generation, candidate: routing.Candidate, *, outcome: str, message: str) -> bool:
    """Re-price and re-point the generation at ``candidate``'s supplier, then submit it there."""
    from apps.accounts.models import Membership, Organization
    from apps.api_keys.models import ProviderKey
    from apps.billing.prices import catalog_price_effective
    from apps.core.errors import PaymentRequired

    model = catalog_price_effective(candidate.model)  # the new supplier's price in effect now
    price = model.cost(seconds=gen.seconds, size=gen.size, audio=gen.audio)
    old = f"{gen.provider}/{gen.model}"
    attempt = {
        "supplier": gen.provider,
        "outcome": outcome,
        "message": message[:300],
        "price": str(gen.estimated_cost),
        "at": _now().isoformat(),
    }
    try:
        with transaction.atomic():
            Organization.objects.select_for_update().filter(pk=gen.organization_id).first()
            membership = Membership.objects.filter(organization_id=gen.organization_id, user_id=gen.user_id).first()
            key = (
                ProviderKey.objects.filter(organization_id=gen.organization_id, public_id=candidate.key_id).first()
                if candidate.key_id
                else None
            )
            moved = transition(
                gen,
                from_states=[State.SUBMITTING, State.CREATED, State.QUEUED, State.IN_PROGRESS],
                to=State.CREATED,
                message=(
                    f"{old} could not take the job ({outcome}: {message[:200]}); moving it to "
                    f"{model.qualified_id} at ${price}."
                ),
                provider=model.provider,
                provider_key=key,
                provider_job_id="",
                provider_job_data={},
                provider_status="",
                provider_usage={},
                provider_cost=None,
                output_url="",
                progress=None,
                running_since=None,
                submit_uncertain=False,
                transient_errors=0,
                poll_count=0,
                estimated_cost=price,
                price_version=model.price_version,
                attempts=[*(gen.attempts or []), attempt],
                next_poll_at=alarm(0),
            )
            if not moved:
                return False
            if membership is None:
                raise PaymentRequired("The member who asked for this video has left the organization.")
            gen.provider, gen.estimated_cost, gen.price_version = model.provider, price, model.price_version
            ledger.reprice_hold(
                generation=gen, membership=membership, amount=price, note=f"moved from {old} to {model.qualified_id}"
            )
    except PaymentRequired as exc:
        # nothing above was written; end the job with the budget's reason and release the hold
        gen.refresh_from_db()
        fail(
            gen,
            code=exc.code or "budget_exceeded",
            message=f"{exc.message} (moving from {old} to {model.qualified_id})",
        )
        return False
    gen.refresh_from_db()
    schedule("submit", gen, 0)
    return True


def generation_reconcile_submit(*, generation_id: int) -> None:
    """A submit whose outcome is unknown (timeout, or a worker that died mid-submit).

    Look the job up by our reference where the provider can (Kling ``external_task_id``): found →
    poll it; certainly absent → submit again. Where the provider cannot look jobs up, fail without
    charge rather than risk paying twice."""
    gen = _fresh(generation_id)
    if gen is None or gen.state != State.SUBMITTING:
        return
    if gen.provider_job_id:
        _accept_job(gen, gen.provider_job_id, via="recovered")
        return
    try:
        adapter = adapter_for(gen)
        can_look_up = adapter.supports_lookup
        job_id = adapter.find_by_reference(gen.public_id) if can_look_up else None
    except ProviderError as exc:
        if exc.permanent:
            _provider_failure(gen, exc)
        else:
            Generation.objects.filter(pk=gen.pk, state=State.SUBMITTING).update(
                next_poll_at=_now() + timedelta(seconds=backoff(gen.transient_errors, exc.retry_after)),
                transient_errors=F("transient_errors") + 1,
            )
        return
    if job_id:
        _accept_job(gen, job_id, via="found by reference")
    elif can_look_up:
        if transition(
            gen,
            from_states=[State.SUBMITTING],
            to=State.CREATED,
            message="The provider has no job for this generation; submitting again.",
            submit_uncertain=False,
            next_poll_at=alarm(0),
        ):
            schedule("submit", gen, 0)
    else:
        fail(
            gen,
            code="submit_uncertain",
            message=(
                "The provider did not confirm this job and cannot be asked about it, so MediaRouter did not "
                "submit it again (that could bill you twice). No charge here; please try again."
            ),
        )


# --- polling: one status answer, decided once, written by the single or the batched step ------

RUNNING, COMPLETED, CANCELED, FAILED, RETRY, PERMANENT = (
    "running", "completed", "canceled", "failed", "retry", "permanent"
)  # fmt: skip


@dataclass(frozen=True)
class PollResult:
    """What one status call means for a job, decided before anything is written, so the
    single-job step (:func:`generation_poll`) and the batched one (``apps.generations.polling``)
    take exactly the same decisions and differ only in how many rows one statement writes."""

    kind: str  # RUNNING, COMPLETED, CANCELED, FAILED (the provider answered), RETRY, PERMANENT
    status: JobStatus | None = None
    error: ProviderError | None = None
    state: str = ""  # RUNNING: the state the provider reports (queued / in_progress)
    delay: float = 0.0  # RUNNING, RETRY: seconds until the next status call


def expire_if_late(gen: Generation) -> bool:
    """End a job past its deadline (canceled at the provider where possible); True if it was."""
    if not _past_deadline(gen):
        return False
    _expire(gen)
    return True


def status_call(adapter: VideoProvider, gen: Generation) -> JobStatus | ProviderError:
    """The provider's status call, timed for apps/metrics. No database access: the batched step
    runs it in a thread pool."""
    try:
        with metrics.POLL_SECONDS.labels(gen.provider).time():
            return adapter.status(gen.provider_job_id, job_data=gen.provider_job_data)
    except ProviderError as exc:
        return exc


def decide_poll(gen: Generation, answer: JobStatus | ProviderError) -> PollResult:
    """The decision for one status answer (or error). Pure: reads ``gen``, writes nothing."""
    if isinstance(answer, ProviderError):
        if answer.permanent:
            return PollResult(PERMANENT, error=answer)
        return PollResult(RETRY, error=answer, delay=backoff(gen.transient_errors, answer.retry_after))
    if answer.state in (JobState.QUEUED, JobState.IN_PROGRESS):
        state = State.QUEUED if answer.state == JobState.QUEUED else State.IN_PROGRESS
        delay = _poll_interval(gen, paced_delay(gen, answer, poll_delay(gen.poll_count, answer.poll_after)))
        return PollResult(RUNNING, status=answer, state=state, delay=delay)
    if answer.state == JobState.COMPLETED:
        return PollResult(COMPLETED, status=answer)
    if answer.state == JobState.CANCELED:
        return PollResult(CANCELED, status=answer)
    return PollResult(FAILED, status=answer)


def due_in(delay: float) -> datetime:
    """``next_poll_at`` for a job to be polled again in ``delay`` seconds: the batched poll step
    (beat, every GENERATION_POLL_STEP_INTERVAL_SECONDS) claims it once that time has passed."""
    return _now() + timedelta(seconds=delay)


def running_fields(result: PollResult) -> dict:
    """The columns a still-running answer writes, whether through :func:`transition` or the
    batched step's one UPDATE for many jobs."""
    assert result.status is not None
    return {
        "progress": result.status.progress,
        "provider_status": result.status.raw_status[:40],
        "poll_count": F("poll_count") + 1,
        "transient_errors": 0,
        "next_poll_at": due_in(result.delay),
    }


def writes_quietly(gen: Generation, result: PollResult, *, events_wanted: bool = True) -> bool:
    """A still-running answer that keeps the state and makes no webhook event: ``transition()``
    would write only the columns of :func:`running_fields` (no event row, no outbox), so a plain
    UPDATE conditional on the state does the same for a whole batch. ``events_wanted=False``: the
    organization has no webhook endpoint, so a progress step records nothing either."""
    if result.kind != RUNNING or result.state != gen.state:
        return False
    if not events_wanted:
        return True
    progress = result.status.progress if result.status else None
    return not webhooks.makes_event(
        from_state=gen.state, state=result.state, progress=progress, previous_progress=gen.progress
    )


def apply_poll(gen: Generation, result: PollResult, *, record_success: bool = True) -> None:
    """Write one decision: the next poll time, or the transition with its side effects (download,
    release, fallback, events). ``record_success=False`` when the caller records the supplier's
    health for a whole batch at once."""
    key_id = gen.provider_key.public_id if gen.provider_key_id else None
    if result.error is not None:
        exc = result.error
        _record_health(gen, key_id, exc)
        if result.kind == PERMANENT:
            _provider_failure(gen, exc)
            return
        Generation.objects.filter(pk=gen.pk, state__in=POLLING_STATES).update(
            poll_count=F("poll_count") + 1,
            transient_errors=F("transient_errors") + 1,
            next_poll_at=due_in(result.delay),
            updated_at=_now(),
        )
        note(gen, f"Status check failed, retrying in {result.delay:.0f}s: {exc.message}")
        return

    if record_success:
        routing.circuit_record(gen.provider, key_id, ok=True)  # the supplier answered: not failing
    status = result.status
    assert status is not None
    if result.kind == RUNNING:
        fields = running_fields(result)
        if result.state == State.IN_PROGRESS and gen.state != State.IN_PROGRESS:
            fields["running_since"] = _now()  # the start of the progress's clock (paced_delay)
        transition(gen, from_states=POLLING_STATES, to=result.state, **fields)
    elif result.kind == COMPLETED:
        previous_poll = gen.updated_at  # the row's last write: the previous poll (apps/metrics)
        if transition(
            gen,
            from_states=POLLING_STATES,
            to=State.DOWNLOADING,
            message="Finished at the provider; copying the video to storage.",
            progress=100,
            provider_status=status.raw_status[:40],
            poll_count=F("poll_count") + 1,
            output_url=status.output_urls[0] if status.output_urls else "",
            provider_usage=dict(status.usage),
            provider_cost=reported_cost(status.usage),
            next_poll_at=alarm(0),
        ):
            metrics.observe_detection_lag(gen.provider, previous_poll=previous_poll, now=gen.updated_at)
            schedule("download", gen, 0)
    elif result.kind == CANCELED:
        Generation.objects.filter(pk=gen.pk).update(poll_count=F("poll_count") + 1)
        fail(gen, code="canceled", message="Canceled at the provider.", state=State.CANCELED)
    else:
        Generation.objects.filter(pk=gen.pk).update(
            poll_count=F("poll_count") + 1, provider_status=status.raw_status[:40]
        )
        code = status.error_code or "generation_failed"
        message = status.error_message or "The provider could not generate this video. No charge."
        if routing.supplier_failed_for_its_own_reasons(code) and _resubmit_allowed(gen):
            routing.circuit_record(gen.provider, key_id, ok=False)
            if fall_back(gen, after_failure=f"{code}: {message}"):
                return
        fail(gen, code=code, message=message)


def generation_poll(*, generation_id: int) -> None:
    """One status call for one job, now: a provider's callback, an operator's retry, a submit
    whose callback came early. Every other poll is the batched step's (apps.generations.polling),
    which runs the same :func:`decide_poll` and :func:`apply_poll`."""
    gen = _fresh(generation_id)
    if gen is None or gen.state not in POLLING_STATES or expire_if_late(gen):
        return
    try:
        answer = status_call(adapter_for(gen), gen)
    except ProviderError as exc:  # adapter_for: the key is gone or unreadable, the provider unknown
        answer = exc
    apply_poll(gen, decide_poll(gen, answer))


def _resubmit_allowed(gen: Generation) -> bool:
    """The organization opted in to resubmitting a job its supplier failed for its own reasons."""
    from apps.generations import selectors

    return selectors.routing_policy(org=gen.organization).resubmit_on_supplier_failure


def generation_download(*, generation_id: int) -> None:
    """Stream the video (and thumbnail) into storage, then complete and charge in one step."""
    gen = _fresh(generation_id)
    if gen is None or gen.state != State.DOWNLOADING:
        return
    lease = timedelta(seconds=_seconds("GENERATION_DOWNLOAD_LEASE_SECONDS"))
    claimed = Generation.objects.filter(
        pk=gen.pk, state=State.DOWNLOADING, download_attempts=gen.download_attempts
    ).update(download_attempts=F("download_attempts") + 1, next_poll_at=_now() + lease, updated_at=_now())
    if not claimed:
        return
    attempt = gen.download_attempts  # before this one
    if attempt > 0 and _past_deadline(gen):
        # a fault that outlasts the job (a crash, storage down) must not retry forever holding money
        code = "storage_error" if gen.error_code == "storage_error" else "timeout"
        fail(gen, code=code, message="The video could not be stored before the job's deadline. No charge.")
        return

    def heartbeat(_size: int) -> None:
        Generation.objects.filter(pk=gen.pk, state=State.DOWNLOADING).update(next_poll_at=_now() + lease)

    key = storage.video_key(gen.organization.slug, gen.public_id)
    storage_errors = _storage_error_types()
    try:
        adapter = adapter_for(gen)
        url = gen.output_url or None
        if attempt > 0 and url:
            # provider URLs expire: after a failed attempt, ask for a fresh one
            fresh = adapter.status(gen.provider_job_id, job_data=gen.provider_job_data)
            url = fresh.output_urls[0] if fresh.output_urls else url
        started = metrics.clock()
        with adapter.download(
            gen.provider_job_id, url=url, variant="video", job_data=gen.provider_job_data
        ) as download:
            stored = storage.save_stream(key, download.chunks, on_progress=heartbeat)
            content_type = download.content_type or "video/mp4"
        metrics.observe_download(gen.provider, started=started, size=stored.size)
    except storage_errors as exc:
        # our storage failed (disk full or unwritable, S3 refusing): transient until the deadline
        _storage_failure(gen, exc, attempt)
        return
    except ProviderError as exc:
        metrics.provider_error(gen.provider, exc)
        if exc.permanent or _past_deadline(gen):
            _provider_failure(gen, exc)
            return
        delay = backoff(attempt, exc.retry_after)
        Generation.objects.filter(pk=gen.pk, state=State.DOWNLOADING).update(
            next_poll_at=alarm(delay), transient_errors=F("transient_errors") + 1
        )
        note(gen, f"Download failed, retrying in {delay:.0f}s: {exc.message}")
        schedule("download", gen, delay)
        return
    if stored.size == 0:
        fail(gen, code="empty_video", message="The provider returned an empty file. No charge.")
        return

    thumbnail = ""
    if adapter.supports_thumbnail:
        try:
            with adapter.download(gen.provider_job_id, variant="thumbnail", job_data=gen.provider_job_data) as download:
                extension = THUMBNAIL_EXTENSIONS.get((download.content_type or "").split(";")[0], "jpg")
                thumbnail = storage.save_stream(
                    storage.thumbnail_key(gen.organization.slug, gen.public_id, extension), download.chunks
                ).key
        except ProviderError as exc:
            note(gen, f"No thumbnail: {exc.message}")
        except storage_errors as exc:
            note(gen, f"No thumbnail: it could not be stored ({_storage_detail(exc)}).")
    if (thumbnail := media.inspect_stored(gen, stored.key, thumbnail)) is None:
        return  # not a video: failed without charge (apps.generations.media: probe, poster, mismatches)

    with transaction.atomic():
        if transition(
            gen,
            from_states=[State.DOWNLOADING],
            to=State.COMPLETED,
            message=f"Stored {stored.size} bytes (sha256 {stored.sha256[:12]}…).",
            video_file=stored.key,
            thumbnail_file=thumbnail,
            content_type=content_type[:60],
            bytes=stored.size,
            sha256=stored.sha256,
            final_cost=gen.estimated_cost,
            progress=100,
            next_poll_at=None,
            completed_at=_now(),
            error_code="",
            error_message="",  # a storage fault shown while the download retried is over
        ):
            ledger.settle(gen, gen.estimated_cost)
    _remove_if_deleted(gen, adapter)


def _remove_if_deleted(gen: Generation, adapter: VideoProvider) -> None:
    """A member deleted the video while it ran and could not be canceled (services.generation_delete):
    it stays charged (the provider billed it), and its files go now that they have landed."""
    row = Generation.objects.filter(pk=gen.pk, deleted_at__isnull=False, state=State.COMPLETED).first()
    if row is None:
        return
    for key in (row.video_file, row.thumbnail_file, row.input_image):
        storage.delete(key)
    if adapter.supports_delete and row.provider_job_id:
        try:
            adapter.delete(row.provider_job_id)
        except ProviderError as exc:
            logger.info("provider delete of %s failed: %s", row.public_id, exc.code)
    Generation.objects.filter(pk=row.pk).update(video_file="", thumbnail_file="", input_image="", output_url="")
    note(row, "Deleted while running: the stored files were removed when it finished; the charge stays.")


def _storage_error_types() -> tuple[type[BaseException], ...]:
    """What our storage raises when it fails: OSError (PermissionError, disk full) and, on S3,
    botocore's errors."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - botocore ships with the S3 backend
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


def _storage_detail(exc: BaseException) -> str:
    """A storage error in words, without the server's paths (a member reads it)."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return getattr(exc, "strerror", None) or code or type(exc).__name__


def _storage_failure(gen: Generation, exc: BaseException, attempt: int) -> None:
    """Storing the downloaded video failed: shown on the job, retried with backoff until the
    deadline, then the job fails and its hold is released."""
    detail = _storage_detail(exc)
    logger.warning("generation %s: storing the video failed: %r", gen.public_id, exc)
    if _past_deadline(gen):
        fail(gen, code="storage_error", message=f"The video could not be stored ({detail}). No charge.")
        return
    delay = backoff(attempt)
    message = f"Storing the video failed ({detail}); retrying in {delay:.0f}s."
    Generation.objects.filter(pk=gen.pk, state=State.DOWNLOADING).update(
        next_poll_at=alarm(delay),
        transient_errors=F("transient_errors") + 1,
        error_code="storage_error",
        error_message=message,
    )
    note(gen, message)
    schedule("download", gen, delay)


STEP_FOR_STATE = {
    State.CREATED: "submit",
    State.SUBMITTING: "reconcile",
    State.QUEUED: "poll",
    State.IN_PROGRESS: "poll",
    State.DOWNLOADING: "download",
}


# the states whose step is a message the dispatcher re-sends; polling states need none: the batched
# poll step (apps.generations.polling) claims every job whose next_poll_at has passed
DISPATCHED_STATES = (State.CREATED, State.SUBMITTING, State.DOWNLOADING)


def generation_dispatch_due(*, limit: int = 500) -> int:
    """The safety net, run by beat every few seconds across all organizations: every submitting,
    reconciling or downloading generation whose alarm has passed gets its step sent again (lost
    message, dead worker), and jobs past their deadline are ended. Claims each row with a
    conditional UPDATE, so several beats or dispatchers never double-send. Returns how many steps
    were sent. (Polls are not messages: see apps.generations.polling.)"""
    from apps.generations import tasks

    now = _now()
    due = list(
        Generation.all_orgs.filter(state__in=DISPATCHED_STATES, next_poll_at__lte=now)
        .order_by("next_poll_at")
        .values("pk", "organization_id", "state", "next_poll_at")[:limit]
    )
    sent = 0
    for row in due:
        lease = (
            _seconds("GENERATION_DOWNLOAD_LEASE_SECONDS")
            if row["state"] == State.DOWNLOADING
            else _seconds("GENERATION_SUBMIT_LEASE_SECONDS")
        )
        claimed = Generation.all_orgs.filter(pk=row["pk"], state=row["state"], next_poll_at=row["next_poll_at"]).update(
            next_poll_at=now + timedelta(seconds=lease)
        )
        if not claimed:
            continue
        step = STEP_FOR_STATE[row["state"]]
        tasks.STEPS[step].apply_async(kwargs={"generation_id": row["pk"], "org_id": row["organization_id"]})
        sent += 1
    if sent:
        logger.info("dispatcher re-sent %d overdue generation steps", sent)
    return sent


# a step's name (as tasks.STEPS and STEP_FOR_STATE name it) -> the function, to run a step inline
STEPS = {
    "submit": generation_submit,
    "reconcile": generation_reconcile_submit,
    "poll": generation_poll,
    "download": generation_download,
}
