from __future__ import annotations

from django.db.models import QuerySet

from apps.audit.models import AuditEvent


def audit_list(*, org) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=org).select_related("actor")
