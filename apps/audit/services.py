from __future__ import annotations

import logging

from apps.audit.models import AuditEvent

logger = logging.getLogger("mediarouter.audit")

# The actions recorded, for documentation and for the tests that check each one is covered.
ACTIONS = {
    "key.added": "Provider key added",
    "key.validated": "Provider key checked with the provider",
    "key.default_changed": "Default provider key changed",
    "key.deleted": "Provider key deleted",
    "key.marked_invalid": "Provider key refused by the provider during a job",
    "keys.rotated": "Provider keys re-encrypted with the newest Fernet key",
    "token.created": "API token created",
    "token.revoked": "API token revoked",
    "member.invited": "Invitation created",
    "invitation.revoked": "Invitation revoked",
    "member.joined": "Invitation accepted",
    "member.role_changed": "Member's role changed",
    "member.limit_changed": "Member's monthly limit changed",
    "member.removed": "Member removed",
    "member.left": "Member left",
    "org.settings_changed": "Organization settings or budgets changed",
    "routing.changed": "Routing policy changed",
    "share.created": "Share link created",
    "share.revoked": "Share link revoked",
    "generation.retried": "Operator retried a generation",
    "generation.canceled": "Generation canceled by an operator",
    "generation.marked_failed": "Operator marked a generation failed",
    "generation.refunded": "Operator refunded a charge",
    "batch.created": "Batch of generations created",
    "batch.retried": "Failed items of a batch asked again",
}


def audit_record(*, org, actor=None, action: str, target: str = "", detail: dict | None = None) -> AuditEvent:
    """Record one action. ``actor`` None means the system (a worker, a command)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    event = AuditEvent.objects.create(
        organization_id=getattr(org, "pk", org),
        actor=actor,
        actor_label=getattr(actor, "email", None) or "system",
        action=action,
        target=target[:100],
        detail=detail or {},
    )
    logger.info("audit org=%s actor=%s action=%s target=%s", event.organization_id, event.actor_label, action, target)
    return event
