from __future__ import annotations

from decimal import Decimal, InvalidOperation

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


def reported_cost(usage) -> Decimal | None:
    """What a supplier said it billed for a job (``provider_usage["cost_usd"]``, a number or a
    numeric string), or None when it said nothing readable. Never raises: a supplier's odd value
    must not break a page or a command."""
    value = usage.get("cost_usd") if isinstance(usage, dict) else None
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


ACTIVE_STATES = (State.CREATED, State.SUBMITTING, State.QUEUED, State.IN_PROGRESS, State.DOWNLOADING)
POLLING_STATES = (State.QUEUED, State.IN_PROGRESS)

# The status members are told (the native API, messages): the working states collapse into three.
NATIVE_STATUS = {
    State.CREATED: "queued",
    State.SUBMITTING: "queued",
    State.QUEUED: "queued",
    State.IN_PROGRESS: "in_progress",
    State.DOWNLOADING: "in_progress",
    State.COMPLETED: "completed",
    State.FAILED: "failed",
    State.CANCELED: "canceled",
}


class Generation(TenantScopedModel):
    """One video job, from request to stored file. Every state change is a conditional UPDATE on
    the expected current state (see engine.transition), so racing workers cannot both act.

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
    provider = models.CharField(max_length=20, help_text="The supplier that runs (or ran) the job")
    model = models.CharField(max_length=60, help_text="The canonical model id")
    # what the member asked for: a canonical id (routed; may fall back to another supplier) or a
    # qualified "supplier/model" (pinned, never moved); empty for rows from before the router
    requested_model = models.CharField(max_length=80, blank=True)
    # the suppliers tried before the current one: [{"supplier", "outcome", "message", "price", "at"}]
    attempts = models.JSONField(default=list, blank=True)
    substituted_from = models.CharField(max_length=60, blank=True, help_text="Retired model an org rule replaced")
    audio = models.BooleanField(null=True, blank=True, help_text="Sound on/off as asked (None: the model's default)")

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
    # one item of a batch (apps.generations.batches): its position in the batch (a retry of a failed
    # item is a new generation at the same position), and whether it is held but not yet released
    # to the engine because the batch's concurrency limit is reached (state created, no alarm set)
    batch = models.ForeignKey("Batch", on_delete=models.SET_NULL, null=True, blank=True, related_name="items")
    batch_index = models.PositiveIntegerField(null=True, blank=True)
    batch_waiting = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)

    # the job
    state = models.CharField(max_length=12, choices=State.choices, default=State.CREATED, db_index=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    provider_job_id = models.CharField(max_length=255, blank=True, db_index=True)
    # adapter-owned data the submit returned (fal's status/response/cancel URLs), passed back as is
    provider_job_data = models.JSONField(default=dict, blank=True)
    # what the provider reported it bills for the job (units, tokens, predict time, cost), as reported
    provider_usage = models.JSONField(default=dict, blank=True)
    # its cost_usd as a number (reported_cost), written with it: the usage report sums a column
    provider_cost = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True, editable=False)
    provider_status = models.CharField(max_length=40, blank=True)
    submit_uncertain = models.BooleanField(default=False)
    output_url = models.TextField(blank=True, help_text="Provider's download URL (expires); never shown to users")
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # when the engine first saw the job running at the provider: with the progress the provider
    # reports, it says how long the job has left (engine.paced_delay)
    running_since = models.DateTimeField(null=True, blank=True, editable=False)
    # SHA-256 of the per-generation token in the callback URL the provider was given
    # (``/hooks/providers/<slug>/<token>``); empty: no callback requested, the engine polls
    callback_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
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
    # what the stored file is (apps.generations.media.probe): duration, width, height, fps, codecs,
    # has_audio; empty until probed
    media_probe = models.JSONField(default=dict, blank=True)
    # how the stored file differs from the request: [{"field", "asked", "delivered", "message"}];
    # empty: as asked (or not probed)
    output_mismatch = models.JSONField(default=list, blank=True)
    # written with the two above (apps.generations.media.probe_fields): whether the file was probed
    # and whether it is not as asked, as columns the usage report counts from an index; with a
    # database default, so that processes still on the previous release can insert rows mid-deploy
    output_probed = models.BooleanField(default=False, db_default=False, editable=False)
    output_flagged = models.BooleanField(default=False, db_default=False, editable=False)
    # the stored file's C2PA content credentials, summarized (apps.generations.credentials): state
    # (valid / untrusted / invalid / unverified / none / unreadable), issuer, signed_at, ...; empty
    # until read
    content_credentials = models.JSONField(default=dict, blank=True)

    # the team's library (per organization, not per member): a star and one short free-text tag
    favourite = models.BooleanField(default=False)
    tag = models.CharField(max_length=40, blank=True)

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
            models.Index(fields=["organization", "tag"], name="gen_org_tag", condition=~models.Q(tag="")),
            # the batches' safety net: the few items still waiting for a slot
            models.Index(fields=["batch"], condition=models.Q(batch_waiting=True), name="gen_batch_waiting"),
            # The gallery and the lists: the organization's videos not deleted, newest first. Its
            # page is read straight off the index and its count (the Paginator's) is an index-only
            # scan: 55 -> 15 ms at 100,000 videos (bench/pages.py, bench/RESULTS.md).
            models.Index(
                fields=["organization", "-created_at", "-id"],
                name="gen_org_live_created",
                condition=models.Q(deleted_at=None),
            ),
            # The usage report's date range (videos created between two days) with everything its
            # one grouped query counts and sums, so that PostgreSQL reads no table rows (key
            # columns, not INCLUDE: SQLite has no INCLUDE, and uses a covering index too). Three
            # scans of the table became one index-only scan: bench/RESULTS.md. The member comes last:
            # a member's own report filters on it.
            models.Index(
                fields=[
                    "organization",
                    "created_at",
                    "state",
                    "provider",
                    "model",
                    "seconds",
                    "provider_cost",
                    "output_probed",
                    "output_flagged",
                    "user",
                ],
                name="gen_org_usage_cover",
            ),
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
    def supplier_model(self) -> str:
        """``supplier/model``: where the job runs, as the OpenAI shape names the model."""
        return f"{self.provider}/{self.model}"

    @property
    def pinned(self) -> bool:
        """Asked for one supplier by name: never moved to another."""
        return "/" in self.requested_model

    @property
    def is_remix(self) -> bool:
        return self.remix_of_id is not None


class Batch(TenantScopedModel):
    """Many generations asked for at once (the API's ``POST /v1/video/batches``, the Playground's
    batch mode): estimated and held as a whole up front, then run at most ``concurrency`` at a time.

    The items are Generation rows (``Generation.batch``); everything else a batch reports (states,
    held, charged) is read from them, so it cannot drift from what the engine and the ledger did.
    ``estimated_cost`` and ``item_count`` are the batch as it was created (retries add items)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="batches")
    public_id = models.CharField(max_length=40, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="batches")
    concurrency = models.PositiveSmallIntegerField(help_text="At most this many items run at once")
    item_count = models.PositiveIntegerField()
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=4, help_text="Held at creation (USD)")
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "created_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="uniq_batch_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return self.public_id


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


class RoutingPolicy(TenantScopedModel):
    """How an organization's requests for a canonical model choose among its suppliers
    (``apps.generations.routing``). No row: the catalog's default order, no resubmits."""

    class Order(models.TextChoices):
        CATALOG = "catalog", "Catalog order (the models' makers first, then aggregators)"
        DIRECT_FIRST = "direct_first", "Direct suppliers first"
        CHEAPEST = "cheapest", "Cheapest first"
        EXPLICIT = "explicit", "An explicit order of suppliers"

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="routing_policy"
    )
    order = models.CharField(max_length=20, choices=Order.choices, default=Order.CATALOG)
    suppliers = models.JSONField(default=list, blank=True, help_text="Supplier slugs, for the explicit order")
    per_model = models.JSONField(default=dict, blank=True, help_text="Canonical model id -> supplier slugs")
    resubmit_on_supplier_failure = models.BooleanField(
        default=False,
        help_text="Resubmit to the next supplier when one fails a job for its own reasons (never for content)",
    )
    substitutions = models.JSONField(default=dict, blank=True, help_text="Retired model id -> replacement id")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    def __str__(self) -> str:
        return f"routing for {self.organization_id}: {self.order}"
