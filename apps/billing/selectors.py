"""Reads of money: the usage report, its CSV rows, budget use, and the operators' monthly totals.

Every function for members takes the organization; the operators' functions (``ledger_*``,
``organization_usage``) read across organizations through ``all_orgs``, for the admin only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from apps.accounts.models import Membership, Organization
from apps.billing import ledger
from apps.billing.models import RESERVED_KINDS, SPENT_KINDS, EntryKind, UsageEntry
from apps.core.dates import start_of_day
from apps.generations.models import ACTIVE_STATES, Generation, State

User = get_user_model()
ZERO = Decimal("0")
SPENT = SPENT_KINDS
RESERVED = RESERVED_KINDS  # a hold moves with its adjustments


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
    # completed videos per supplier and model, and how many of them were not as asked
    verified: list[dict] = field(default_factory=list)

    @property
    def success_rate(self) -> float | None:
        finished = self.completed + self.failed
        return self.completed / finished if finished else None


def _emails(user_ids) -> dict[int, str]:
    """The members' emails by user id, in one query (none for no ids)."""
    if not user_ids:
        return {}
    return dict(User.objects.filter(pk__in=user_ids).values_list("pk", "email"))


def _ledger_figures(report: UsageReport, entries, gens) -> None:
    """The report's money from the range's ledger entries. What was spent: one grouped query by
    supplier, model, member and the video's day (``UsageEntry.video_day``), an index-only scan of
    charges and refunds (``usage_org_day_spent``) with no join, added up here into the four
    breakdowns, then one read of the members' emails. What running jobs reserve: the holds (and
    their adjustments) of the range's videos still running, found through the state index, a
    handful of rows; a settled video's hold and release cancel out, so summing all of them (65,000
    entries for 30 days of a 100,000-video organization) gave the same figure 20 ms later. A hold
    left behind by a finished job is the operators' alarm (``mediarouter_ledger_holds_outstanding``),
    not a member's reserve. One grouped query over every kind, or joining the entries to their
    videos and members, was slower still (604 ms; bench/RESULTS.md)."""
    rows = list(
        entries.filter(kind__in=SPENT)
        .values("kind", "provider", "model", "user_id", day=F("video_day"))
        .annotate(cost=Sum("amount"), entries=Count("*"))
        .order_by()
    )
    running = gens.filter(state__in=ACTIVE_STATES).values("pk")
    reserved = entries.filter(kind__in=RESERVED, generation__in=running).aggregate(t=Sum("amount"))["t"]
    report.reserved = reserved or ZERO
    emails = _emails({row["user_id"] for row in rows})
    by_provider: dict[str, dict] = {}
    by_model: dict[tuple[str, str], dict] = {}
    by_member: dict[str, dict] = {}
    by_day: dict[date, Decimal] = {}
    for row in rows:
        cost = row["cost"] or ZERO
        report.total_cost += cost
        videos = row["entries"] if row["kind"] == EntryKind.CHARGE else 0
        for groups, key, fields in (
            (by_provider, row["provider"], {"provider": row["provider"]}),
            (by_model, (row["provider"], row["model"]), {"provider": row["provider"], "model": row["model"]}),
            (by_member, row["user_id"], {"user__email": emails.get(row["user_id"], "")}),
        ):
            group = groups.setdefault(key, {**fields, "cost": ZERO, "videos": 0})
            group["cost"] += cost
            group["videos"] += videos
        by_day[row["day"]] = by_day.get(row["day"], ZERO) + cost
    report.by_provider = sorted(by_provider.values(), key=lambda r: -r["cost"])
    report.by_model = sorted(by_model.values(), key=lambda r: -r["cost"])
    report.by_member = sorted(by_member.values(), key=lambda r: -r["cost"])
    report.by_day = [{"day": day, "cost": cost} for day, cost in sorted(by_day.items())]


def _video_figures(report: UsageReport, gens) -> None:
    """The report's counts from the range's videos, in one grouped query (by supplier, model and
    state) that the covering index ``gen_org_usage_cover`` answers without reading the table: how
    many were made, finished, failed and for how many seconds; what the suppliers say they billed
    (``provider_cost``, beside our cost per model); and how many completed videos were probed and
    found not as asked (``output_probed``, ``output_flagged``). It replaced three scans of the
    table, two of them reading its JSON columns."""
    # counted over a column of the index (never null), not the id, which is not in it
    rows = gens.values("provider", "model", "state").annotate(
        videos=Count("*"),
        seconds=Sum("seconds"),
        reported=Sum("provider_cost"),
        probed=Count("state", filter=Q(output_probed=True)),
        flagged=Count("state", filter=Q(output_probed=True, output_flagged=True)),
    )
    reported: dict[tuple[str, str], Decimal] = {}
    verified: list[dict] = []
    for row in rows.order_by():
        report.count += row["videos"]
        if row["state"] in (State.FAILED, State.CANCELED):
            report.failed += row["videos"]
        if row["state"] != State.COMPLETED:
            continue
        key = (row["provider"], row["model"])
        report.completed += row["videos"]
        report.seconds += row["seconds"] or 0
        if row["reported"] is not None:
            reported[key] = row["reported"]
        if row["probed"]:
            verified.append(
                {"provider": key[0], "model": key[1], "videos": row["probed"], "mismatched": row["flagged"]}
            )
    for row in report.by_model:
        row["provider_reported"] = reported.get((row["provider"], row["model"]))
    report.verified = sorted(verified, key=lambda r: (-r["mismatched"], r["provider"], r["model"]))


def usage_report(*, org: Organization, start: date, end: date, user=None) -> UsageReport:
    """Costs from the ledger (charges and refunds), counts from generations, for [start, end].

    An entry counts on the day its generation was created (``UsageEntry.video_day``), as budgets
    count it in that month (``UsageEntry.period``): a video created on the 31st and charged on the
    1st is the 31st's."""
    since, until = start_of_day(start), start_of_day(end + timedelta(days=1))
    entries = UsageEntry.objects.filter(organization=org, video_day__gte=start, video_day__lte=end)
    gens = Generation.objects.filter(organization=org, created_at__gte=since, created_at__lt=until)
    if user is not None:
        entries, gens = entries.filter(user=user), gens.filter(user=user)
    report = UsageReport(start=start, end=end)
    _ledger_figures(report, entries, gens)
    _video_figures(report, gens)
    return report


def usage_rows(*, org: Organization, start: date, end: date) -> list[dict]:
    """Spending (charges and refunds) for [start, end] by day, provider, model and member: the CSV."""
    rows = list(
        UsageEntry.objects.filter(
            organization=org,
            video_day__gte=start,  # the day of the video, as in usage_report
            video_day__lte=end,
            kind__in=SPENT,
        )
        .values("provider", "model", "user_id", day=F("video_day"))
        .annotate(
            cost=Sum("amount"),
            videos=Count("id", filter=Q(kind=EntryKind.CHARGE)),
            seconds=Sum("seconds", filter=Q(kind=EntryKind.CHARGE)),
        )
        .order_by()
    )
    emails = _emails({row["user_id"] for row in rows})
    for row in rows:
        row["user__email"] = emails.get(row.pop("user_id"), "")
    return sorted(rows, key=lambda r: (r["day"], r["provider"], r["model"], r["user__email"]))


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


# --- operators (the admin): across organizations ---------------------------------------------


@dataclass(frozen=True)
class LedgerTotals:
    by_org: list[dict]
    by_member: list[dict]


def ledger_monthly_totals(*, org_limit: int = 500, member_limit: int = 2000) -> LedgerTotals:
    """Monthly totals per organization and per member: spent (charges less refunds), still
    reserved (open holds) and videos charged, newest month first."""
    months = UsageEntry.all_orgs.annotate(month=TruncMonth("period"))
    totals = {
        "spent": Sum("amount", filter=Q(kind__in=SPENT)),
        "reserved": Sum("amount", filter=Q(kind__in=RESERVED)),
        "videos": Count("id", filter=Q(kind=EntryKind.CHARGE)),
    }
    by_org = (
        months.values("month", "organization__slug", "organization__name")
        .annotate(**totals)
        .order_by("-month", "organization__slug")[:org_limit]
    )
    by_member = (
        months.values("month", "organization__slug", "user__email")
        .annotate(**totals)
        .order_by("-month", "organization__slug", "user__email")[:member_limit]
    )
    return LedgerTotals(by_org=list(by_org), by_member=list(by_member))


def organization_usage(*, org: Organization, day=None) -> tuple[Decimal, Decimal]:
    """(spent, reserved) of one organization in the month of ``day`` (now by default)."""
    qs = UsageEntry.all_orgs.filter(organization=org, period=ledger.period_of(day or timezone.now()))
    spent = qs.filter(kind__in=SPENT).aggregate(t=Sum("amount"))["t"] or ZERO
    held = qs.filter(kind__in=RESERVED).aggregate(t=Sum("amount"))["t"] or ZERO
    return spent, held
