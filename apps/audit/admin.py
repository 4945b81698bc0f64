from django.contrib import admin

from apps.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "organization", "actor_label", "action", "target", "summary")
    list_filter = ("action", "created_at")
    search_fields = ("actor_label", "action", "target", "organization__slug", "organization__name")
    list_select_related = ("organization",)
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "organization", "actor", "actor_label", "action", "target", "detail")

    def get_queryset(self, request):
        return AuditEvent.all_orgs.all()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the audit log is append-only
