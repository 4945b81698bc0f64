"""Operators' view of team webhooks: endpoints (never their secrets) and the delivery log."""

from __future__ import annotations

from django.contrib import admin

from apps.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("public_id", "organization", "url", "created_at", "failing_since", "disabled_at")
    list_filter = ("disabled_at",)
    search_fields = ("public_id", "url", "organization__slug")
    fields = (
        "public_id",
        "organization",
        "url",
        "events",
        "description",
        "created_by",
        "created_at",
        "failing_since",
        "disabled_at",
        "disabled_reason",
        "previous_secret_expires_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return WebhookEndpoint.all_orgs.select_related("organization")

    def has_add_permission(self, request) -> bool:
        return False


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("at", "status_code", "latency_ms", "response_excerpt", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return WebhookAttempt.all_orgs.all()

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "organization",
        "endpoint",
        "event_type",
        "state",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("state",)
    search_fields = ("public_id", "event__public_id", "event__video_id", "endpoint__public_id")
    readonly_fields = (
        "public_id",
        "organization",
        "endpoint",
        "event",
        "url",
        "state",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
    )
    fields = readonly_fields
    inlines = [AttemptInline]

    def get_queryset(self, request):
        return WebhookDelivery.all_orgs.select_related("organization", "endpoint", "event")

    @admin.display(description="Event")
    def event_type(self, obj) -> str:
        return obj.event.type

    def has_add_permission(self, request) -> bool:
        return False
