from collections.abc import Callable
from typing import ClassVar

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

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
    readonly_fields = ("created_at", "provider_keys_masked")
    inlines = [MembershipInline]
    # Read-only facts the apps above accounts add with organization_panel() (billing: usage this
    # month; generations: storage used), so accounts imports nothing from them.
    panels: ClassVar[list[Callable[[Organization], str]]] = []

    def get_readonly_fields(self, request, obj=None):
        return ("created_at", *self.panels, "provider_keys_masked")

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


def organization_panel(func: Callable[[Organization], str]) -> Callable[[Organization], str]:
    """Add a read-only fact to the organization's admin page: ``func(org) -> str``, labelled with
    ``@admin.display(description=...)``. Apps that depend on accounts call it from their admin."""
    if func not in OrganizationAdmin.panels:
        OrganizationAdmin.panels.append(func)
    return func


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
