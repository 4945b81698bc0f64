from django.contrib import admin

from apps.sharing.models import ShareLink


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Operators see every organization's links read-only (never the token: only its digest is
    stored, and the digest is not shown either). Revoking is the members' (pages, API)."""

    list_display = ("public_id", "organization", "generation", "created_by", "created_at", "expires_at", "revoked_at")
    list_display_links = ("public_id",)
    list_filter = ("created_at", "revoked_at")
    search_fields = ("public_id", "organization__slug", "generation__public_id")
    list_select_related = ("organization", "generation", "created_by")
    exclude = ("token_digest",)
    readonly_fields = (
        "public_id",
        "organization",
        "generation",
        "include_prompt",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "view_count",
        "last_viewed_at",
    )

    def get_queryset(self, request):
        return ShareLink.all_orgs.all()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
