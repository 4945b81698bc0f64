"""The operators' console for generations and the ledger. Read-only views; every change goes
through apps.generations.operations (the same state machine, ledger and audit log as the app)."""

from __future__ import annotations

from datetime import date

from django.contrib import admin, messages
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.core.errors import ApplicationError
from apps.generations import api, operations
from apps.generations.models import Generation, GenerationEvent, UsageEntry


class HasErrorFilter(admin.SimpleListFilter):
    title = "has error"
    parameter_name = "has_error"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(error_code="")
        if self.value() == "no":
            return queryset.filter(error_code="")
        return queryset


class GenerationEventInline(admin.TabularInline):
    model = GenerationEvent
    extra = 0
    can_delete = False
    fields = ("at", "from_state", "to_state", "message")
    readonly_fields = fields
    ordering = ("at", "id")

    def get_queryset(self, request):
        return GenerationEvent.all_orgs.all()

    def has_add_permission(self, request, obj=None):
        return False


class UsageEntryInline(admin.TabularInline):
    model = UsageEntry
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "amount", "user", "price_version", "period", "note")
    readonly_fields = fields

    def get_queryset(self, request):
        return UsageEntry.all_orgs.select_related("user")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "organization",
        "user",
        "provider",
        "model",
        "state",
        "progress",
        "estimated_cost",
        "final_cost",
        "created_at",
        "error_code",
    )
    list_filter = (
        "state",
        "provider",
        "model",
        "organization",
        ("created_at", admin.DateFieldListFilter),
        HasErrorFilter,
    )
    search_fields = ("=public_id", "=provider_job_id", "prompt", "user__email", "organization__slug")
    list_select_related = ("organization", "user")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [GenerationEventInline, UsageEntryInline]
    actions = ["retry", "cancel", "mark_failed", "refund"]
    fieldsets = (
        (None, {"fields": ("public_id", "organization", "user", "state", "progress", "error_code", "error_message")}),
        (
            "Request",
            {
                "fields": (
                    "provider",
                    "model",
                    "prompt",
                    "seconds",
                    "size",
                    "seed",
                    "negative_prompt",
                    "input_image",
                    "input_image_url",
                    "remix_of",
                    "idempotency_key",
                )
            },
        ),
        (
            "Provider job",
            {
                "fields": (
                    "key_used",
                    "provider_job_id",
                    "provider_status",
                    "submit_uncertain",
                    "submit_attempts",
                    "poll_count",
                    "download_attempts",
                    "transient_errors",
                    "next_poll_at",
                    "deadline_at",
                )
            },
        ),
        ("Cost", {"fields": ("estimated_cost", "final_cost", "price_version")}),
        ("Stored video", {"fields": ("stored_file", "bytes", "sha256", "content_type", "thumbnail_file")}),
        ("Times", {"fields": ("created_at", "submitted_at", "completed_at", "updated_at", "deleted_at")}),
    )

    def get_queryset(self, request):
        return Generation.all_orgs.select_related("organization", "user", "provider_key", "remix_of")

    def get_readonly_fields(self, request, obj=None):
        return [f for fieldset in self.fieldsets for f in fieldset[1]["fields"]]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the ledger references generations; members delete files, not rows

    @admin.display(description="key used")
    def key_used(self, obj: Generation) -> str:
        key = obj.provider_key
        if key is None:
            return "—" if obj.provider == "sandbox" else "(deleted)"
        return f"{key.public_id} {key.provider} …{key.last4} ({key.status})"

    @admin.display(description="stored file")
    def stored_file(self, obj: Generation) -> str:
        if not obj.video_file:
            return "—"
        url = reverse("admin:generations_generation_content", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.video_file)

    def get_urls(self):
        return [
            path(
                "<int:pk>/content/",
                self.admin_site.admin_view(self.content_view),
                name="generations_generation_content",
            ),
            *super().get_urls(),
        ]

    def content_view(self, request, pk: int):
        gen = Generation.all_orgs.filter(pk=pk).first()
        if gen is None or not self.has_view_permission(request, gen):
            raise Http404
        try:
            return api.content_response(gen)
        except ApplicationError as exc:
            raise Http404(exc.message) from None

    def _run(self, request, queryset, action, done: str) -> None:
        ok = 0
        for gen in queryset:
            try:
                action(gen)
                ok += 1
            except ApplicationError as exc:
                self.message_user(request, f"{gen.public_id}: {exc.message}", messages.WARNING)
        if ok:
            self.message_user(request, f"{done}: {ok} generation(s).", messages.SUCCESS)

    @admin.action(description="Retry (poll again; submit only if never submitted)", permissions=["change"])
    def retry(self, request, queryset):
        self._run(
            request, queryset, lambda g: operations.generation_retry(generation=g, operator=request.user), "Retried"
        )

    @admin.action(description="Cancel at the provider and release the hold", permissions=["change"])
    def cancel(self, request, queryset):
        self._run(
            request,
            queryset,
            lambda g: operations.generation_operator_cancel(generation=g, operator=request.user),
            "Canceled",
        )

    @admin.action(description="Mark failed and release the hold", permissions=["change"])
    def mark_failed(self, request, queryset):
        self._run(
            request,
            queryset,
            lambda g: operations.generation_mark_failed(
                generation=g, operator=request.user, reason=f"Marked failed by operator {request.user.email}."
            ),
            "Marked failed",
        )

    @admin.action(description="Refund the charge (a new ledger entry)", permissions=["change"])
    def refund(self, request, queryset):
        self._run(
            request,
            queryset,
            lambda g: operations.generation_refund(generation=g, operator=request.user, note="Refunded from the admin"),
            "Refunded",
        )


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
    change_list_template = "admin/generations/usageentry/change_list.html"

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
            path("totals/", self.admin_site.admin_view(self.totals_view), name="generations_usageentry_totals"),
            *super().get_urls(),
        ]

    def totals_view(self, request):
        """Monthly totals per organization and per member: spent (charges less refunds) and still
        reserved (open holds)."""
        months = UsageEntry.all_orgs.annotate(month=TruncMonth("period"))
        spent = Q(kind__in=["charge", "refund"])
        reserved = Q(kind__in=["hold", "release"])
        by_org = (
            months.values("month", "organization__slug", "organization__name")
            .annotate(
                spent=Sum("amount", filter=spent),
                reserved=Sum("amount", filter=reserved),
                videos=Count("id", filter=Q(kind="charge")),
            )
            .order_by("-month", "organization__slug")[:500]
        )
        by_member = (
            months.values("month", "organization__slug", "user__email")
            .annotate(
                spent=Sum("amount", filter=spent),
                reserved=Sum("amount", filter=reserved),
                videos=Count("id", filter=Q(kind="charge")),
            )
            .order_by("-month", "organization__slug", "user__email")[:2000]
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Ledger totals by month",
            "by_org": list(by_org),
            "by_member": list(by_member),
            "today": date.today(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/generations/usageentry/totals.html", context)
