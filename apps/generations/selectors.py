"""Reads for generations. Every function takes the organization (or a generation of it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from apps.accounts.models import Organization
from apps.api_keys import selectors as key_selectors
from apps.api_keys.models import KeyStatus
from apps.billing.prices import catalog_pricer
from apps.core.dates import start_of_day
from apps.core.downloads import Download
from apps.core.errors import NotFound
from apps.core.prepared import PreparedGet
from apps.core.scoping import scoped_organization_id
from apps.generations import routing
from apps.generations.models import (
    ACTIVE_STATES,
    NATIVE_STATUS,
    Batch,
    Generation,
    GenerationEvent,
    RoutingPolicy,
    State,
    reported_cost,
)
from apps.providers import catalog, registry

ZERO_USD = Decimal("0")


def generation_queryset(*, org: Organization) -> QuerySet[Generation]:
    return Generation.objects.filter(organization=org, deleted_at=None).select_related("user", "remix_of", "batch")


# compiled to SQL once per thread (apps.core.prepared): see generation_get
_generation_by_public_id = PreparedGet(
    lambda org_id, public_id: Generation.all_orgs.filter(
        organization_id=org_id, deleted_at=None, public_id=public_id
    ).select_related("user"),
    org_id=-7_000_000_000_000_001,
    public_id="prepared-placeholder:public_id",
)


def generation_get(*, org: Organization, public_id: str) -> Generation | None:
    """One generation by its public id, with its user (the API's hot path: a client polling its job).

    Inside this organization's scope (every API request, every task), a prepared query
    (:mod:`apps.core.prepared`): compiling the ORM query for a 50-column table with its user
    joined cost twice what running it does. Any other scope goes through ``Generation.objects``
    (ScopeError without one). ``remix_of`` and ``provider_key`` load lazily, for the few callers
    that need them (remixes, cancel, delete)."""
    if scoped_organization_id() == org.pk:
        return _generation_by_public_id(Generation.all_orgs.db, org_id=org.pk, public_id=public_id)
    return (
        Generation.objects.filter(organization=org, deleted_at=None, public_id=public_id)
        .select_related("user")
        .order_by()
        .first()
    )


@dataclass(frozen=True)
class GenerationFilters:
    """What a list is narrowed to (the Gallery's form, ``GET /v1/video/generations``). None: no
    filter. Each field has one entry in :data:`GENERATION_FILTERS`."""

    user_email: str | None = None
    provider: str | None = None
    model: str | None = None
    state: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    search: str | None = None
    tag: str | None = None  # normalized (services.normalize_tag)
    favourite: bool | None = None
    flagged: bool | None = None  # delivered other than asked (output_mismatch)
    batch: str | None = None  # a batch's public id


# field of GenerationFilters -> the condition it adds. Each one is a WHERE clause on the one list
# query, so a filter never adds a query to a page. A new filter is a field above and a line here.
GENERATION_FILTERS: dict[str, Callable[[Any], Q]] = {
    "user_email": lambda v: Q(user__email=v),
    "provider": lambda v: Q(provider=v),
    "model": lambda v: Q(model=v),
    "state": lambda v: Q(state=v),
    "created_from": lambda v: Q(created_at__gte=start_of_day(v)),
    "created_to": lambda v: Q(created_at__lt=start_of_day(v + timedelta(days=1))),
    "search": lambda v: Q(prompt__icontains=v),
    "tag": lambda v: Q(tag=v),
    "favourite": lambda v: Q(favourite=v),
    "flagged": lambda v: ~Q(output_mismatch=[]) if v else Q(output_mismatch=[]),
    "batch": lambda v: Q(batch__public_id=v),
}


def generation_list(*, org: Organization, filters: GenerationFilters | None = None) -> QuerySet[Generation]:
    qs = generation_queryset(org=org)
    f = filters or GenerationFilters()
    for name, condition in GENERATION_FILTERS.items():
        value = getattr(f, name)
        if value is not None and value != "":
            qs = qs.filter(condition(value))
    return qs.order_by("-created_at", "-id")


def generation_tags(*, org: Organization, limit: int = 50) -> list[str]:
    """The organization's tags in use, most used first (the Gallery's tag suggestions; one query)."""
    rows = (
        generation_queryset(org=org)
        .exclude(tag="")
        .order_by()
        .values("tag")
        .annotate(n=Count("id"))
        .order_by("-n", "tag")[:limit]
    )
    return [row["tag"] for row in rows]


def generation_page_after(
    *, org: Organization, after: str | None, limit: int, order: str = "desc"
) -> tuple[list[Generation], bool]:
    """Cursor pagination by public id (the OpenAI list shape): the page after ``after``."""
    qs = generation_queryset(org=org)
    ordering = ("-created_at", "-id") if order == "desc" else ("created_at", "id")
    qs = qs.order_by(*ordering)
    if after:
        anchor = Generation.objects.filter(organization=org, public_id=after).values("created_at", "id").first()
        if anchor is None:
            return [], False
        if order == "desc":
            qs = qs.filter(
                Q(created_at__lt=anchor["created_at"]) | Q(created_at=anchor["created_at"], id__lt=anchor["id"])
            )
        else:
            qs = qs.filter(
                Q(created_at__gt=anchor["created_at"]) | Q(created_at=anchor["created_at"], id__gt=anchor["id"])
            )
    rows = list(qs[: limit + 1])
    return rows[:limit], len(rows) > limit


def generation_events(*, generation: Generation) -> list[GenerationEvent]:
    return list(GenerationEvent.objects.filter(generation=generation))


IMAGE_CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def generation_file(*, generation: Generation, variant: str = "video") -> Download:
    """The stored video (or its thumbnail) to serve: its key, download name and type. NotFound
    until the video is completed and stored (the caller has checked the organization)."""
    key = generation.video_file if variant == "video" else generation.thumbnail_file
    if generation.state != State.COMPLETED or not key:
        what = "video" if variant == "video" else "thumbnail"
        raise NotFound(f"This generation has no stored {what} (status: {NATIVE_STATUS[generation.state]}).")
    extension = key.rsplit(".", 1)[-1]
    if variant == "video":
        content_type = generation.content_type or "video/mp4"
    else:
        content_type = IMAGE_CONTENT_TYPES.get(extension, "image/jpeg")
    return Download(key=key, filename=f"{generation.public_id}.{extension}", content_type=content_type)


# --- batches ------------------------------------------------------------------------------------


def batch_get(*, org: Organization, public_id: str) -> Batch | None:
    return Batch.objects.filter(organization=org, public_id=public_id).select_related("created_by").first()


def batch_list(*, org: Organization) -> QuerySet[Batch]:
    return Batch.objects.filter(organization=org).select_related("created_by").order_by("-created_at", "-id")


def _current(rows: list[Generation]) -> list[Generation]:
    """The latest attempt at each position of a batch (a retry supersedes the failed item)."""
    latest: dict[int, Generation] = {}
    for gen in sorted(rows, key=lambda g: (g.batch_index or 0, g.pk)):
        latest[gen.batch_index or 0] = gen
    return [latest[index] for index in sorted(latest)]


def batch_current_items(*, batch: Batch) -> list[Generation]:
    """The batch's items in order, each position's latest attempt, with its member (one query)."""
    rows = Generation.objects.filter(organization_id=batch.organization_id, batch=batch).select_related("user")
    return _current(list(rows))


@dataclass(frozen=True)
class BatchSummary:
    """A batch's items (the latest attempt at each position) and its totals, from the rows."""

    batch: Batch
    items: list[Generation]
    attempts: int  # generations made for the batch, retries included
    estimated: Decimal  # the current items' estimates
    held: Decimal  # still reserved: the estimates of the items not ended yet
    charged: Decimal  # the stored videos' charges (retried attempts included)
    counts: dict[str, int]  # native status -> items; "waiting": held, not yet sent

    @property
    def finished(self) -> bool:
        return all(g.is_terminal for g in self.items)

    @property
    def status(self) -> str:
        """``in_progress`` while any item runs; then ``completed`` (all stored), ``failed`` (none)
        or ``partial``."""
        if not self.finished:
            return "in_progress"
        done = self.counts.get("completed", 0)
        return "completed" if done == len(self.items) else ("failed" if done == 0 else "partial")

    @property
    def status_label(self) -> str:
        return {"in_progress": "In progress", "completed": "Done", "partial": "Done, some failed", "failed": "Failed"}[
            self.status
        ]

    @property
    def completed(self) -> list[Generation]:
        return [
            g
            for g in self.items
            if g.state == State.COMPLETED and g.video_file and g.bytes is not None and g.deleted_at is None
        ]

    @property
    def failed(self) -> int:
        return sum(1 for g in self.items if g.state in (State.FAILED, State.CANCELED))

    @property
    def percent(self) -> int:
        if not self.items:
            return 0
        return sum(100 if g.is_terminal else (g.progress or 0) for g in self.items) // len(self.items)


def _summary(batch: Batch, rows: list[Generation]) -> BatchSummary:
    items = _current(rows)
    counts: dict[str, int] = {}
    for gen in items:
        status = "waiting" if gen.batch_waiting and gen.state == State.CREATED else NATIVE_STATUS[gen.state]
        counts[status] = counts.get(status, 0) + 1
    return BatchSummary(
        batch=batch,
        items=items,
        attempts=len(rows),
        estimated=sum((g.estimated_cost for g in items), ZERO_USD),
        held=sum((g.estimated_cost for g in rows if g.state in ACTIVE_STATES), ZERO_USD),
        charged=sum((g.final_cost for g in rows if g.state == State.COMPLETED and g.final_cost), ZERO_USD),
        counts=counts,
    )


def batch_summary(*, batch: Batch) -> BatchSummary:
    """One batch with its items and totals (one query)."""
    rows = Generation.objects.filter(organization_id=batch.organization_id, batch=batch).select_related("user")
    return _summary(batch, list(rows))


def batch_summaries(*, org: Organization, batches: list[Batch]) -> list[BatchSummary]:
    """Several batches' totals in one query (the list)."""
    rows: dict[int, list[Generation]] = {b.pk: [] for b in batches}
    qs = Generation.objects.filter(organization=org, batch__in=batches).select_related("user")
    for gen in qs:
        rows[gen.batch_id].append(gen)
    return [_summary(b, rows[b.pk]) for b in batches]


# --- pages: the playground's model picker -------------------------------------------------


@dataclass(frozen=True)
class ModelOption:
    """One choice of the Playground's model picker: a canonical id (routed: ``model`` is where it
    runs now) or a ``supplier/model`` id (pinned)."""

    value: str
    label: str
    model: catalog.ModelInfo
    routed: bool = False


@dataclass(frozen=True)
class ModelGroup:
    """One model family the organization can generate with (for an ``<optgroup>``)."""

    label: str
    options: list[ModelOption]

    @property
    def models(self) -> list[catalog.ModelInfo]:
        return [o.model for o in self.options]


def supplier_keys(*, org: Organization, keys=None) -> dict[str, tuple[str, str, dict]]:
    """``{provider: (key public id, status, details)}`` of the key the organization would use with
    each provider (its default, else its oldest), for the router. One query (none when ``keys``
    given)."""
    if keys is None:
        keys = key_selectors.provider_key_list(org=org)
    chosen: dict[str, object] = {}
    for key in sorted(keys, key=lambda k: (not k.is_default, k.created_at)):
        chosen.setdefault(key.provider, key)
    return {slug: (key.public_id, key.status, dict(key.details or {})) for slug, key in chosen.items()}


def routing_policy(*, org: Organization) -> routing.Policy:
    """The organization's routing policy in plain form (the catalog's default when it set none)."""
    row = RoutingPolicy.objects.filter(organization=org).first()
    if row is None:
        return routing.Policy()
    return routing.Policy(
        order=row.order,
        suppliers=tuple(row.suppliers or ()),
        per_model={k: tuple(v) for k, v in (row.per_model or {}).items()},
        resubmit_on_supplier_failure=row.resubmit_on_supplier_failure,
        substitutions=dict(row.substitutions or {}),
    )


def route_for(*, org: Organization, model_id: str, cost_of=None, policy=None, keys=None, price=None) -> routing.Route:
    """The router's view of ``model_id`` for this organization now, at the prices in effect (three
    queries at most; pass ``policy``, ``keys`` and ``price`` (:func:`apps.billing.prices.catalog_pricer`)
    to route many models with none)."""
    return routing.route(
        model_id=model_id,
        policy=policy if policy is not None else routing_policy(org=org),
        keys=keys if keys is not None else supplier_keys(org=org),
        cost_of=cost_of,
        price=price if price is not None else catalog_pricer(),
    )


def usable_providers(*, keys) -> set[str]:
    """The enabled providers an organization can generate with, given its provider keys: those
    that need no key (the sandbox), and those with a valid or not yet verified key."""
    keyed = {k.provider for k in keys if k.status != KeyStatus.INVALID}
    return {
        slug for slug in registry.enabled_slugs() if slug in keyed or not registry.get_provider_class(slug).requires_key
    }


def _per_second(model: catalog.ModelInfo) -> str:
    low, high = model.price_range()
    if high == 0:
        return "free"
    return f"${low:.2f}/s" if low == high else f"${low:.2f} to {high:.2f}/s"


def playground_models(*, org: Organization) -> list[ModelGroup]:
    """The models the organization can run now, grouped by family, in catalog order, at the prices
    in effect (three queries).

    A model one supplier serves is one option (its canonical id). A model several usable suppliers
    serve gets a routed option (the canonical id, labelled with where it runs now), then one pinned
    option per supplier (``supplier/model``), each with its price."""
    keys = key_selectors.provider_key_list(org=org)
    policy = routing_policy(org=org)
    supplier = supplier_keys(org=org, keys=keys)
    price = catalog_pricer()
    families: dict[str, list[ModelOption]] = {}
    for canonical in catalog.canonical_ids():
        try:
            route = route_for(org=org, model_id=canonical, policy=policy, keys=supplier, price=price)
        except routing.Unroutable:
            continue
        usable = [c.model for c in route.candidates if c.usable]
        if not usable:
            continue
        chosen = usable[0]
        options = families.setdefault(chosen.family, [])
        if len(usable) == 1:
            label = f"{chosen.label} · {registry.PROVIDERS[chosen.provider][0]} · {_per_second(chosen)}"
            if chosen.deprecated:
                label += f" — deprecated {chosen.deprecated_on:%Y-%m-%d}"
            options.append(ModelOption(value=canonical, label=label, model=chosen))
            continue
        where = registry.PROVIDERS[chosen.provider][0]
        options.append(
            ModelOption(
                value=canonical, label=f"{chosen.label} · best available (now {where})", model=chosen, routed=True
            )
        )
        for model in usable:
            label = f"{model.label} on {registry.PROVIDERS[model.provider][0]} · {_per_second(model)}"
            options.append(ModelOption(value=model.qualified_id, label=label, model=model))
    return [ModelGroup(label=family, options=options) for family, options in families.items()]


def organization_storage_bytes(*, org: Organization) -> int:
    """Bytes of the organization's stored videos (for operators: reads across the scope)."""
    return (
        Generation.all_orgs.filter(organization=org, deleted_at=None)
        .exclude(video_file="")
        .aggregate(t=Sum("bytes"))["t"]
        or 0
    )


# --- cost reconciliation ------------------------------------------------------------------------


@dataclass(frozen=True)
class CostDrift:
    """Our charges against what one supplier reports it billed, for one model."""

    provider: str
    model: str
    jobs: int  # completed and charged
    reported_jobs: int  # of those, with a provider-reported cost
    charged: Decimal  # our charges on the reported jobs
    reported: Decimal  # what the supplier reports for them
    price_versions: tuple[str, ...]

    @property
    def drift(self) -> Decimal:
        return self.reported - self.charged

    @property
    def ratio(self) -> Decimal | None:
        return (self.reported / self.charged).quantize(Decimal("0.001")) if self.charged else None

    def describe(self) -> str:
        head = f"{self.provider}/{self.model}: charged ${self.charged:.2f}, provider reports ${self.reported:.2f}"
        head += f" on {self.reported_jobs} of {self.jobs} jobs"
        if self.drift > 0:
            return head + " — the catalog price is out of date (we charge less than we pay)"
        if self.drift < 0:
            return head + " — we charge more than the supplier bills"
        return head + " — in line"


def cost_drift(*, since: date | None = None, provider: str | None = None) -> list[CostDrift]:
    """Completed jobs' charges next to the supplier-reported cost (``provider_usage['cost_usd']``),
    by supplier and model, across organizations (operators only: the admin and a command).
    Streams the rows; one query."""
    from collections import defaultdict

    qs = Generation.all_orgs.filter(state=State.COMPLETED, final_cost__isnull=False)
    if since is not None:
        qs = qs.filter(completed_at__date__gte=since)
    if provider:
        qs = qs.filter(provider=provider)
    acc: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"jobs": 0, "reported_jobs": 0, "charged": ZERO_USD, "reported": ZERO_USD, "versions": set()}
    )
    rows = qs.order_by().values_list("provider", "model", "final_cost", "provider_usage", "price_version")
    for slug, model, charged, usage, version in rows.iterator(chunk_size=2000):
        entry = acc[(slug, model)]
        entry["jobs"] += 1
        entry["versions"].add(version)
        reported = reported_cost(usage)
        if reported is None:
            continue
        entry["reported_jobs"] += 1
        entry["charged"] += charged
        entry["reported"] += reported
    return sorted(
        (
            CostDrift(
                provider=slug,
                model=model,
                jobs=e["jobs"],
                reported_jobs=e["reported_jobs"],
                charged=e["charged"],
                reported=e["reported"],
                price_versions=tuple(sorted(v for v in e["versions"] if v)),
            )
            for (slug, model), e in acc.items()
        ),
        key=lambda d: (-abs(d.drift), d.provider, d.model),
    )
