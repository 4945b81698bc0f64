"""Reads for generations and usage. Every function takes the organization."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.accounts.models import Membership, Organization
from apps.api_keys import selectors as key_selectors
from apps.api_keys.models import KeyStatus
from apps.core.prepared import PreparedGet
from apps.core.scoping import scoped_organization_id
from apps.generations import ledger
from apps.generations.models import EntryKind, Generation, GenerationEvent, State, UsageEntry
from apps.providers import catalog, registry

ZERO = Decimal("0")


def generation_queryset(*, org: Organization) -> QuerySet[Generation]:
    return Generation.objects.filter(organization=org, deleted_at=None).select_related("user", "remix_of")


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
    user_email: str | None = None
    provider: str | None = None
    model: str | None = None
    state: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    search: str | None = None


def generation_list(*, org: Organization, filters: GenerationFilters | None = None) -> QuerySet[Generation]:
    qs = generation_queryset(org=org)
    f = filters or GenerationFilters()
    if f.user_email:
        qs = qs.filter(user__email=f.user_email)
    if f.provider:
        qs = qs.filter(provider=f.provider)
    if f.model:
        qs = qs.filter(model=f.model)
    if f.state:
        qs = qs.filter(state=f.state)
    if f.created_from:
        qs = qs.filter(created_at__gte=_start_of(f.created_from))
    if f.created_to:
        qs = qs.filter(created_at__lt=_start_of(f.created_to + timedelta(days=1)))
    if f.search:
        qs = qs.filter(prompt__icontains=f.search)
    return qs.order_by("-created_at", "-id")


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


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


@dataclass
class UsageReport:
    start: date
    end: date
    total_cost: Decimal = ZERO
    reserved: Decimal = ZERO
    count: int = 0
    completed: int = 0
    failed: int = 0
    seconds: int = 0
    by_provider: list[dict] = field(default_factory=list)
    by_model: list[dict] = field(default_factory=list)
    by_member: list[dict] = field(default_factory=list)
    by_day: list[dict] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        finished = self.completed + self.failed
        return self.completed / finished if finished else None


def usage_report(*, org: Organization, start: date, end: date, user=None) -> UsageReport:
    """Costs from the ledger (charges and refunds), counts from generations, for [start, end]."""
    since, until = _start_of(start), _start_of(end + timedelta(days=1))
    entries = UsageEntry.objects.filter(organization=org, created_at__gte=since, created_at__lt=until)
    gens = Generation.objects.filter(organization=org, created_at__gte=since, created_at__lt=until)
    if user is not None:
        entries, gens = entries.filter(user=user), gens.filter(user=user)
    spent = entries.filter(kind__in=[EntryKind.CHARGE, EntryKind.REFUND])
    report = UsageReport(start=start, end=end)
    report.total_cost = spent.aggregate(t=Sum("amount"))["t"] or ZERO
    report.reserved = (
        entries.filter(kind__in=[EntryKind.HOLD, EntryKind.RELEASE]).aggregate(t=Sum("amount"))["t"] or ZERO
    )
    counts = gens.aggregate(
        count=Count("id"),
        completed=Count("id", filter=Q(state=State.COMPLETED)),
        failed=Count("id", filter=Q(state__in=[State.FAILED, State.CANCELED])),
        seconds=Sum("seconds", filter=Q(state=State.COMPLETED)),
    )
    report.count, report.completed, report.failed = counts["count"], counts["completed"], counts["failed"]
    report.seconds = counts["seconds"] or 0
    report.by_provider = list(
        spent.values("provider")
        .annotate(cost=Sum("amount"), videos=Count("id", filter=Q(kind=EntryKind.CHARGE)))
        .order_by("-cost")
    )
    report.by_model = list(
        spent.values("provider", "model")
        .annotate(cost=Sum("amount"), videos=Count("id", filter=Q(kind=EntryKind.CHARGE)))
        .order_by("-cost")
    )
    report.by_member = list(
        spent.values("user__email")
        .annotate(cost=Sum("amount"), videos=Count("id", filter=Q(kind=EntryKind.CHARGE)))
        .order_by("-cost")
    )
    report.by_day = list(
        spent.annotate(day=TruncDate("created_at")).values("day").annotate(cost=Sum("amount")).order_by("day")
    )
    return report


# --- pages: the playground's model picker, budgets, the usage export ------------------------


@dataclass(frozen=True)
class ModelGroup:
    """The models of one provider the organization can generate with (for an ``<optgroup>``)."""

    provider: str
    label: str
    models: list[catalog.ModelInfo]


def playground_models(*, org: Organization) -> list[ModelGroup]:
    """Models the organization can use, grouped by provider in registry order: providers with a
    valid or not yet verified key, and providers that need no key (the sandbox). One query."""
    usable = {k.provider for k in key_selectors.provider_key_list(org=org) if k.status != KeyStatus.INVALID}
    groups = []
    for slug in registry.enabled_slugs():
        cls = registry.get_provider_class(slug)
        if cls.requires_key and slug not in usable:
            continue
        models = catalog.list_models(providers=[slug])
        if models:
            groups.append(ModelGroup(provider=slug, label=cls.label, models=models))
    return groups


@dataclass(frozen=True)
class BudgetUse:
    """Spent plus reserved this month against a monthly budget (None: no limit)."""

    used: Decimal
    limit: Decimal | None

    @property
    def remaining(self) -> Decimal | None:
        return None if self.limit is None else max(self.limit - self.used, ZERO)

    @property
    def percent(self) -> int:
        if not self.limit:
            return 100 if self.limit is not None and self.used > 0 else 0
        return max(0, min(100, round(self.used / self.limit * 100)))


def budget_status(*, org: Organization, membership: Membership, day: date | None = None) -> tuple[BudgetUse, BudgetUse]:
    """(organization, member) budget use for the month of ``day`` (today by default)."""
    period = ledger.period_of(day or timezone.localdate())
    org_use = BudgetUse(used=ledger.committed(org=org, period=period), limit=org.monthly_budget)
    member_use = BudgetUse(
        used=ledger.committed(org=org, period=period, user=membership.user), limit=membership.effective_monthly_limit()
    )
    return org_use, member_use


def usage_rows(*, org: Organization, start: date, end: date) -> list[dict]:
    """Spending (charges and refunds) for [start, end] by day, provider, model and member: the CSV."""
    since, until = _start_of(start), _start_of(end + timedelta(days=1))
    return list(
        UsageEntry.objects.filter(
            organization=org,
            created_at__gte=since,
            created_at__lt=until,
            kind__in=[EntryKind.CHARGE, EntryKind.REFUND],
        )
        .annotate(day=TruncDate("created_at"))
        .values("day", "provider", "model", "user__email")
        .annotate(
            cost=Sum("amount"),
            videos=Count("id", filter=Q(kind=EntryKind.CHARGE)),
            seconds=Sum("seconds", filter=Q(kind=EntryKind.CHARGE)),
        )
        .order_by("day", "provider", "model", "user__email")
    )
