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
    readonly_fields = ("created_at",)
    inlines = [MembershipInline]


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
