"""The operators' ledger: read-only (append-only rows), with monthly totals per organization and
member, the ledger inline on each generation, the organization's usage this month, and the price
history (read-only too: old charges point at its versions)."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from apps.accounts.admin import organization_panel
from apps.accounts.models import Organization
from apps.billing import selectors
from apps.billing.models import CatalogPrice, UsageEntry


class UsageEntryInline(admin.TabularInline):
    """The ledger rows of one generation (on the generation's admin page)."""

    model = UsageEntry
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "amount", "user", "price_version", "period", "note")
    readonly_fields = fields

    def get_queryset(self, request):
        return UsageEntry.all_orgs.select_related("user")

    def has_add_permission(self, request, obj=None):
        return False


@organization_panel
@admin.display(description="usage this month (USD)")
def usage_this_month(obj: Organization) -> str:
    if obj.pk is None:
        return "—"
    spent, held = selectors.organization_usage(org=obj)
    return f"{spent:.2f} spent, {held:.2f} reserved"


@admin.register(UsageEntry)
class UsageEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "organization", "user", "kind", "amount", "provider", "model", "generation", "period")
    list_filter = ("kind", "provider", "model", "period", "organization")
    search_fields = ("generation__public_id", "user__email", "organization__slug", "note")
    list_select_related = ("organization", "user", "generation")
    date_hierarchy = "created_at"
    readonly_fields = (
        "created_at",
        "organization",
        "user",
        "generation",
        "kind",
        "amount",
        "provider",
        "model",
        "seconds",
        "price_version",
        "period",
        "note",
    )
    change_list_template = "admin/billing/usageentry/change_list.html"

    def get_queryset(self, request):
        return UsageEntry.all_orgs.all()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # append-only

    def get_urls(self):
        return [
            path("totals/", self.admin_site.admin_view(self.totals_view), name="billing_usageentry_totals"),
            *super().get_urls(),
        ]

    def totals_view(self, request):
        """Monthly totals per organization and per member (``selectors.ledger_monthly_totals``).
        Every organization's money: staff need the ledger's view permission."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        totals = selectors.ledger_monthly_totals()
        context = {
            **self.admin_site.each_context(request),
            "title": "Ledger totals by month",
            "by_org": totals.by_org,
            "by_member": totals.by_member,
            "today": timezone.localdate(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/usageentry/totals.html", context)


@admin.register(CatalogPrice)
class CatalogPriceAdmin(admin.ModelAdmin):
    """The price history (``manage.py refresh_prices`` writes it): read-only, because a generation's
    ``price_version`` points at a row and changing one would rewrite what an old charge meant."""

    list_display = ("supplier", "model", "unit", "unit_price", "price_version", "valid_from", "source", "fetched_at")
    list_filter = ("supplier", "model")
    search_fields = ("model", "price_version")
    date_hierarchy = "valid_from"
    readonly_fields = (
        "supplier",
        "model",
        "unit",
        "unit_price",
        "prices",
        "price_version",
        "valid_from",
        "source",
        "fetched_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
