"""Team webhooks out: endpoints per organization, events (the outbox) and their deliveries.

An event and its deliveries are written in the same transaction as the state change that caused
them (``services.video_event``, called by the generation engine's ``transition``); Celery sends
them after the commit and beat re-sends whatever is due, so a dead worker loses nothing.
Signing secrets are Fernet ciphertext (``apps.api_keys.crypto``), shown once when made.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.scoping import TenantScopedModel, scoped_manager

# The event types an endpoint may subscribe to (an empty list means every one).
VIDEO_EVENT_TYPES = ("video.queued", "video.in_progress", "video.completed", "video.failed", "video.canceled")
TEST_EVENT_TYPE = "webhook.test"


class WebhookEndpoint(TenantScopedModel):
    organization = models.ForeignKey(
        "accounts.Organization", on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    public_id = models.CharField(max_length=40, unique=True)
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, blank=True, help_text="Event types; empty: every type.")
    description = models.CharField(max_length=200, blank=True)
    secret_ciphertext = models.TextField(editable=False)
    # after a rotation the old secret signs too, until previous_secret_expires_at
    previous_secret_ciphertext = models.TextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.public_id} → {self.url}"

    def __repr__(self) -> str:
        return f"<WebhookEndpoint {self.public_id}>"

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    def wants(self, event_type: str) -> bool:
        return event_type == TEST_EVENT_TYPE or not self.events or event_type in self.events


class WebhookEvent(TenantScopedModel):
    """One thing that happened, exactly as it is sent (``body`` is the signed bytes)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    public_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=40)
    video_id = models.CharField(max_length=40, blank=True, db_index=True)
    body = models.TextField()
    # "video_x:in_progress:3": at most one in_progress event per job per 10 % of progress
    dedupe_key = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dedupe_key"],
                condition=~models.Q(dedupe_key=""),
                name="webhook_event_once_per_dedupe_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Gave up"


class WebhookDelivery(TenantScopedModel):
    """One event for one endpoint: the outbox row. ``next_attempt_at`` is when it is due (pending)
    or when a send in flight is presumed dead (sending); beat re-sends either once it passes."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    public_id = models.CharField(max_length=40, unique=True)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    # a per-request webhook_url (else the endpoint's url)
    url = models.URLField(max_length=2000, blank=True)
    state = models.CharField(max_length=12, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.public_id} ({self.state})"

    @property
    def target_url(self) -> str:
        return self.url or self.endpoint.url


class WebhookAttempt(models.Model):
    """One try of a delivery: what the receiver answered (truncated) and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)

    objects = scoped_manager("delivery__organization")
    all_orgs = models.Manager()  # noqa: DJ012

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.at:%Y-%m-%d %H:%M:%S} → {self.status_code or self.error}"


class VideoWebhook(TenantScopedModel):
    """A per-request ``webhook_url`` (the native create's): this video's events also go there,
    signed with the organization's default endpoint's secret."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+")
    video_id = models.CharField(max_length=40, db_index=True)
    url = models.URLField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "video_id", "url"], name="one_video_webhook_per_url")
        ]

    def __str__(self) -> str:
        return f"{self.video_id} → {self.url}"
