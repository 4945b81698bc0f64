"""The router: which supplier runs a canonical model for an organization, and supplier health.

A request names a canonical model (``veo-3.1``: route it) or a qualified one (``fal/veo-3.1``: pinned
to fal, never moved). The organization's :class:`Policy` orders the suppliers of the model; the
first *usable* one runs it. A supplier is usable when its provider is switched on, the model is not
retired there, the organization has a key that the provider has not refused (or the provider needs
none) and the supplier's circuit is not open.

Circuits are per supplier and key, kept in the cache so every process sees them: after
``ROUTER_CIRCUIT_FAILURES`` consecutive transient failures or timeouts the circuit opens for
``ROUTER_CIRCUIT_OPEN_SECONDS``; then one request is let through as a probe, and its success closes
the circuit (a failure opens it again).

The router only chooses. What happens when a submit fails (fall back or not) is the engine's rule
(:func:`certainly_not_created`), because only a submit that *certainly* created no job may move to
another supplier: anything else could bill twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apps.providers import catalog, registry
from apps.providers.base import ProviderError
from apps.providers.modelinfo import ModelInfo

ORDERS = {
    "catalog": "the catalog's order (the registry's supplier order)",
    "direct_first": "the model's maker first, then aggregators",
    "cheapest": "the lowest price for the request first",
    "explicit": "the suppliers in the order given, then the rest in catalog order",
}


@dataclass(frozen=True)
class Policy:
    """An organization's routing policy (stored as ``RoutingPolicy``; this is its plain form)."""

    order: str = "catalog"
    suppliers: tuple[str, ...] = ()  # for "explicit"
    per_model: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # canonical id -> suppliers
    resubmit_on_supplier_failure: bool = False
    substitutions: Mapping[str, str] = field(default_factory=dict)  # retired canonical id -> replacement


@dataclass(frozen=True)
class Candidate:
    model: ModelInfo
    reason: str = ""  # why it cannot run the request now; "" when it can
    key_id: str | None = None  # the public id of the key it would use

    @property
    def usable(self) -> bool:
        return not self.reason

    @property
    def supplier(self) -> str:
        return self.model.provider


@dataclass(frozen=True)
class Route:
    requested: str
    pinned: bool
    candidates: tuple[Candidate, ...]
    substituted_from: str = ""  # the retired model the organization's substitution rule replaced

    @property
    def chosen(self) -> Candidate | None:
        return next((c for c in self.candidates if c.usable), None)

    def after(self, supplier: str, tried: Iterable[str] = ()) -> Candidate | None:
        """The next usable candidate after ``supplier`` that was not tried yet (never when pinned)."""
        if self.pinned:
            return None
        skip = {supplier, *tried}
        names = [c.supplier for c in self.candidates]
        start = names.index(supplier) + 1 if supplier in names else 0
        return next((c for c in self.candidates[start:] if c.usable and c.supplier not in skip), None)

    def unavailable_message(self) -> str:
        reasons = "; ".join(f"{c.model.qualified_id}: {c.reason}" for c in self.candidates)
        return f"No supplier can run {self.requested!r} for this organization now ({reasons})."


class Unroutable(ValueError):
    """The model id names nothing, or a retired model without a substitution rule."""

    def __init__(self, message: str, *, replacement: str = "") -> None:
        super().__init__(message)
        self.replacement = replacement


def _order(models: list[ModelInfo], policy: Policy, cost_of: Callable[[ModelInfo], Decimal] | None) -> list:
    position = {slug: i for i, slug in enumerate(registry.PROVIDERS)}
    explicit = policy.per_model.get(models[0].id) if models else None
    order = "explicit" if explicit else policy.order
    explicit = tuple(explicit or policy.suppliers)
    if order == "direct_first":
        key = lambda m: (registry.get_provider_class(m.provider, allow_disabled=True).supplier_kind != "direct",)  # noqa: E731
    elif order == "cheapest":
        key = lambda m: ((cost_of(m) if cost_of else m.price_range()[0]),)  # noqa: E731
    elif order == "explicit":
        key = lambda m: (explicit.index(m.provider) if m.provider in explicit else len(explicit),)  # noqa: E731
    else:
        key = lambda m: ()  # noqa: E731
    return sorted(models, key=lambda m: (*key(m), position.get(m.provider, len(position))))


def route(
    *,
    model_id: str,
    policy: Policy,
    keys: Mapping[str, tuple[str, str]],
    today: date | None = None,
    cost_of: Callable[[ModelInfo], Decimal] | None = None,
    price: Callable[[ModelInfo], ModelInfo] | None = None,
) -> Route:
    """Order and check the suppliers of ``model_id``.

    ``keys`` maps a provider slug to ``(key public id, key status, key details)`` of the key the
    organization would use there. ``price`` gives a catalog entry at the price in effect now (the
    price history, :func:`apps.billing.prices.catalog_pricer`), so every candidate, its order and
    its labels carry the price that would be charged. ``cost_of`` prices a supplier for this request
    (the "cheapest" order).
    Raises :class:`Unroutable` for an unknown id and for a retired model with no substitution.
    """
    today = today or timezone.localdate()
    slug, bare = catalog.split_id(model_id)
    substituted_from = ""
    price = price or (lambda m: m)
    if slug is not None:
        models = [price(catalog.get_model(model_id))]  # UnknownModel propagates
    else:
        models = [price(m) for m in catalog.suppliers(bare, enabled_only=False)]
        if not models:
            raise catalog.UnknownModel(f"Unknown model {model_id!r}.")
    circuits = _circuit_states(models, keys)
    candidates = [_candidate(model, keys, today, circuits) for model in _order(models, policy, cost_of)]
    if all(c.reason.startswith("retired") for c in candidates):
        # retired everywhere this organization could run it: an explicit substitution rule, or a
        # clear refusal naming the replacement (never a silent substitution)
        replacement = policy.substitutions.get(bare) or next((m.replacement for m in models if m.replacement), "")
        if bare in policy.substitutions and slug is None:
            substituted_from, bare = bare, policy.substitutions[bare]
            models = [price(m) for m in catalog.suppliers(bare, enabled_only=False)]
            circuits = _circuit_states(models, keys)
            candidates = [_candidate(model, keys, today, circuits) for model in _order(models, policy, cost_of)]
        else:
            note = next((m.shutdown_note for m in models if m.shutdown_note), "")
            hint = f" Use {replacement!r} instead." if replacement else ""
            raise Unroutable(
                f"Model {model_id!r} was retired on {models[0].deprecated_on}.{hint} {note}".strip(),
                replacement=replacement,
            )
    return Route(
        requested=model_id, pinned=slug is not None, candidates=tuple(candidates), substituted_from=substituted_from
    )


def _circuit_states(models: Iterable[ModelInfo], keys: Mapping[str, tuple]) -> dict[str, str]:
    """The circuit state of every supplier of ``models`` and of the key the organization would use
    there, read from the cache in one round trip (``get_many``) instead of two per supplier."""
    names = set()
    for model in models:
        names.add(_circuit_key(model.provider, None))
        found = keys.get(model.provider)
        if found is not None:
            names.add(_circuit_key(model.provider, found[0]))
    found_data = cache.get_many(sorted(names))
    now = _clock()
    return {name: _state_of(found_data.get(name), now) for name in names}


def _candidate(model: ModelInfo, keys: Mapping[str, tuple], today: date, circuits: Mapping[str, str]) -> Candidate:
    cls = registry.get_provider_class(model.provider, allow_disabled=True)
    if not registry.is_enabled(model.provider):
        return Candidate(model, reason="switched off on this server")
    found = keys.get(model.provider)
    details = found[2] if found is not None and len(found) > 2 else {}
    if model.retired(today) and not cls.serves_retired_models(
        key_details=details, base_url=registry.base_url_for(model.provider)
    ):
        return Candidate(model, reason=f"retired on {model.deprecated_on}")
    key_id = None
    if cls.requires_key:
        if found is None:
            return Candidate(model, reason=f"no {cls.label} key in this organization")
        key_id, status = found[0], found[1]
        if not cls.offers(model, details):
            checked = details.get("models_checked_at", "")
            return Candidate(
                model,
                reason=f"no longer offered to this key by {cls.label}" + (f" (checked {checked})" if checked else ""),
                key_id=key_id,
            )
        if status == "invalid":
            return Candidate(model, reason=f"the {cls.label} key was refused by {cls.label}", key_id=key_id)
    if circuits.get(_circuit_key(model.provider, None)) == "open" or (
        key_id and circuits.get(_circuit_key(model.provider, key_id)) == "open"
    ):
        return Candidate(model, reason=f"{cls.label} is failing right now", key_id=key_id)
    return Candidate(model, key_id=key_id)


# --- when a failed submit may move to another supplier ------------------------------------------

# codes that say the supplier refused the request before creating anything, for reasons of its own
# (not of the request): the key, the account, the model's availability, capacity
_NOT_CREATED_CODES = {
    "invalid_api_key",
    "authentication_error",
    "permission_denied",
    "missing_credentials",
    "key_unreadable",
    "provider_disabled",
    "model_not_available",
    "model_not_open",
    "insufficient_quota",
    "rate_limited",
    "connection_refused",
    "circuit_open",
}


def certainly_not_created(exc: ProviderError) -> bool:
    """True when the failed submit certainly created no job at the supplier, so the request may go
    to the next one: a refused request (401/403, 429, 503 before acceptance), a connection that was
    never made, an invalid or missing key, a model not activated, a supplier switched off. Never
    for an uncertain submit (a timeout or a cut connection after sending), and never for a problem
    of the request itself (validation, content, moderation), which fails the generation."""
    if exc.uncertain:
        return False
    if exc.code in _NOT_CREATED_CODES:
        return True
    if exc.status_code in (401, 403, 429, 503):
        return exc.code not in ("invalid_request", "content_policy", "moderation_blocked")
    return False


def supplier_failed_for_its_own_reasons(error_code: str) -> bool:
    """A job the supplier accepted and then failed for an internal reason or capacity (the opt-in
    resubmit), as opposed to content or moderation."""
    return error_code in ("server_error", "internal_error", "capacity", "provider_error", "generation_failed")


# --- circuits ----------------------------------------------------------------------------------


def _circuit_key(supplier: str, key_id: str | None) -> str:
    return f"mr:circuit:{supplier}:{key_id or '-'}"


def circuit_state(supplier: str, key_id: str | None = None) -> str:
    """``closed``, ``open`` or ``half_open`` (open time over: the next request is a probe)."""
    return _state_of(cache.get(_circuit_key(supplier, key_id)), _clock())


def _state_of(data: dict | None, now: float) -> str:
    if not data or data.get("open_until") is None:
        return "closed"
    if now < data["open_until"]:
        return "open"
    return "half_open"


def circuit_allows(supplier: str, key_id: str | None = None) -> bool:
    """Whether a request may go to the supplier now: always when closed, never when open, and for
    exactly one caller (the probe) when half open."""
    state = circuit_state(supplier, key_id)
    if state == "closed":
        return True
    if state == "open":
        return False
    return cache.add(_circuit_key(supplier, key_id) + ":probe", 1, timeout=_open_seconds())


def circuit_record(supplier: str, key_id: str | None, *, ok: bool, supplier_wide: bool = True) -> str:
    """Record the outcome of a call to the supplier with one key; answers the key circuit's state.

    Every outcome counts for the key's circuit; a failure counts for the supplier's own circuit
    too when ``supplier_wide`` (5xx, timeouts, connection errors — not a key's own rate limit), and
    a success closes both."""
    if key_id and (ok or supplier_wide):
        _record(_circuit_key(supplier, None), ok=ok)
    return _record(_circuit_key(supplier, key_id), ok=ok)


def _record(name: str, *, ok: bool) -> str:
    if ok:
        if cache.get(name) is not None:
            cache.delete_many([name, name + ":probe"])
        return "closed"
    data = cache.get(name) or {"failures": 0, "open_until": None}
    data["failures"] = int(data.get("failures", 0)) + 1
    state = "closed"
    if data["failures"] >= int(getattr(settings, "ROUTER_CIRCUIT_FAILURES", 5)) or data.get("open_until"):
        data["open_until"] = _clock() + _open_seconds()
        cache.delete(name + ":probe")
        state = "open"
    cache.set(name, data, timeout=24 * 3600)
    return state


def _clock() -> float:
    """Unix seconds now (one place, so tests can move the clock)."""
    return time.time()


def _open_seconds() -> float:
    return float(getattr(settings, "ROUTER_CIRCUIT_OPEN_SECONDS", 60))


def circuits(suppliers: Iterable[str]) -> dict[str, str]:
    """The supplier-level circuit state (no particular key) of each supplier, for health pages."""
    return {slug: circuit_state(slug) for slug in suppliers}


__all__ = [
    "ORDERS",
    "Candidate",
    "Policy",
    "Route",
    "Unroutable",
    "certainly_not_created",
    "circuit_allows",
    "circuit_record",
    "circuit_state",
    "circuits",
    "route",
    "supplier_failed_for_its_own_reasons",
]
