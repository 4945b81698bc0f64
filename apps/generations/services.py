"""Writes for generations that members ask for: create, remix, cancel and delete.

Everything after a generation is created (submit, poll, download, the dispatcher) is the job
engine, :mod:`apps.generations.engine`; money is :mod:`apps.billing.ledger`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, Organization, User
from apps.api_keys import selectors as key_selectors
from apps.billing import ledger
from apps.core.errors import ApplicationError, Conflict, NotFound, PermissionDeniedError
from apps.core.ids import public_id
from apps.generations import engine, storage
from apps.generations.images import validate_image
from apps.generations.models import POLLING_STATES, Generation, GenerationEvent, RoutingPolicy, State
from apps.generations.resolve import GenerationRequest, ResolvedRequest, resolve_request
from apps.providers import registry
from apps.providers.base import ProviderError
from apps.providers.http import check_url

logger = logging.getLogger(__name__)

PROMPT_MAX = 32000

__all__ = [
    "PROMPT_MAX",
    "GenerationRequest",
    "generation_cancel",
    "generation_cancel_unchecked",
    "generation_create",
    "generation_delete",
    "generation_insert",
    "generation_library_set",
    "generation_prepare",
    "generation_remix",
    "normalize_tag",
    "routing_policy_set",
]


# --- create ----------------------------------------------------------------------------------


def _fingerprint(request: GenerationRequest, resolved: ResolvedRequest, *, remix_of: str | None) -> str:
    canonical = {
        # what was asked, not where the router sent it: a retry after the router's choice changed
        # (a circuit opened) is still the same request
        "model": resolved.requested_model or resolved.model.qualified_id,
        "audio": request.audio,
        "prompt": request.prompt,
        "seconds": resolved.seconds,
        "size": resolved.size,
        "seed": request.seed,
        "negative_prompt": request.negative_prompt or "",
        "image": hashlib.sha256(request.image).hexdigest() if request.image else None,
        "image_url": request.image_url,
        "remix_of": remix_of,
        "key": request.key_id,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _membership(org: Organization, user: User, *, known: Membership | None = None) -> Membership:
    """The member who creates, refused when not a member or a viewer. ``known``: the membership the
    caller already read for this request (the API token's, the page's), used without a query; the
    create reads it again under the organization's lock (:func:`_membership_locked`)."""
    if known is not None and known.organization_id == org.pk and known.user_id == user.pk:
        membership = known
    else:
        membership = (
            Membership.objects.select_related("organization", "user").filter(organization=org, user=user).first()
        )
    return _may_generate(membership)


def _may_generate(membership: Membership | None) -> Membership:
    if membership is None:
        raise PermissionDeniedError("You are not a member of this organization.")
    if not membership.can_generate:
        raise PermissionDeniedError("Viewers cannot generate videos. Ask an owner or admin for the member role.")
    return membership


def _membership_locked(org: Organization, user: User) -> Membership:
    """The member's row with the organization's row locked (``FOR UPDATE OF`` the organization),
    in one query: the role and limit the budget check uses are read under the lock, and a member
    removed (or made a viewer) since the request began is refused here."""
    membership = (
        Membership.objects.select_related("organization")
        .select_for_update(of=("organization",))
        .filter(organization=org, user=user)
        .order_by()
        .first()
    )
    if membership is not None:
        membership.user = user
    return _may_generate(membership)


@dataclass(frozen=True)
class PreparedCreate:
    """A create request that passed every check that needs no lock (membership, prompt, the
    catalog's rules, the image, the provider key): what :func:`generation_create` and a batch
    (:mod:`apps.generations.batches`) insert once the budget check under the lock has passed."""

    membership: Membership
    request: GenerationRequest
    prompt: str
    resolved: ResolvedRequest
    key: object | None  # the ProviderKey, where the provider needs one
    image: tuple[bytes, str, str] | None  # validated: (bytes, content type, extension)
    fingerprint: str
    remix_of: Generation | None = None

    @property
    def estimate(self) -> Decimal:
        return self.resolved.estimate


def generation_prepare(
    *,
    membership: Membership,
    request: GenerationRequest,
    resolved: ResolvedRequest | None = None,
    remix_of: Generation | None = None,
) -> PreparedCreate:
    """Every check of a create that takes no lock and writes nothing; raises ApplicationError."""
    org = membership.organization
    prompt = (request.prompt or "").strip()
    if not prompt:
        raise ApplicationError("A prompt is required.", param="prompt")
    if len(prompt) > PROMPT_MAX:
        raise ApplicationError(f"The prompt is limited to {PROMPT_MAX} characters.", param="prompt")
    if request.image and request.image_url:
        raise ApplicationError("Give an image file or an image URL, not both.", param="input_reference")

    if resolved is None:
        resolved = resolve_request(org=org, request=request, remix_of=remix_of)
    model = resolved.model

    image = None
    if request.image:
        image = validate_image(request.image, request.image_content_type)
    if request.image_url:
        try:
            check_url(request.image_url)
        except ProviderError as exc:
            raise ApplicationError(exc.message, param="input_reference") from None

    provider_cls = registry.get_provider_class(model.provider)
    key = None
    if provider_cls.requires_key:
        if resolved.provider_keys is not None:  # the keys the router read for this request
            key = key_selectors.provider_key_pick(
                resolved.provider_keys, provider=model.provider, public_id=request.key_id
            )
        else:
            key = key_selectors.provider_key_for(org=org, provider=model.provider, public_id=request.key_id)
        if key is None and request.key_id:
            # another organization's key, or none at all: the same 404, named for the field
            raise NotFound(
                f"{org.name} has no {provider_cls.label} key with that id.", param="key_id", code="key_not_found"
            )
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
    return PreparedCreate(
        membership=membership,
        request=request,
        prompt=prompt,
        resolved=resolved,
        key=key,
        image=image,
        fingerprint=_fingerprint(request, resolved, remix_of=remix_of.public_id if remix_of else None),
        remix_of=remix_of,
    )


def save_input_image(prepared: PreparedCreate, gen_id: str) -> tuple[str, str]:
    """Write the request's image under a key of its own (before any lock is taken, so no create in
    the organization waits behind an upload); ("", "") without an image."""
    if prepared.image is None:
        return "", ""
    data, input_type, extension = prepared.image
    input_key = storage.input_key(prepared.membership.organization.slug, gen_id, extension)
    storage.save_bytes(input_key, data)
    return input_key, input_type


def generation_insert(
    *,
    prepared: PreparedCreate,
    gen_id: str,
    input_key: str = "",
    input_type: str = "",
    idempotency_key: str = "",
    batch=None,
    batch_index: int | None = None,
) -> Generation:
    """The row, its hold and its first event, inside the caller's transaction, after the budget
    check under the organization's lock. A batch item is inserted waiting (no alarm, no submit):
    the batch releases it when a slot is free (``batches``); any other is sent on commit."""
    org, user = prepared.membership.organization, prepared.membership.user
    resolved, request, model = prepared.resolved, prepared.request, prepared.resolved.model
    now = timezone.now()
    waiting = batch is not None
    gen = Generation.objects.create(
        organization=org,
        public_id=gen_id,
        user=user,
        provider_key=prepared.key,
        provider=model.provider,
        model=model.id,
        requested_model=resolved.requested_model[:80],
        substituted_from=resolved.route.substituted_from if resolved.route else "",
        audio=request.audio,
        prompt=prepared.prompt,
        seconds=resolved.seconds,
        size=resolved.size,
        seed=request.seed,
        negative_prompt=request.negative_prompt or "",
        input_image=input_key,
        input_image_type=input_type,
        input_image_url=request.image_url or "",
        remix_of=prepared.remix_of,
        idempotency_key=idempotency_key,
        request_fingerprint=prepared.fingerprint,
        batch=batch,
        batch_index=batch_index,
        batch_waiting=waiting,
        state=State.CREATED,
        next_poll_at=None if waiting else engine.alarm(0),
        deadline_at=now + timedelta(seconds=settings.GENERATION_DEADLINE_SECONDS),
        estimated_cost=resolved.estimate,
        price_version=model.price_version,
    )
    ledger.hold(gen, new=True)
    GenerationEvent.objects.create(
        generation=gen, from_state="", to_state=State.CREATED, message=_requested_message(resolved)
    )
    if not waiting:
        engine.schedule("submit", gen, 0)
    return gen


def generation_create(
    *,
    org: Organization,
    user: User,
    request: GenerationRequest,
    resolved: ResolvedRequest | None = None,
    idempotency_key: str = "",
    remix_of: Generation | None = None,
    membership: Membership | None = None,
) -> Generation:
    """Validate, estimate, check budgets and place a hold, save, and send the job on commit.

    ``resolved``: the request already resolved by the caller (``resolve.resolve_request``, which
    the native API runs first); otherwise it is resolved here. With an ``idempotency_key``, the
    same request returns the generation it created the first time (no second job, no second
    hold); a different request with the same key is a conflict. ``membership``: the caller's
    membership of ``org`` as already read for this request (the API token's, the page's), which
    spares a query before the lock; it is read again, authoritatively, under the lock.
    """
    membership = _membership(org, user, known=membership)
    prepared = generation_prepare(membership=membership, request=request, resolved=resolved, remix_of=remix_of)
    model, estimate = prepared.resolved.model, prepared.estimate
    now = timezone.now()
    # The image is written before the organization's row is locked, so no create in the
    # organization waits behind an upload (S3). Its key is new for every attempt: a create that is
    # refused below, or turns out to be an idempotent replay, deletes it again after the rollback.
    gen_id = public_id("video")
    input_key, input_type = save_input_image(prepared, gen_id)
    existing, replayed = None, False
    try:
        with transaction.atomic():
            # one query: the organization's row locked, and the member's role and limit read under it
            locked = _membership_locked(org, user)
            locked_org = locked.organization
            if idempotency_key:
                existing = Generation.objects.filter(
                    organization=org, user=user, idempotency_key=idempotency_key
                ).first()
            if existing is not None:
                if existing.request_fingerprint != prepared.fingerprint:
                    raise Conflict(
                        "This Idempotency-Key was already used with a different request.",
                        code="idempotency_key_reused",
                    )
                replayed = True
                return existing
            ledger.check_budget(org=locked_org, membership=locked, amount=estimate, period=ledger.period_of(now))
            gen = generation_insert(
                prepared=prepared,
                gen_id=gen_id,
                input_key=input_key,
                input_type=input_type,
                idempotency_key=idempotency_key,
            )
    except BaseException:
        discard_input(input_key, unless_saved=(org, gen_id))
        raise
    finally:
        if replayed:  # an idempotent replay: the image written for this attempt is not used
            discard_input(input_key)
    logger.info("generation %s created: %s %ss %s", gen.public_id, model.qualified_id, gen.seconds, gen.size)
    return gen


def _requested_message(resolved: ResolvedRequest) -> str:
    """The first event of the history: what was asked and where the router sends it."""
    asked = resolved.requested_model or resolved.model.qualified_id
    message = f"Requested {asked}; runs on {resolved.model.qualified_id} at ${resolved.estimate}."
    if resolved.route is not None:
        if resolved.route.substituted_from:
            message += (
                f" {resolved.route.substituted_from} is retired; this organization runs {resolved.model.id} instead."
            )
        skipped = [
            f"{c.model.qualified_id} ({c.reason})"
            for c in resolved.route.candidates
            if not c.usable and c.model.qualified_id != resolved.model.qualified_id
        ]
        if skipped and not resolved.route.pinned:
            message += " Skipped: " + "; ".join(skipped) + "."
    return message[:2000]


def discard_input(key: str, *, unless_saved: tuple[Organization, str] | None = None) -> None:
    """Delete an input image no generation refers to (best effort: a leftover is only an orphan,
    which nothing serves). ``unless_saved``: keep it if that generation's row exists after all
    (it committed before a later error, e.g. in an on-commit hook)."""
    if not key:
        return
    try:
        if unless_saved and Generation.objects.filter(organization=unless_saved[0], public_id=unless_saved[1]).exists():
            return
        storage.delete(key)
    except Exception:
        logger.warning("could not delete the unused input image %s", key, exc_info=True)


def generation_remix(
    *,
    org: Organization,
    user: User,
    source: Generation,
    prompt: str,
    idempotency_key: str = "",
    membership: Membership | None = None,
) -> Generation:
    """A new video from a completed one with a new prompt, on the same model, length and size."""
    if source.state != State.COMPLETED or source.deleted_at is not None:
        raise ApplicationError("Only a completed video can be remixed.", param="video_id", code="invalid_state")
    request = GenerationRequest(model=source.model, prompt=prompt, seconds=source.seconds, size=source.size)
    return generation_create(
        org=org,
        user=user,
        request=request,
        idempotency_key=idempotency_key,
        remix_of=source,
        membership=membership,
    )


# --- member actions --------------------------------------------------------------------------


def generation_cancel(*, by: Membership, generation: Generation) -> Generation:
    """Cancel an unfinished generation: at the provider where it can, and release the hold."""
    if not (by.can_manage or generation.user_id == by.user_id):
        raise PermissionDeniedError("Only the member who started it, an owner or an admin can cancel it.")
    return generation_cancel_unchecked(generation=generation, reason="Canceled by a member.")


def generation_cancel_unchecked(*, generation: Generation, reason: str) -> Generation:
    """Cancel without a permission check: for callers that made their own (members go through
    generation_cancel; operators through apps.generations.operations)."""
    if generation.is_terminal:
        raise ApplicationError("This video has already finished.", code="invalid_state")
    if generation.state == State.CREATED:
        if engine.fail(generation, code="canceled", message=reason, state=State.CANCELED):
            generation.refresh_from_db()
            return generation
        generation.refresh_from_db()
    if generation.state in POLLING_STATES:
        adapter = engine.adapter_for(generation)
        if not adapter.supports_cancel:
            raise ApplicationError(
                f"{type(adapter).label} cannot cancel a job once it has started; it will finish.",
                code="cancel_unsupported",
            )
        try:
            adapter.cancel(generation.provider_job_id, job_data=generation.provider_job_data)
        except ProviderError as exc:
            raise ApplicationError(f"The provider refused to cancel: {exc.message}", code="cancel_failed") from None
        engine.fail(generation, code="canceled", message=reason, state=State.CANCELED)
        generation.refresh_from_db()
        return generation
    raise Conflict("This video is being submitted or stored right now; try again in a few seconds.")


def generation_delete(*, by: Membership, generation: Generation) -> None:
    """Delete the stored files (and the provider's copy where it keeps one). The ledger and the
    generation's metadata stay: costs remain accounted for.

    A running job is canceled first. One the provider cannot cancel now (it does not support it,
    or the job is being submitted or stored) is hidden at once and keeps running: the provider
    bills it, so it is still charged when it completes, and the download step removes its files
    as soon as they land (``engine.generation_download``)."""
    if not (by.can_manage or generation.user_id == by.user_id):
        raise PermissionDeniedError("Only the member who made it, an owner or an admin can delete it.")
    if generation.is_active:
        from apps.generations.models import ACTIVE_STATES

        try:
            generation_cancel(by=by, generation=generation)
        except ApplicationError as exc:
            hidden = Generation.objects.filter(pk=generation.pk, state__in=ACTIVE_STATES, deleted_at=None).update(
                deleted_at=timezone.now()
            )
            if hidden:
                engine.note(generation, f"Deleted while running ({exc.message}); its files go when it lands.")
                return
        generation.refresh_from_db()  # it ended meanwhile (or was canceled): delete it now
    for key in (generation.video_file, generation.thumbnail_file, generation.input_image):
        storage.delete(key)
    if generation.provider_job_id and not generation.remixes.exists():
        try:
            adapter = engine.adapter_for(generation)
            if adapter.supports_delete:
                adapter.delete(generation.provider_job_id)
        except ProviderError as exc:
            logger.info("provider delete of %s failed: %s", generation.public_id, exc.code)
    Generation.objects.filter(pk=generation.pk).update(
        deleted_at=timezone.now(), video_file="", thumbnail_file="", input_image="", output_url=""
    )
    engine.note(generation, "Deleted; stored files removed, costs kept.")


# --- the organization's routing policy --------------------------------------------------------


def routing_policy_set(
    *,
    by: Membership,
    order: str,
    suppliers: list[str] | tuple[str, ...] = (),
    per_model: dict[str, list[str]] | None = None,
    resubmit_on_supplier_failure: bool = False,
    substitutions: dict[str, str] | None = None,
) -> RoutingPolicy:
    """Set how the organization's requests choose among a model's suppliers (owners and admins).

    ``order``: one of ``routing.ORDERS``; ``suppliers`` for ``explicit``; ``per_model`` an order per
    canonical model; ``substitutions`` an explicit rule for retired models (retired id -> the
    canonical id to run instead). Every name is checked against the registry and the catalog."""
    from apps.audit.services import audit_record
    from apps.generations import routing
    from apps.providers import catalog

    if not by.can_manage:
        raise PermissionDeniedError("Only owners and admins can change the routing policy.")
    if order not in routing.ORDERS:
        raise ApplicationError(f"The order is one of {', '.join(routing.ORDERS)}.", param="order")

    def slugs(values, param: str) -> list[str]:
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise ApplicationError("A list of supplier names is expected.", param=param)
        found = []
        for value in values:
            try:
                slug = registry.canonical_slug(value)
            except registry.UnknownProvider as exc:
                raise ApplicationError(str(exc), param=param, code="unknown_provider") from None
            if slug not in found:
                found.append(slug)
        return found

    canonical = set(catalog.canonical_ids())
    suppliers = slugs(list(suppliers or ()), "suppliers")
    if order == "explicit" and not suppliers:
        raise ApplicationError("An explicit order needs a list of suppliers.", param="suppliers")
    models: dict[str, list[str]] = {}
    for model_id, values in (per_model or {}).items():
        if model_id not in canonical:
            raise ApplicationError(f"Unknown model {model_id!r} in per_model.", param="per_model")
        models[model_id] = slugs(values, "per_model")
    rules: dict[str, str] = {}
    for retired, replacement in (substitutions or {}).items():
        if not isinstance(retired, str) or not catalog.suppliers(retired, enabled_only=False):
            raise ApplicationError(f"Unknown model {retired!r} in substitutions.", param="substitutions")
        if not isinstance(replacement, str) or replacement not in canonical:
            raise ApplicationError(f"Unknown replacement {replacement!r}.", param="substitutions")
        rules[retired] = replacement
    policy, _created = RoutingPolicy.objects.update_or_create(
        organization=by.organization,
        defaults={
            "order": order,
            "suppliers": suppliers,
            "per_model": models,
            "resubmit_on_supplier_failure": bool(resubmit_on_supplier_failure),
            "substitutions": rules,
            "updated_by": by.user,
        },
    )
    audit_record(
        org=by.organization,
        actor=by.user,
        action="routing.changed",
        target=by.organization.slug,
        detail={
            "order": order,
            "suppliers": suppliers,
            "per_model": models,
            "resubmit_on_supplier_failure": bool(resubmit_on_supplier_failure),
            "substitutions": rules,
        },
    )
    return policy


# --- the library: favourite and tag -------------------------------------------------------------

TAG_MAX = 40
# letters and digits of any script, spaces and a little punctuation: a label, not markup or a URL
_TAG = re.compile(r"^[\w][\w .:/#&+\-]*$")


def normalize_tag(value: str) -> str:
    """A tag as stored and matched: spaces collapsed, case folded ("Client A " and "client a" are
    one tag). Empty: no tag. ApplicationError (``param="tag"``) for one that is too long or holds
    anything but letters, digits, spaces and ``. : / # & + - _``."""
    tag = " ".join(str(value).split()).casefold()
    if not tag:
        return ""
    if len(tag) > TAG_MAX:
        raise ApplicationError(f"A tag is at most {TAG_MAX} characters.", param="tag", code="invalid_value")
    if not _TAG.match(tag):
        raise ApplicationError(
            "A tag starts with a letter or digit and holds only letters, digits, spaces and . : / # & + - _",
            param="tag",
            code="invalid_value",
        )
    return tag


def generation_library_set(
    *, by: Membership, generation: Generation, favourite: bool | None = None, tag: str | None = None
) -> Generation:
    """Star or unstar a video and set (or clear, with "") its tag; None leaves a field as it is.

    Favourites and tags belong to the organization (everyone sees the same star), so viewers, who
    only watch, cannot change them. One UPDATE of these columns only: it never races the engine's
    own conditional updates of the job's state."""
    if not by.can_generate:
        raise PermissionDeniedError("Viewers cannot change favourites or tags.")
    changes: dict = {}
    if favourite is not None:
        changes["favourite"] = bool(favourite)
    if tag is not None:
        changes["tag"] = normalize_tag(tag)
    if changes:
        Generation.objects.filter(pk=generation.pk).update(**changes)
        for name, value in changes.items():
            setattr(generation, name, value)
    return generation
