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

# The tenant: the model every tenant-owned row points at, named like AUTH_USER_MODEL (core knows
# its name, never its code).
TENANT_MODEL = "accounts.Organization"


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


def tenant_manager() -> models.Manager:
    """The fail-closed manager of a model with an ``organization`` foreign key."""
    return scoped_manager("organization")


TenantManager = tenant_manager  # the old (PascalCase) name, for code written against it


def org_scope(organization):
    """Activate the scope of one organization (a context manager)."""
    return scope(organization=organization)


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
    organization = models.ForeignKey(TENANT_MODEL, on_delete=models.CASCADE, related_name="+", db_index=True)

    objects = tenant_manager()
    all_orgs = models.Manager()  # noqa: DJ012 - explicitly unscoped: admin, commands, maintenance

    class Meta:
        abstract = True


__all__ = [
    "TENANT_MODEL",
    "ScopeError",
    "TenantManager",
    "TenantScopedModel",
    "org_scope",
    "scoped_organization_id",
    "scopes_disabled",
    "tenant_manager",
]
