"""From what a member asks for to what will run: the one place where a model id becomes a catalog
``ModelInfo`` in the generations layer.

:func:`resolve_request` looks the model up once, fills in the defaults (the model's, or a remix's
source's), validates the request against the catalog's rules and prices it. The API shapes, the
Playground form, the estimate API and :func:`apps.generations.services.generation_create` all call
it, and hand the :class:`ResolvedRequest` down (validation, the estimate, the fingerprint, the
Generation row) instead of looking the model up again. Its ``model`` carries the price in effect
now (:func:`apps.billing.prices.catalog_price_effective`: a refreshed price, else the catalog's),
so the estimate, the hold, the charge and the recorded ``price_version`` agree. Choosing among several suppliers of one
canonical model (``fal/veo-3.1`` or ``replicate/veo-3.1``, by the organization's keys and policy)
belongs here too, in :func:`_supplier`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from apps.accounts.models import Organization
from apps.api_keys import selectors as key_selectors
from apps.billing.prices import catalog_price_effective
from apps.core.errors import ApplicationError, ValidationFailed
from apps.generations import selectors
from apps.generations.routing import Route, Unroutable
from apps.providers import catalog
from apps.providers.modelinfo import ModelInfo

if TYPE_CHECKING:
    from apps.generations.models import Generation


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
    audio: bool | None = None  # sound on or off, where the model can switch it (None: its default)
    # the wanted aspect ratio as (width, height), used only when no ``size`` is given (native API)
    aspect_ratio: tuple[int, int] | None = None


@dataclass(frozen=True)
class ResolvedRequest:
    """A request with its model found, its defaults applied, validated and priced."""

    model: ModelInfo
    seconds: int
    size: str
    audio: bool  # whether the output carries sound (the model's default where it can switch)
    has_image: bool
    estimate: Decimal  # USD, at the price in effect (apps.billing.prices; else the catalog's)
    requested_model: str = ""  # what the member named: canonical (routed) or supplier/model (pinned)
    route: Route | None = None  # the router's ordered suppliers (None for a remix: its source's)
    # the organization's provider keys as the router read them for this request (None for a remix):
    # the create takes its key from these instead of reading them again
    provider_keys: tuple | None = field(default=None, compare=False, repr=False)


class UnknownModelError(ValidationFailed):
    """The request names no model of the catalog (the native API reports it as ``model_not_found``)."""


def _supplier(*, org: Organization, request: GenerationRequest, has_image: bool) -> tuple[ModelInfo, Route, tuple]:
    """The catalog entry a request runs on, for this organization: the router's first usable
    supplier (``apps.generations.routing``) that can do what is asked (duration, size, image).

    When no usable supplier can, the first usable one is answered (its validation errors are what
    the member sees); when none is usable, the first supplier (the create path then says why: no
    key, an invalid key)."""

    def cost_of(model: ModelInfo) -> Decimal:
        try:
            return model.cost(
                seconds=request.seconds or model.default_seconds,
                size=request.size or model.default_size,
                audio=request.audio,
            )
        except ValueError:
            return model.price_range()[1] * Decimal(request.seconds or model.default_seconds)

    keys = tuple(key_selectors.provider_key_list(org=org))
    try:
        route = selectors.route_for(
            org=org, model_id=request.model, cost_of=cost_of, keys=selectors.supplier_keys(org=org, keys=keys)
        )
    except catalog.UnknownModel as exc:
        raise UnknownModelError({"model": str(exc)}) from None
    except Unroutable as exc:
        raise ValidationFailed({"model": str(exc)}, code="model_retired") from None
    usable = [c.model for c in route.candidates if c.usable]
    if not usable and all(c.reason.startswith("no longer offered") for c in route.candidates):
        raise ValidationFailed({"model": route.unavailable_message()}, code="model_not_available")
    for model in usable:
        if not _errors(model, request, has_image=has_image, is_remix=False):
            return model, route, keys
    return (usable or [route.candidates[0].model])[0], route, keys


def _errors(model: ModelInfo, request: GenerationRequest, *, has_image: bool, is_remix: bool, size=None) -> dict:
    return catalog.validate_request(
        model=model,
        seconds=request.seconds,
        size=size if size is not None else request.size,
        has_image=has_image,
        is_remix=is_remix,
        seed=request.seed,
        negative_prompt=request.negative_prompt or None,
    )


def generation_model(generation: Generation) -> ModelInfo | None:
    """The catalog entry a stored generation ran on (None once the catalog no longer lists it)."""
    return catalog.supplier_model(generation.provider, generation.model)


def resolve_request(
    *,
    org: Organization,
    request: GenerationRequest,
    remix_of: Generation | None = None,
    has_image: bool | None = None,
    validate: bool = True,
) -> ResolvedRequest:
    """Look the model up, apply defaults, validate and estimate ``request``.

    A remix runs on its source's model, and defaults to its source's duration and size.
    ``has_image`` overrides whether an input image comes with the request (the estimate API is
    told, not given, one). ``validate=False`` skips the catalog's rules, for a live estimate of
    settings still being chosen (the Playground, where the image may come later). Raises
    :class:`~apps.core.errors.ValidationFailed` with every field's message, and ApplicationError
    for an aspect ratio none of the model's sizes has.
    """
    if has_image is None:
        has_image = bool(request.image or request.image_url)
    route, keys = None, None
    if remix_of is not None:
        model = generation_model(remix_of)
        if model is None:
            raise UnknownModelError({"model": f"Unknown model {remix_of.model!r}."})
        model = catalog_price_effective(model)  # the price in effect now (the price history), else the catalog's
    else:
        model, route, keys = _supplier(org=org, request=request, has_image=has_image)  # routed at the prices in effect
    size = request.size
    if not size and request.aspect_ratio:
        size = size_for_aspect_ratio(model, request.aspect_ratio, has_image=has_image)
    if validate:
        errors = _errors(model, request, has_image=has_image, is_remix=remix_of is not None, size=size or "")
        if not size:
            errors.pop("size", None)
        if errors:
            raise ValidationFailed(errors)
    seconds = request.seconds or (remix_of.seconds if remix_of else model.default_seconds)
    size = size or (remix_of.size if remix_of else model.default_size)
    audio = model.audio_for(request.audio)
    return ResolvedRequest(
        model=model,
        seconds=seconds,
        size=size,
        audio=audio,
        has_image=has_image,
        estimate=catalog.estimate_cost(model, seconds=seconds, size=size, audio=audio),
        requested_model=(remix_of.requested_model or remix_of.supplier_model) if remix_of else request.model.strip(),
        route=route,
        provider_keys=keys,
    )


# --- sizes and aspect ratios -----------------------------------------------------------------


def aspect_ratio_of(size: str) -> str:
    """``1280x720`` → ``16:9``."""
    w, h = (int(v) for v in size.split("x"))
    g = math.gcd(w, h)
    return f"{w // g}:{h // g}"


def size_for_aspect_ratio(model: ModelInfo, ratio: tuple[int, int], *, has_image: bool) -> str:
    """The model's size for an aspect ratio: the exact pixel pair where the model has it, else its
    first size of the same ratio (``16:9`` → ``1280x720``)."""
    w, h = ratio
    allowed = model.allowed_sizes(has_image=has_image)
    exact = f"{w}x{h}"
    if exact in allowed:
        return exact
    wanted = (w // math.gcd(w, h), h // math.gcd(w, h))
    for size in allowed:
        sw, sh = (int(v) for v in size.split("x"))
        if (sw // math.gcd(sw, sh), sh // math.gcd(sw, sh)) == wanted:
            return size
    ratios = sorted({aspect_ratio_of(s) for s in allowed})
    raise ApplicationError(
        f"{model.label} supports aspect ratios {', '.join(ratios)}.", param="aspect_ratio", code="invalid_value"
    )
