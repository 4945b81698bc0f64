from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.scoping import TenantScopedModel


class AuditEvent(TenantScopedModel):
    """Who did what, when, to what: security-relevant actions of members and operators.

    Append-only. ``detail`` holds names, roles, amounts and outcomes — never a secret (keys are
    referred to by public id and ``…last4`` only)."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=254, help_text="The actor's email at the time, or 'system'")
    action = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=100, blank=True, help_text="Public id of the object acted on")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_org_created")]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.target}"

    @property
    def summary(self) -> str:
        parts = [f"{k.replace('_', ' ')}: {v}" for k, v in self.detail.items()]
        return "; ".join(parts)
