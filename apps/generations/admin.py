"""The operators' console for generations (the ledger's is apps.billing.admin). Read-only views;
every change goes through apps.generations.operations (the same state machine, ledger and audit
log as the app)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.accounts.admin import organization_panel
from apps.accounts.models import Organization
from apps.billing.admin import UsageEntryInline
from apps.billing.prices import catalog_price_versions
from apps.core.downloads import stored_file_response
from apps.core.errors import ApplicationError
from apps.generations import operations, selectors
from apps.generations.models import Batch, Generation, GenerationEvent, State
from apps.providers import registry


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


class OutputMismatchFilter(admin.SimpleListFilter):
    """Completed videos whose stored file differs from the request (apps.generations.media)."""

    title = "output as asked"
    parameter_name = "output"

    def lookups(self, request, model_admin):
        return (("mismatch", "Not as asked"), ("as_asked", "As asked"), ("unverified", "Not probed"))

    def queryset(self, request, queryset):
        if self.value() == "mismatch":
            return queryset.exclude(output_mismatch=[])
        if self.value() == "as_asked":
            return queryset.filter(output_mismatch=[]).exclude(media_probe={})
        if self.value() == "unverified":
            return queryset.filter(state=State.COMPLETED, media_probe={})
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
        OutputMismatchFilter,
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
                    "requested_model",
                    "provider",
                    "model",
                    "substituted_from",
                    "attempts",
                    "audio",
                    "prompt",
                    "seconds",
                    "size",
                    "seed",
                    "negative_prompt",
                    "input_image",
                    "input_image_url",
                    "remix_of",
                    "batch",
                    "batch_index",
                    "batch_waiting",
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
        ("Cost", {"fields": ("estimated_cost", "final_cost", "price_version", "provider_usage")}),
        (
            "Stored video",
            {
                "fields": (
                    "stored_file",
                    "bytes",
                    "sha256",
                    "content_type",
                    "thumbnail_file",
                    "media_probe",
                    "output_mismatch",
                    "content_credentials",
                )
            },
        ),
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
            try:
                needs_key = registry.get_provider_class(obj.provider, allow_disabled=True).requires_key
            except registry.UnknownProvider:
                needs_key = True
            return "(deleted)" if needs_key else "—"
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
            path("cost-drift/", self.admin_site.admin_view(self.cost_drift_view), name="generations_cost_drift"),
            *super().get_urls(),
        ]

    def cost_drift_view(self, request):
        """Where MediaRouter's charges differ from what suppliers report they billed
        (``selectors.cost_drift``), and the price version each model is charged at now
        (``manage.py refresh_prices`` moves it). Every organization's jobs: the generations' view permission."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = selectors.cost_drift()
        now = catalog_price_versions((r.provider, r.model) for r in rows)
        context = {
            **self.admin_site.each_context(request),
            "title": "Cost drift: our charges against what suppliers report",
            # each line with the price version in effect now (a refreshed price, else the catalog's)
            "rows": [(row, now[(row.provider, row.model)]) for row in rows],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/generations/generation/cost_drift.html", context)

    def content_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied  # before the lookup: the answer tells nothing about the object
        gen = Generation.all_orgs.filter(pk=pk).first()
        if gen is None or not self.has_view_permission(request, gen):
            raise Http404
        try:
            return stored_file_response(selectors.generation_file(generation=gen))
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


@organization_panel
@admin.display(description="storage used")
def storage_used(obj: Organization) -> str:
    if obj.pk is None:
        return "—"
    return filesizeformat(selectors.organization_storage_bytes(org=obj))


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    """Batches, read-only: their items are generations (filter those by batch in their list)."""

    list_display = (
        "public_id",
        "organization",
        "created_by",
        "item_count",
        "concurrency",
        "estimated_cost",
        "created_at",
    )
    list_filter = ("organization", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=public_id", "created_by__email", "organization__slug")
    list_select_related = ("organization", "created_by")
    show_full_result_count = False
    readonly_fields = (
        "public_id",
        "organization",
        "created_by",
        "item_count",
        "concurrency",
        "estimated_cost",
        "idempotency_key",
        "request_fingerprint",
        "created_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
