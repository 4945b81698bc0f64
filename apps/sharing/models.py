from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.scoping import TenantScopedModel


class ShareLink(TenantScopedModel):
    """A link that shows one video to anyone who holds it, until it expires or is revoked.

    Only the SHA-256 of the link's token is stored (``token_digest``): the full URL is shown once,
    to the member who made it. The target is a nullable foreign key so that another kind of target
    (a batch) can be added as a second nullable key, with the check constraint widened to "exactly
    one target"."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="share_links")
    public_id = models.CharField(max_length=40, unique=True)
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    generation = models.ForeignKey(
        "generations.Generation", on_delete=models.CASCADE, null=True, blank=True, related_name="share_links"
    )
    include_prompt = models.BooleanField(default=False, help_text="The page shows the video's prompt.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    view_count = models.PositiveIntegerField(default=0)
    last_viewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(generation__isnull=False), name="share_link_has_target"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def is_active(self) -> bool:
        return self.state == "active"
