"""Celery plumbing shared by the apps: a base task that runs its body in one tenant's scope."""

from __future__ import annotations

from celery import Task, shared_task
from django.apps import apps as django_apps

from apps.core.scoping import TENANT_MODEL, org_scope, scopes_disabled


class TenantTask(Task):
    """Tasks that act for one organization take ``org_id`` (a keyword argument, an integer id);
    the body runs inside that organization's scope, like a request. Tasks take ids, never model
    instances, and re-read fresh state (so a deleted organization's task finds nothing to do)."""

    def __call__(self, *args, **kwargs):
        org_id = kwargs.get("org_id")
        if org_id is None:
            raise TypeError(f"{self.name} needs org_id=")
        tenant_model = django_apps.get_model(TENANT_MODEL)

        # The scope needs only the id: no query per task (a poll is a task every few seconds per
        # job). The instance loads its other fields if the body reads them. If the organization
        # was deleted, its rows went with it: the body's fresh reads find nothing and it returns.
        organization = tenant_model.from_db(tenant_model.objects.db, ["id"], [int(org_id)])
        with org_scope(organization):
            return super().__call__(*args, **kwargs)


class UnscopedTask(Task):
    """For deliberate cross-organization work (dispatchers, housekeeping): named, never implicit."""

    def __call__(self, *args, **kwargs):
        with scopes_disabled():
            return super().__call__(*args, **kwargs)


@shared_task(name="core.ping")
def ping(value: str = "pong") -> str:
    """A trivial round trip through the broker, used by /healthz tests and the worker test."""
    return value
