from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from apps.accounts.models import Invitation, Membership, Organization, User


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "monthly_limit", "public_id", "created_at")
    readonly_fields = ("public_id", "created_at")
    autocomplete_fields = ("user",)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "name", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("email", "name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "monthly_budget", "member_monthly_limit", "retention_days", "created_at")
    search_fields = ("name", "slug", "memberships__user__email")
    list_filter = ("created_at",)
    readonly_fields = ("created_at", "usage_this_month", "storage_used", "provider_keys_masked")
    inlines = [MembershipInline]

    @admin.display(description="usage this month (USD)")
    def usage_this_month(self, obj: Organization) -> str:
        from apps.generations.ledger import ZERO, period_of
        from apps.generations.models import UsageEntry

        if obj.pk is None:
            return "—"
        qs = UsageEntry.all_orgs.filter(organization=obj, period=period_of(timezone.now()))
        spent = qs.filter(kind__in=["charge", "refund"]).aggregate(t=Sum("amount"))["t"] or ZERO
        held = qs.filter(kind__in=["hold", "release"]).aggregate(t=Sum("amount"))["t"] or ZERO
        return f"{spent:.2f} spent, {held:.2f} reserved"

    @admin.display(description="storage used")
    def storage_used(self, obj: Organization) -> str:
        from apps.generations.models import Generation

        if obj.pk is None:
            return "—"
        total = (
            Generation.all_orgs.filter(organization=obj, deleted_at=None)
            .exclude(video_file="")
            .aggregate(t=Sum("bytes"))["t"]
            or 0
        )
        return filesizeformat(total)

    @admin.display(description="provider keys")
    def provider_keys_masked(self, obj: Organization) -> str:
        from apps.api_keys.models import ProviderKey

        if obj.pk is None:
            return "—"
        keys = ProviderKey.all_orgs.filter(organization=obj).order_by("provider", "created_at")
        return (
            ", ".join(f"{k.provider} …{k.last4} ({k.status}{', default' if k.is_default else ''})" for k in keys)
            or "none"
        )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role", "monthly_limit", "created_at")
    list_filter = ("role", "created_at")
    search_fields = ("user__email", "organization__name", "organization__slug", "public_id")
    list_select_related = ("user", "organization")
    autocomplete_fields = ("user", "organization")
    readonly_fields = ("public_id", "created_at")

    def get_queryset(self, request):
        return Membership.all_orgs.all()


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("public_id", "organization", "email", "role", "state", "created_by", "expires_at")
    list_filter = ("role", "created_at", "expires_at")
    search_fields = ("public_id", "email", "organization__name", "organization__slug")
    list_select_related = ("organization", "created_by")
    # The link's secret is never stored; only its digest, which is useless to show.
    exclude = ("token_digest",)
    readonly_fields = ("public_id", "organization", "created_by", "created_at", "accepted_at", "accepted_by")

    def get_queryset(self, request):
        return Invitation.all_orgs.all()

    def has_add_permission(self, request):
        return False  # invitations are created by the team, where the one-time link can be shown
