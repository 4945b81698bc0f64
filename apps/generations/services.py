"""Writes for generations: create, remix, cancel, delete, and each step of the job's life.

The lifecycle (see docs/ARCHITECTURE.md):

    created -> submitting -> queued -> in_progress -> downloading -> completed
       any active state ------------------------------------------> failed / canceled

Every step is a function here, called by one thin Celery task. Every state change is a
conditional UPDATE on the expected state (``_transition``), so two workers acting on one row
cannot both win. Each step schedules its follow-up with a countdown *and* moves ``next_poll_at``
to that time plus a grace period: if the message is lost or the worker dies, the dispatcher
(``generation_dispatch_due``, run by beat) sends the step again. Nothing ever sleeps on a provider.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from apps.accounts.models import Membership, Organization, User
from apps.api_keys import selectors as key_selectors
from apps.api_keys import services as key_services
from apps.api_keys.crypto import DecryptionError
from apps.core.errors import ApplicationError, Conflict, PermissionDeniedError
from apps.core.ids import public_id
from apps.core.prepared import PreparedGet, update_returning
from apps.core.scoping import scoped_organization_id
from apps.generations import ledger, storage
from apps.generations.models import (
    ACTIVE_STATES,
    POLLING_STATES,
    Generation,
    GenerationEvent,
    State,
)
from apps.providers import catalog, registry
from apps.providers.base import GenerationSpec, InputImage, JobState, ProviderError, VideoProvider
from apps.providers.http import check_url

logger = logging.getLogger(__name__)

PROMPT_MAX = 32000
THUMBNAIL_EXTENSIONS = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg"}
IMAGE_TYPES = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}


class ValidationFailed(ApplicationError):
    """A request that fails the catalog's rules; ``errors`` holds every field's message."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(message, param=field, code="invalid_value")
        self.errors = errors


@dataclass(frozen=True)
class GenerationRequest:
    """What a member asks for, in MediaRouter's provider-neutral terms (pages and both APIs)."""

    model: str
    prompt: str
    seconds: int | None = None
    size: str | None = None
    seed: int | None = None
    negative_prompt: str = ""
    image: bytes | None = None
    image_content_type: str | None = None
    image_url: str | None = None
    key_id: str | None = None  # a specific provider key (public id); default key otherwise


# --- helpers ---------------------------------------------------------------------------------


def _now() -> datetime:
    return timezone.now()


def _seconds(name: str) -> float:
    return float(getattr(settings, name))


def _transition(gen: Generation, *, from_states, to: str, message: str = "", **fields) -> bool:
    """Move ``gen`` to ``to`` only if it is still in one of ``from_states``. Records the event
    (only when the state changes, or with a message).

    One statement: ``F()`` fields (``poll_count + 1``…) come back from the UPDATE itself
    (``RETURNING``), so ``gen`` stays in step with the row without re-reading it."""
    fields["state"] = to
    fields["updated_at"] = _now()
    expressions = [name for name, value in fields.items() if hasattr(value, "resolve_expression")]
    qs = Generation.objects.filter(pk=gen.pk, state__in=list(from_states))
    if expressions:
        rows = update_returning(qs, expressions, **fields)
        if len(rows) != 1:
            return False
        returned = dict(zip(expressions, rows[0], strict=True))
    elif qs.update(**fields) != 1:
        return False
    else:
        returned = {}
    previous = gen.state
    for name, value in fields.items():
        setattr(gen, name, returned[name] if name in returned else value)
    if previous != to or message:
        GenerationEvent.objects.create(generation_id=gen.pk, from_state=previous, to_state=to, message=message[:2000])
    return True


def _note(gen: Generation, message: str) -> None:
    GenerationEvent.objects.create(
        generation_id=gen.pk, from_state=gen.state, to_state=gen.state, message=message[:2000]
    )


def _schedule(step: str, gen: Generation, delay: float) -> None:
    """Send ``step`` for ``gen`` after the transaction commits, ``delay`` seconds from now."""
    from apps.generations import tasks

    task = tasks.STEPS[step]
    kwargs = {"generation_id": gen.pk, "org_id": gen.organization_id}
    # robust: a broker hiccup must not fail the request; the dispatcher re-sends overdue steps
    transaction.on_commit(lambda: task.apply_async(kwargs=kwargs, countdown=max(delay, 0)), robust=True)


def _alarm(delay: float) -> datetime:
    """When the dispatcher should step in if the scheduled step never ran."""
    return _now() + timedelta(seconds=delay + _seconds("GENERATION_LEASE_GRACE_SECONDS"))


def _backoff(attempt: int, retry_after: float | None = None) -> float:
    base = _seconds("GENERATION_POLL_MIN_SECONDS") * (2 ** min(attempt, 8))
    delay = min(base, _seconds("GENERATION_POLL_MAX_SECONDS") * 4)
    return max(delay, retry_after or 0.0)


def _poll_delay(poll_count: int, hint: float | None) -> float:
    low, high = _seconds("GENERATION_POLL_MIN_SECONDS"), _seconds("GENERATION_POLL_MAX_SECONDS")
    if hint is not None:
        return min(max(hint, 0.1), high)
    return min(low * (1.5 ** min(poll_count, 20)), high)


def _adapter(gen: Generation) -> VideoProvider:
    """Build the adapter with the decrypted key: the only place a generation's key is decrypted."""
    try:
        cls = registry.get_provider_class(gen.provider)
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
    return registry.build(gen.provider, credentials)


def _spec(gen: Generation) -> GenerationSpec:
    image = None
    if gen.input_image:
        with storage.open_for_read(gen.input_image) as fh:
            image = InputImage(data=fh.read(), content_type=gen.input_image_type)
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


def _fail(gen: Generation, *, code: str, message: str, state: str = State.FAILED) -> bool:
    """End ``gen`` as failed (or canceled) and release its hold, atomically. No charge."""
    with transaction.atomic():
        done = _transition(
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
    _fail(gen, code=exc.code or "provider_error", message=exc.message)


def _past_deadline(gen: Generation) -> bool:
    return _now() >= gen.deadline_at


def _expire(gen: Generation) -> None:
    """The job ran past its deadline: cancel it at the provider where possible, fail it here."""
    if gen.provider_job_id:
        try:
            adapter = _adapter(gen)
            if adapter.supports_cancel:
                adapter.cancel(gen.provider_job_id)
        except ProviderError as exc:
            _note(gen, f"Cancel after timeout failed: {exc.message}")
    hours = (gen.deadline_at - gen.created_at).total_seconds() / 3600
    _fail(gen, code="timeout", message=f"The provider did not finish this video within {hours:g} hours. No charge.")


# --- create ----------------------------------------------------------------------------------


def _validate_image(data: bytes, declared_type: str | None) -> tuple[bytes, str, str]:
    """Check an uploaded image really is a PNG, JPEG or WebP within the size limit.

    Returns (bytes, content type, extension). The type comes from decoding the file, never from
    the declared content type or file name."""
    limit = settings.INPUT_IMAGE_MAX_BYTES
    if len(data) > limit:
        raise ApplicationError(
            f"The image is {len(data) / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB.", param="input_reference"
        )
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # verify() misses truncated pixel data
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApplicationError(
            "The image could not be read. Upload a PNG, JPEG or WebP file.", param="input_reference"
        ) from None
    if fmt not in IMAGE_TYPES:
        raise ApplicationError(f"{fmt} images are not supported. Upload PNG, JPEG or WebP.", param="input_reference")
    if width < 16 or height < 16 or width > 8192 or height > 8192:
        raise ApplicationError("The image must be between 16 and 8192 pixels on each side.", param="input_reference")
    content_type, extension = IMAGE_TYPES[fmt]
    if declared_type and declared_type.split(";")[0].strip() not in (content_type, "application/octet-stream"):
        raise ApplicationError(f"The file says it is {declared_type} but it is a {fmt} image.", param="input_reference")
    return data, content_type, extension


def _fingerprint(request: GenerationRequest, *, seconds: int, size: str, remix_of: str | None) -> str:
    canonical = {
        "model": catalog.get_model(request.model).qualified_id,
        "prompt": request.prompt,
        "seconds": seconds,
        "size": size,
        "seed": request.seed,
        "negative_prompt": request.negative_prompt or "",
        "image": hashlib.sha256(request.image).hexdigest() if request.image else None,
        "image_url": request.image_url,
        "remix_of": remix_of,
        "key": request.key_id,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _membership(org: Organization, user: User) -> Membership:
    membership = Membership.objects.select_related("organization", "user").filter(organization=org, user=user).first()
    if membership is None:
        raise PermissionDeniedError("You are not a member of this organization.")
    if not membership.can_generate:
        raise PermissionDeniedError("Viewers cannot generate videos. Ask an owner or admin for the member role.")
    return membership


def generation_create(
    *,
    org: Organization,
    user: User,
    request: GenerationRequest,
    idempotency_key: str = "",
    remix_of: Generation | None = None,
) -> Generation:
    """Validate, estimate, check budgets and place a hold, save, and send the job on commit.

    With an ``idempotency_key``, the same request returns the generation it created the first
    time (no second job, no second hold); a different request with the same key is a conflict.
    """
    membership = _membership(org, user)
    prompt = (request.prompt or "").strip()
    if not prompt:
        raise ApplicationError("A prompt is required.", param="prompt")
    if len(prompt) > PROMPT_MAX:
        raise ApplicationError(f"The prompt is limited to {PROMPT_MAX} characters.", param="prompt")
    if request.image and request.image_url:
        raise ApplicationError("Give an image file or an image URL, not both.", param="input_reference")

    errors = catalog.validate_request(
        model_id=request.model,
        seconds=request.seconds,
        size=request.size,
        has_image=bool(request.image or request.image_url),
        is_remix=remix_of is not None,
        seed=request.seed,
        negative_prompt=request.negative_prompt or None,
    )
    if errors:
        raise ValidationFailed(errors)
    model = catalog.get_model(request.model)
    seconds = request.seconds or (remix_of.seconds if remix_of else model.default_seconds)
    size = request.size or (remix_of.size if remix_of else model.default_size)

    image = None
    if request.image:
        image = _validate_image(request.image, request.image_content_type)
    if request.image_url:
        try:
            check_url(request.image_url)
        except ProviderError as exc:
            raise ApplicationError(exc.message, param="input_reference") from None

    provider_cls = registry.get_provider_class(model.provider)
    key = None
    if provider_cls.requires_key:
        key = key_selectors.provider_key_for(org=org, provider=model.provider, public_id=request.key_id)
        if key is None:
            raise ApplicationError(
                f"{org.name} has no {provider_cls.label} key"
                + (" with that id" if request.key_id else "")
                + ". An owner or admin can add one in Settings → Keys.",
                param="model",
                code="missing_provider_key",
            )
        if key.status == "invalid":
            raise ApplicationError(
                f"The {provider_cls.label} key …{key.last4} was rejected by the provider ({key.last_error}). "
                "Replace it in Settings → Keys.",
                param="model",
                code="invalid_provider_key",
            )

    estimate = catalog.estimate_cost(model, seconds=seconds, size=size)
    fingerprint = _fingerprint(request, seconds=seconds, size=size, remix_of=remix_of.public_id if remix_of else None)
    now = _now()
    with transaction.atomic():
        locked_org = Organization.objects.select_for_update().get(pk=org.pk)
        if idempotency_key:
            existing = Generation.objects.filter(organization=org, user=user, idempotency_key=idempotency_key).first()
            if existing is not None:
                if existing.request_fingerprint != fingerprint:
                    raise Conflict(
                        "This Idempotency-Key was already used with a different request.",
                        code="idempotency_key_reused",
                    )
                return existing
        ledger.check_budget(org=locked_org, membership=membership, amount=estimate, period=ledger.period_of(now))
        gen_id = public_id("video")
        input_key, input_type = "", ""
        if image is not None:
            data, input_type, extension = image
            input_key = storage.input_key(org.slug, gen_id, extension)
            storage.save_bytes(input_key, data)
        gen = Generation.objects.create(
            organization=org,
            public_id=gen_id,
            user=user,
            provider_key=key,
            provider=model.provider,
            model=model.id,
            prompt=prompt,
            seconds=seconds,
            size=size,
            seed=request.seed,
            negative_prompt=request.negative_prompt or "",
            input_image=input_key,
            input_image_type=input_type,
            input_image_url=request.image_url or "",
            remix_of=remix_of,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
            state=State.CREATED,
            next_poll_at=_alarm(0),
            deadline_at=now + timedelta(seconds=settings.GENERATION_DEADLINE_SECONDS),
            estimated_cost=estimate,
            price_version=model.price_version,
        )
        ledger.hold(gen)
        GenerationEvent.objects.create(generation=gen, from_state="", to_state=State.CREATED, message="Requested.")
        _schedule("submit", gen, 0)
    logger.info("generation %s created: %s %ss %s", gen.public_id, model.qualified_id, seconds, size)
    return gen


def generation_remix(
    *, org: Organization, user: User, source: Generation, prompt: str, idempotency_key: str = ""
) -> Generation:
    """A new video from a completed one with a new prompt, on the same model, length and size."""
    if source.state != State.COMPLETED or source.deleted_at is not None:
        raise ApplicationError("Only a completed video can be remixed.", param="video_id", code="invalid_state")
    request = GenerationRequest(model=source.model, prompt=prompt, seconds=source.seconds, size=source.size)
    return generation_create(org=org, user=user, request=request, idempotency_key=idempotency_key, remix_of=source)


# --- the job's steps -------------------------------------------------------------------------


def generation_submit(*, generation_id: int) -> None:
    """Submit once. A row that already has a provider job id is polled, never resubmitted."""
    gen = _fresh(generation_id)
    if gen is None:
        return
    if gen.provider_job_id:
        if _transition(gen, from_states=[State.CREATED, State.SUBMITTING], to=State.QUEUED, next_poll_at=_alarm(0)):
            _schedule("poll", gen, 0)
        return
    if gen.state != State.CREATED:
        return
    if _past_deadline(gen):
        _expire(gen)
        return
    claimed = _transition(
        gen,
        from_states=[State.CREATED],
        to=State.SUBMITTING,
        submit_attempts=F("submit_attempts") + 1,
        next_poll_at=_now() + timedelta(seconds=_seconds("GENERATION_SUBMIT_LEASE_SECONDS")),
    )
    if not claimed:
        return  # another worker has it
    try:
        adapter = _adapter(gen)
        spec = _spec(gen)
        if gen.remix_of_id:
            job_id = adapter.remix(gen.remix_of.provider_job_id, spec)
        else:
            job_id = adapter.submit(spec)
    except ProviderError as exc:
        _after_submit_error(gen, exc)
        return
    _accept_job(gen, job_id, via="submitted")


def _accept_job(gen: Generation, job_id: str, *, via: str) -> None:
    first_poll = _poll_delay(0, None)
    if _transition(
        gen,
        from_states=[State.SUBMITTING],
        to=State.QUEUED,
        message=f"Provider job {job_id} {via}.",
        provider_job_id=job_id,
        submitted_at=_now(),
        submit_uncertain=False,
        transient_errors=0,
        next_poll_at=_alarm(first_poll),
    ):
        _schedule("poll", gen, first_poll)
        return
    # The row moved on while we were submitting (an operator failed it): never lose the job id.
    Generation.objects.filter(pk=gen.pk, provider_job_id="").update(provider_job_id=job_id)
    gen.refresh_from_db()
    _note(gen, f"Provider job {job_id} {via} after the generation ended; canceling it at the provider.")
    try:
        adapter = _adapter(gen)
        if adapter.supports_cancel:
            adapter.cancel(job_id)
    except ProviderError as exc:
        _note(gen, f"Cancel failed: {exc.message}")


def _after_submit_error(gen: Generation, exc: ProviderError) -> None:
    if exc.uncertain:
        # The request may have reached the provider: reconcile, never blindly resubmit.
        Generation.objects.filter(pk=gen.pk, state=State.SUBMITTING).update(
            submit_uncertain=True, next_poll_at=_now() + timedelta(seconds=_backoff(0, exc.retry_after))
        )
        _note(gen, f"Submit outcome unknown ({exc.message}); will look the job up instead of resubmitting.")
        return
    if exc.permanent:
        _provider_failure(gen, exc)
        return
    delay = _backoff(gen.transient_errors, exc.retry_after)
    if _now() + timedelta(seconds=delay) >= gen.deadline_at:
        _fail(gen, code=exc.code or "provider_unavailable", message=f"{exc.message} (gave up at the deadline)")
        return
    if _transition(
        gen,
        from_states=[State.SUBMITTING],
        to=State.CREATED,
        message=f"Submit failed, retrying in {delay:.0f}s: {exc.message}",
        transient_errors=F("transient_errors") + 1,
        next_poll_at=_alarm(delay),
    ):
        _schedule("submit", gen, delay)


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
        adapter = _adapter(gen)
        can_look_up = type(adapter).find_by_reference is not VideoProvider.find_by_reference
        job_id = adapter.find_by_reference(gen.public_id) if can_look_up else None
    except ProviderError as exc:
        if exc.permanent:
            _provider_failure(gen, exc)
        else:
            Generation.objects.filter(pk=gen.pk, state=State.SUBMITTING).update(
                next_poll_at=_now() + timedelta(seconds=_backoff(gen.transient_errors, exc.retry_after)),
                transient_errors=F("transient_errors") + 1,
            )
        return
    if job_id:
        _accept_job(gen, job_id, via="found by reference")
    elif can_look_up:
        if _transition(
            gen,
            from_states=[State.SUBMITTING],
            to=State.CREATED,
            message="The provider has no job for this generation; submitting again.",
            submit_uncertain=False,
            next_poll_at=_alarm(0),
        ):
            _schedule("submit", gen, 0)
    else:
        _fail(
            gen,
            code="submit_uncertain",
            message=(
                "The provider did not confirm this job and cannot be asked about it, so MediaRouter did not "
                "submit it again (that could bill you twice). No charge here; please try again."
            ),
        )


def generation_poll(*, generation_id: int) -> None:
    """One status call, then the next step."""
    gen = _fresh(generation_id)
    if gen is None or gen.state not in POLLING_STATES:
        return
    if _past_deadline(gen):
        _expire(gen)
        return
    try:
        status = _adapter(gen).status(gen.provider_job_id)
    except ProviderError as exc:
        if exc.permanent:
            _provider_failure(gen, exc)
            return
        delay = _backoff(gen.transient_errors, exc.retry_after)
        Generation.objects.filter(pk=gen.pk, state__in=POLLING_STATES).update(
            poll_count=F("poll_count") + 1,
            transient_errors=F("transient_errors") + 1,
            next_poll_at=_alarm(delay),
            updated_at=_now(),
        )
        _note(gen, f"Status check failed, retrying in {delay:.0f}s: {exc.message}")
        _schedule("poll", gen, delay)
        return

    if status.state in (JobState.QUEUED, JobState.IN_PROGRESS):
        delay = _poll_delay(gen.poll_count, status.poll_after)
        new_state = State.QUEUED if status.state == JobState.QUEUED else State.IN_PROGRESS
        if _transition(
            gen,
            from_states=POLLING_STATES,
            to=new_state,
            progress=status.progress,
            provider_status=status.raw_status[:40],
            poll_count=F("poll_count") + 1,
            transient_errors=0,
            next_poll_at=_alarm(delay),
        ):
            _schedule("poll", gen, delay)
    elif status.state == JobState.COMPLETED:
        if _transition(
            gen,
            from_states=POLLING_STATES,
            to=State.DOWNLOADING,
            message="Finished at the provider; copying the video to storage.",
            progress=100,
            provider_status=status.raw_status[:40],
            poll_count=F("poll_count") + 1,
            output_url=status.output_urls[0] if status.output_urls else "",
            next_poll_at=_alarm(0),
        ):
            _schedule("download", gen, 0)
    elif status.state == JobState.CANCELED:
        Generation.objects.filter(pk=gen.pk).update(poll_count=F("poll_count") + 1)
        _fail(gen, code="canceled", message="Canceled at the provider.", state=State.CANCELED)
    else:
        Generation.objects.filter(pk=gen.pk).update(poll_count=F("poll_count") + 1)
        _fail(
            gen,
            code=status.error_code or "generation_failed",
            message=status.error_message or "The provider could not generate this video. No charge.",
        )


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

    def heartbeat(_size: int) -> None:
        Generation.objects.filter(pk=gen.pk, state=State.DOWNLOADING).update(next_poll_at=_now() + lease)

    key = storage.video_key(gen.organization.slug, gen.public_id)
    try:
        adapter = _adapter(gen)
        url = gen.output_url or None
        if attempt > 0 and url:
            # provider URLs expire: after a failed attempt, ask for a fresh one
            fresh = adapter.status(gen.provider_job_id)
            url = fresh.output_urls[0] if fresh.output_urls else url
        with adapter.download(gen.provider_job_id, url=url, variant="video") as download:
            stored = storage.save_stream(key, download.chunks, on_progress=heartbeat)
            content_type = download.content_type or "video/mp4"
    except ProviderError as exc:
        if exc.permanent or _past_deadline(gen):
            _provider_failure(gen, exc)
            return
        delay = _backoff(attempt, exc.retry_after)
        Generation.objects.filter(pk=gen.pk, state=State.DOWNLOADING).update(
            next_poll_at=_alarm(delay), transient_errors=F("transient_errors") + 1
        )
        _note(gen, f"Download failed, retrying in {delay:.0f}s: {exc.message}")
        _schedule("download", gen, delay)
        return
    if stored.size == 0:
        _fail(gen, code="empty_video", message="The provider returned an empty file. No charge.")
        return

    thumbnail = ""
    if adapter.supports_thumbnail:
        try:
            with adapter.download(gen.provider_job_id, variant="thumbnail") as download:
                extension = THUMBNAIL_EXTENSIONS.get((download.content_type or "").split(";")[0], "jpg")
                thumbnail = storage.save_stream(
                    storage.thumbnail_key(gen.organization.slug, gen.public_id, extension), download.chunks
                ).key
        except ProviderError as exc:
            _note(gen, f"No thumbnail: {exc.message}")

    with transaction.atomic():
        if _transition(
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
        ):
            ledger.settle(gen, gen.estimated_cost)


STEP_FOR_STATE = {
    State.CREATED: "submit",
    State.SUBMITTING: "reconcile",
    State.QUEUED: "poll",
    State.IN_PROGRESS: "poll",
    State.DOWNLOADING: "download",
}


def generation_dispatch_due(*, limit: int = 500) -> int:
    """The safety net, run by beat every few seconds across all organizations: every active
    generation whose alarm has passed gets its step sent again (lost message, dead worker), and
    jobs past their deadline are ended. Claims each row with a conditional UPDATE, so several
    beats or dispatchers never double-send. Returns how many steps were sent."""
    from apps.generations import tasks

    now = _now()
    due = list(
        Generation.all_orgs.filter(state__in=ACTIVE_STATES, next_poll_at__lte=now)
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


# --- member actions --------------------------------------------------------------------------


def generation_cancel(*, by: Membership, generation: Generation) -> Generation:
    """Cancel an unfinished generation: at the provider where it can, and release the hold."""
    if not (by.can_manage or generation.user_id == by.user_id):
        raise PermissionDeniedError("Only the member who started it, an owner or an admin can cancel it.")
    return cancel(generation, reason="Canceled by a member.")


def cancel(generation: Generation, *, reason: str) -> Generation:
    """Cancel without a permission check (members go through generation_cancel; operators through
    apps.generations.operations)."""
    if generation.is_terminal:
        raise ApplicationError("This video has already finished.", code="invalid_state")
    if generation.state == State.CREATED:
        if _fail(generation, code="canceled", message=reason, state=State.CANCELED):
            generation.refresh_from_db()
            return generation
        generation.refresh_from_db()
    if generation.state in POLLING_STATES:
        adapter = _adapter(generation)
        if not adapter.supports_cancel:
            raise ApplicationError(
                f"{type(adapter).label} cannot cancel a job once it has started; it will finish.",
                code="cancel_unsupported",
            )
        try:
            adapter.cancel(generation.provider_job_id)
        except ProviderError as exc:
            raise ApplicationError(f"The provider refused to cancel: {exc.message}", code="cancel_failed") from None
        _fail(generation, code="canceled", message=reason, state=State.CANCELED)
        generation.refresh_from_db()
        return generation
    raise Conflict("This video is being submitted or stored right now; try again in a few seconds.")


def generation_delete(*, by: Membership, generation: Generation) -> None:
    """Delete the stored files (and the provider's copy where it keeps one). The ledger and the
    generation's metadata stay: costs remain accounted for."""
    if not (by.can_manage or generation.user_id == by.user_id):
        raise PermissionDeniedError("Only the member who made it, an owner or an admin can delete it.")
    if generation.is_active:
        generation_cancel(by=by, generation=generation)
        generation.refresh_from_db()
    for key in (generation.video_file, generation.thumbnail_file, generation.input_image):
        storage.delete(key)
    if generation.provider_job_id and not generation.remixes.exists():
        try:
            adapter = _adapter(generation)
            if adapter.supports_delete:
                adapter.delete(generation.provider_job_id)
        except ProviderError as exc:
            logger.info("provider delete of %s failed: %s", generation.public_id, exc.code)
    Generation.objects.filter(pk=generation.pk).update(
        deleted_at=_now(), video_file="", thumbnail_file="", input_image="", output_url=""
    )
    _note(generation, "Deleted; stored files removed, costs kept.")
