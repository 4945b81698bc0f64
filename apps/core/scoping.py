"""Fail-closed tenant scoping, on top of django-scopes.

Every tenant-owned model inherits :class:`TenantScopedModel`. Its ``objects`` manager raises
``ScopeError`` unless an organization scope is active, so a forgotten filter fails loudly instead
of leaking. The scope is activated in exactly three places: :class:`TenantScopeMiddleware` (pages),
:class:`apps.core.api.OrgScopedAPIView` (API) and :class:`apps.core.tasks.TenantTask` (Celery).
Admin, migrations and operator commands use the explicitly named ``all_orgs`` manager or
``scopes_disabled()``.
"""

from __future__ import annotations

from django.db import models
from django_scopes import ScopeError, scope, scopes_disabled
from django_scopes.manager import DisabledQuerySet, ScopedManager
from django_scopes.state import get_scope


class StrictDisabledQuerySet(DisabledQuerySet):
    """django-scopes leaves a few read paths open (``exists``, ``in_bulk``...); close them too."""

    exists = DisabledQuerySet.error
    in_bulk = DisabledQuerySet.error
    contains = DisabledQuerySet.error
    explain = DisabledQuerySet.error
    bulk_update = DisabledQuerySet.error
    distinct = DisabledQuerySet.error
    select_related = DisabledQuerySet.error
    prefetch_related = DisabledQuerySet.error
    exclude = DisabledQuerySet.error
    alias = DisabledQuerySet.error


def scoped_manager(path: str = "organization") -> models.Manager:
    """A fail-closed manager scoped to the organization found at ``path`` (``"organization"``,
    or through a parent for child rows: ``"generation__organization"``)."""
    # django-scopes builds its manager class inside a factory; subclass the class it builds.
    base = type(ScopedManager(organization=path))

    class StrictScopedManager(base):
        def get_queryset(self):
            qs = super().get_queryset()
            if isinstance(qs, DisabledQuerySet):
                qs.__class__ = StrictDisabledQuerySet
            return qs

    return StrictScopedManager()


def TenantManager() -> models.Manager:
    return scoped_manager("organization")


def org_scope(organization):
    """Activate the scope of one organization (a context manager)."""
    return scope(organization=organization)


def current_organization():
    return get_scope().get("organization")


def scoped_organization_id() -> int | None:
    """The id of the one organization whose scope is active, else None (no scope, scopes disabled,
    or a scope on several organizations or on None). For reads that bypass the scoped manager
    (:mod:`apps.core.prepared`): they filter on this id, and leave every other case to the manager
    (which raises ``ScopeError`` without a scope)."""
    current = get_scope()
    if not current.get("_enabled", True):
        return None
    value = current.get("organization")
    if value is None or isinstance(value, (list, tuple)):
        return None
    return getattr(value, "pk", value)


class TenantScopedModel(models.Model):
    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="+", db_index=True)

    objects = TenantManager()
    all_orgs = models.Manager()  # noqa: DJ012 - explicitly unscoped: admin, commands, maintenance

    class Meta:
        abstract = True


__all__ = [
    "ScopeError",
    "TenantManager",
    "TenantScopedModel",
    "current_organization",
    "org_scope",
    "scoped_organization_id",
    "scopes_disabled",
]
