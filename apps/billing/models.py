"""The cost ledger's one table. It was created by ``apps.generations`` and keeps its table name
(``generations_usageentry``): moving the model here changed Django's state only, no data moved."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.scoping import TenantScopedModel


class EntryKind(models.TextChoices):
    HOLD = "hold", "Hold"
    RELEASE = "release", "Release"
    CHARGE = "charge", "Charge"
    REFUND = "refund", "Refund"
    # a hold re-priced when the job moved to another supplier (new price - old price)
    ADJUST = "adjust", "Hold adjustment"


# what is spent (charges less refunds) and what is reserved (a hold moves with its adjustments and
# is undone by its release): the usage report's and the budgets' two sums
SPENT_KINDS = (EntryKind.CHARGE, EntryKind.REFUND)
RESERVED_KINDS = (EntryKind.HOLD, EntryKind.ADJUST, EntryKind.RELEASE)


class UsageEntry(TenantScopedModel):
    """The append-only cost ledger. Amounts are signed USD: a hold reserves (+), its release
    returns it (-), a charge spends (+), a refund gives back (-). ``SUM(amount)`` over a period is
    what is spent or reserved, which is what budgets are checked against; every hold is matched by
    exactly one release. ``period`` is the month of the generation, so a job spanning midnight at
    the end of a month stays in one month; ``video_day`` is the day the generation was created (in
    ``TIME_ZONE``), copied here so the usage report reads a date range of entries without joining
    them to their videos (``ledger.video_day``)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="usage_entries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="usage_entries")
    generation = models.ForeignKey("generations.Generation", on_delete=models.PROTECT, related_name="usage_entries")
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=4)
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=60)
    seconds = models.PositiveIntegerField()
    price_version = models.CharField(max_length=60, blank=True)
    period = models.DateField(help_text="First day of the month this entry counts in")
    video_day = models.DateField(help_text="The day (TIME_ZONE) its video was created: the usage report's day")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "generations_usageentry"
        ordering = ["created_at", "id"]
        indexes = [
            # budgets: the month's sum for the organization and for one member (ledger.committed),
            # with the amount in the index, so that the sum is an index-only scan: at the end of a
            # month of a 100,000-video organization it summed ~90,000 entries from the table
            models.Index(fields=["organization", "period", "amount"], name="usage_org_period_cover"),
            models.Index(fields=["organization", "user", "period", "amount"], name="usage_org_user_period_cover"),
            # The usage report reads what was spent in a range of days of one organization, grouped
            # by supplier, model, member and day, with no join to the videos: this partial index
            # holds exactly what it reads (key columns: SQLite has no INCLUDE), so that is an
            # index-only range scan over charges and refunds. One index over every kind was passed
            # over for a sequential scan and a grouping of three times the rows, holds and
            # releases included (30 days of a 100,000-video organization: bench/RESULTS.md).
            models.Index(
                fields=["organization", "video_day", "provider", "model", "user", "kind", "amount"],
                name="usage_org_day_spent",
                condition=models.Q(kind__in=SPENT_KINDS),
            ),
        ]
        constraints = [
            # a generation has at most one hold, one release and one charge (refunds may repeat)
            models.UniqueConstraint(
                fields=["generation", "kind"],
                condition=models.Q(kind__in=["hold", "release", "charge"]),
                name="one_ledger_entry_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} for {self.generation_id}"


class CatalogPrice(models.Model):
    """One version of a supplier's price for one catalog model: the price history.

    The catalog in code (``apps/providers/<slug>/catalog.py``) is the default; a row here overrides
    its price tables from ``valid_from`` on, until a newer row. Rows are only inserted (a refresh
    that finds the same prices writes none), so a generation keeps the ``price_version`` it was
    priced at and the history says which price applied when. Not tenant data: one price list for
    every organization, written by ``manage.py refresh_prices`` and read by the estimate."""

    supplier = models.CharField(max_length=20)
    model = models.CharField(max_length=60, help_text="Canonical model id at this supplier")
    unit = models.CharField(max_length=40, help_text="The supplier's billing unit, as it names it")
    unit_price = models.DecimalField(max_digits=16, decimal_places=8, help_text="USD per unit, as listed")
    prices = models.JSONField(help_text="Our price tables at this price (modelinfo.PriceTable.as_json)")
    price_version = models.CharField(max_length=60)
    valid_from = models.DateTimeField()
    source = models.CharField(max_length=200)
    fetched_at = models.DateTimeField()

    class Meta:
        ordering = ["supplier", "model", "-valid_from", "-id"]
        indexes = [models.Index(fields=["supplier", "model", "valid_from"], name="catalogprice_lookup")]
        constraints = [
            models.UniqueConstraint(fields=["supplier", "model", "price_version"], name="one_catalog_price_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.supplier}/{self.model} {self.price_version}"
