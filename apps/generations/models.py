from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.scoping import TenantScopedModel, scoped_manager


class State(models.TextChoices):
    CREATED = "created", "Created"
    SUBMITTING = "submitting", "Submitting"
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "In progress"
    DOWNLOADING = "downloading", "Downloading"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


TERMINAL_STATES = (State.COMPLETED, State.FAILED, State.CANCELED)
ACTIVE_STATES = (State.CREATED, State.SUBMITTING, State.QUEUED, State.IN_PROGRESS, State.DOWNLOADING)
POLLING_STATES = (State.QUEUED, State.IN_PROGRESS)


class Generation(TenantScopedModel):
    """One video job, from request to stored file. Every state change is a conditional UPDATE on
    the expected current state (see services._transition), so racing workers cannot both act.

    ``next_poll_at`` is the engine's lease and alarm clock: the dispatcher picks up every active
    generation whose time has come, whatever its state, so a lost message or a killed worker only
    delays a job.
    """

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="generations")
    public_id = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="generations")
    provider_key = models.ForeignKey(
        "api_keys.ProviderKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="generations"
    )
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=60)

    # the request
    prompt = models.TextField()
    seconds = models.PositiveIntegerField()
    size = models.CharField(max_length=20)
    seed = models.BigIntegerField(null=True, blank=True)
    negative_prompt = models.TextField(blank=True)
    input_image = models.CharField(max_length=300, blank=True, help_text="Storage key of the uploaded image")
    input_image_type = models.CharField(max_length=40, blank=True)
    input_image_url = models.URLField(max_length=2000, blank=True)
    remix_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="remixes")
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)

    # the job
    state = models.CharField(max_length=12, choices=State.choices, default=State.CREATED, db_index=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    provider_job_id = models.CharField(max_length=255, blank=True, db_index=True)
    provider_status = models.CharField(max_length=40, blank=True)
    submit_uncertain = models.BooleanField(default=False)
    output_url = models.TextField(blank=True, help_text="Provider's download URL (expires); never shown to users")
    next_poll_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField()
    submit_attempts = models.PositiveIntegerField(default=0)
    poll_count = models.PositiveIntegerField(default=0)
    download_attempts = models.PositiveIntegerField(default=0)
    transient_errors = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)

    # money
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=4)
    final_cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    price_version = models.CharField(max_length=60, blank=True)

    # the stored result
    video_file = models.CharField(max_length=300, blank=True)
    thumbnail_file = models.CharField(max_length=300, blank=True)
    content_type = models.CharField(max_length=60, blank=True)
    bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="gen_org_created"),
            models.Index(fields=["state", "next_poll_at"], name="gen_due"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="uniq_generation_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_remix(self) -> bool:
        return self.remix_of_id is not None


class GenerationEvent(models.Model):
    """The per-generation history: every state change with its time, and notable errors."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12, blank=True)
    message = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    objects = scoped_manager("generation__organization")
    all_orgs = models.Manager()  # noqa: DJ012 - explicitly unscoped: admin, maintenance

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.generation_id}: {self.from_state} -> {self.to_state}"


class EntryKind(models.TextChoices):
    HOLD = "hold", "Hold"
    RELEASE = "release", "Release"
    CHARGE = "charge", "Charge"
    REFUND = "refund", "Refund"


class UsageEntry(TenantScopedModel):
    """The append-only cost ledger. Amounts are signed USD: a hold reserves (+), its release
    returns it (-), a charge spends (+), a refund gives back (-). ``SUM(amount)`` over a period is
    what is spent or reserved, which is what budgets are checked against; every hold is matched by
    exactly one release. ``period`` is the month of the generation, so a job spanning midnight at
    the end of a month stays in one month."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="usage_entries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="usage_entries")
    generation = models.ForeignKey(Generation, on_delete=models.PROTECT, related_name="usage_entries")
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=4)
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=60)
    seconds = models.PositiveIntegerField()
    price_version = models.CharField(max_length=60, blank=True)
    period = models.DateField(help_text="First day of the month this entry counts in")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["organization", "period"], name="usage_org_period"),
            models.Index(fields=["organization", "user", "period"], name="usage_org_user_period"),
        ]
        constraints = [
            # a generation has at most one hold, one release and one charge (refunds may repeat)
            models.UniqueConstraint(
                fields=["generation", "kind"],
                condition=models.Q(kind__in=["hold", "release", "charge"]),
                name="one_ledger_entry_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} for {self.generation_id}"
