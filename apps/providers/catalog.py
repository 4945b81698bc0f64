"""The model catalog: every model MediaRouter can route to, at every supplier, as data.

Each provider keeps its own entries in ``apps/providers/<slug>/catalog.py``; this module joins them
in registry order and answers the questions the rest of MediaRouter asks: which model an id means,
which suppliers serve a canonical model, whether a request fits a model, and what it costs.

Ids: a *canonical* id (``veo-3.1``) names a model whichever supplier runs it; a *qualified* id
(``fal/veo-3.1``) pins one supplier. Sizes are ``WxH`` for every provider; adapters map them to the
provider's own ratio/aspect ratio/resolution. Prices: see :mod:`apps.providers.modelinfo`; the
date of the source is ``price_source_date`` and ``price_version`` is recorded on every ledger entry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal

from . import registry
from .modelinfo import AUDIO, CAPABILITIES, COST_QUANTUM, IMAGE_TO_VIDEO, REMIX, TEXT_TO_VIDEO, ModelInfo

SEED_MAX = 2**32 - 1
NEGATIVE_PROMPT_MAX = 2500

_lock = threading.Lock()
_models: tuple[ModelInfo, ...] | None = None
_by_qualified: dict[str, ModelInfo] = {}
_by_canonical: dict[str, tuple[ModelInfo, ...]] = {}


class UnknownModel(ValueError):
    """No such model in the catalog (or its provider is disabled)."""


def all_models() -> tuple[ModelInfo, ...]:
    """Every supplier's entries, enabled or not, in registry order (loaded once, on first use)."""
    global _models
    if _models is None:
        with _lock:
            if _models is None:
                models: list[ModelInfo] = []
                for slug in registry.PROVIDERS:
                    entries = registry.catalog_module(slug).MODELS
                    assert all(m.provider == slug for m in entries), f"{slug}/catalog.py lists another provider"
                    models.extend(entries)
                by_qualified = {m.qualified_id: m for m in models}
                assert len(by_qualified) == len(models), "a model id appears twice at one supplier"
                by_canonical: dict[str, list[ModelInfo]] = {}
                for m in models:
                    by_canonical.setdefault(m.id, []).append(m)
                _by_qualified.update(by_qualified)
                _by_canonical.update({k: tuple(v) for k, v in by_canonical.items()})
                _models = tuple(models)
    return _models


def __getattr__(name: str):  # ``catalog.MODELS`` stays available, loaded lazily
    if name == "MODELS":
        return all_models()
    raise AttributeError(name)


def suppliers(canonical_id: str, *, enabled_only: bool = True) -> tuple[ModelInfo, ...]:
    """The entries of every supplier of a canonical model, in registry order."""
    all_models()
    entries = _by_canonical.get(canonical_id.strip(), ())
    if enabled_only:
        entries = tuple(m for m in entries if registry.is_enabled(m.provider))
    return entries


def supplier_model(slug: str, model_id: str) -> ModelInfo | None:
    """The entry of ``model_id`` (canonical id or upstream id) at supplier ``slug``, or None."""
    all_models()
    found = _by_qualified.get(f"{slug}/{model_id}")
    if found is None:
        found = next((m for m in all_models() if m.provider == slug and m.provider_model == model_id), None)
    return found


def split_id(model_id: str) -> tuple[str | None, str]:
    """``("fal", "veo-3.1")`` for a qualified id, ``(None, "veo-3.1")`` for a bare one.

    Raises :class:`UnknownModel` for a prefix that names no provider."""
    prefix, _, bare = model_id.strip().rpartition("/")
    if not prefix:
        return None, bare
    try:
        return registry.canonical_slug(prefix), bare
    except registry.UnknownProvider:
        raise UnknownModel(f"Unknown model {model_id!r}: no provider {prefix!r}.") from None


def get_model(model_id: str, *, prefer: Callable[[ModelInfo], bool] | None = None) -> ModelInfo:
    """Look a model up by qualified id (``fal/veo-3.1``, ``openai/sora-2``) or canonical id.

    A canonical id with several suppliers answers the first enabled supplier for which ``prefer``
    holds (for example "this organization has a key for it"), else the first enabled one, else the
    first. The router (``apps.generations.routing``) makes the organization's real choice; this is
    the catalog's default order. Raises :class:`UnknownModel` for unknown ids and for a prefix
    naming another provider. Does not check whether the provider is enabled (see
    :func:`validate_request`).
    """
    slug, bare = split_id(model_id)
    all_models()
    if slug is not None:
        model = _by_qualified.get(f"{slug}/{bare}")
        if model is None:
            others = _by_canonical.get(bare)
            if others:
                where = ", ".join(m.qualified_id for m in others)
                raise UnknownModel(f"Unknown model {model_id!r}: {bare!r} is offered as {where}.")
            raise UnknownModel(f"Unknown model {model_id!r}.")
        return model
    entries = _by_canonical.get(bare)
    if not entries:
        raise UnknownModel(f"Unknown model {model_id!r}.")
    enabled = [m for m in entries if registry.is_enabled(m.provider)] or list(entries)
    if prefer is not None:
        preferred = [m for m in enabled if prefer(m)]
        if preferred:
            return preferred[0]
    return enabled[0]


def list_models(*, providers: list[str] | tuple[str, ...] | None = None) -> list[ModelInfo]:
    """Entries of enabled providers, in catalog order, optionally only the given provider slugs."""
    enabled = set(registry.enabled_slugs())
    wanted = {registry.canonical_slug(p) for p in providers} if providers is not None else enabled
    return [m for m in all_models() if m.provider in enabled and m.provider in wanted]


def canonical_ids() -> list[str]:
    """Canonical ids of enabled models, in catalog order, each once."""
    seen: dict[str, None] = {}
    for m in list_models():
        seen.setdefault(m.id, None)
    return list(seen)


def _choices(values: tuple[object, ...]) -> str:
    return ", ".join(str(v) for v in values)


def validate_request(
    *,
    model_id: str | None = None,
    model: ModelInfo | None = None,
    seconds: int | None,
    size: str | None,
    has_image: bool,
    is_remix: bool = False,
    seed: int | None = None,
    negative_prompt: str | None = None,
) -> dict[str, str]:
    """Field-level errors for a generation request, keyed by request field; ``{}`` when valid.

    Pass the resolved ``model`` (or a ``model_id`` to look up). ``seconds``/``size`` of None mean
    "not given" (the model's default applies).
    """
    if model is None:
        try:
            model = get_model(model_id or "")
        except UnknownModel as exc:
            return {"model": str(exc)}
    if not registry.is_enabled(model.provider):
        return {"model": f"Model {model.qualified_id!r} is not available: its provider is disabled."}

    errors: dict[str, str] = {}
    if is_remix:
        if REMIX not in model.capabilities:
            errors["model"] = f"{model.label} cannot remix videos."
    elif has_image and IMAGE_TO_VIDEO not in model.capabilities:
        errors["input_reference"] = f"{model.label} does not accept an input image (text to video only)."
    elif not has_image and TEXT_TO_VIDEO not in model.capabilities:
        errors["input_reference"] = f"{model.label} needs an input image (image to video only)."

    if seconds is not None and seconds not in model.seconds:
        errors["seconds"] = f"{model.label} supports durations of {_choices(model.seconds)} seconds."
    if size is not None:
        allowed = model.allowed_sizes(has_image=has_image or is_remix)
        if size not in allowed:
            what = "without an input image " if allowed != model.sizes else ""
            errors["size"] = f"{model.label} supports sizes {what}{_choices(allowed)}."
    if seed is not None:
        if not model.supports_seed:
            errors["seed"] = f"{model.label} does not take a seed."
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
            errors["seed"] = f"The seed must be an integer from 0 to {SEED_MAX}."
    if negative_prompt:
        if not model.supports_negative_prompt:
            errors["negative_prompt"] = f"{model.label} does not take a negative prompt."
        elif len(negative_prompt) > NEGATIVE_PROMPT_MAX:
            errors["negative_prompt"] = f"The negative prompt is limited to {NEGATIVE_PROMPT_MAX} characters."
    return errors


def estimate_cost(model: ModelInfo, *, seconds: int, size: str, audio: bool | None = None) -> Decimal:
    """USD for ``seconds`` of ``size`` output: exact, quantized to 0.0001 (half-up)."""
    return model.cost(seconds=seconds, size=size, audio=audio)


__all__ = [
    "AUDIO",
    "CAPABILITIES",
    "COST_QUANTUM",
    "IMAGE_TO_VIDEO",
    "REMIX",
    "TEXT_TO_VIDEO",
    "ModelInfo",
    "UnknownModel",
    "all_models",
    "canonical_ids",
    "estimate_cost",
    "get_model",
    "list_models",
    "split_id",
    "supplier_model",
    "suppliers",
    "validate_request",
]
