from django.contrib import admin

from apps.api_keys.models import ApiToken, ProviderKey


@admin.register(ProviderKey)
class ProviderKeyAdmin(admin.ModelAdmin):
    """Masked only: no field, action or form here can reveal or change a key's secret."""

    list_display = ("public_id", "organization", "provider", "label", "masked", "status", "is_default", "created_at")
    list_filter = ("provider", "status", "is_default")
    search_fields = ("public_id", "label", "organization__name", "organization__slug")
    list_select_related = ("organization",)
    fields = (
        "public_id",
        "organization",
        "provider",
        "label",
        "masked",
        "status",
        "is_default",
        "last_validated_at",
        "last_error",
        "created_by",
        "created_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return ProviderKey.all_orgs.all()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("public_id", "name", "user", "organization", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("created_at", "revoked_at")
    search_fields = ("public_id", "name", "prefix", "user__email", "organization__slug")
    list_select_related = ("user", "organization")
    fields = ("public_id", "name", "user", "organization", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return ApiToken.all_orgs.all()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
