"""Periodic work on provider keys."""

from __future__ import annotations

from celery import shared_task

from apps.api_keys import services
from apps.api_keys.models import ProviderKey
from apps.providers import registry
from apps.providers.base import VideoProvider


@shared_task(name="api_keys.refresh_key_details")
def refresh_key_details() -> int:
    """Daily: ask each provider that reports what a key may use (the Gemini API's video models)
    again, so models it stopped offering are hidden and refused. Returns the keys changed."""
    slugs = [
        slug
        for slug in registry.PROVIDERS
        if registry.get_provider_class(slug, allow_disabled=True).key_details_refresh
        is not VideoProvider.key_details_refresh
    ]
    changed = 0
    for key in ProviderKey.all_orgs.filter(provider__in=slugs).exclude(status="invalid").iterator(chunk_size=200):
        changed += services.provider_key_refresh_details(key=key)
    return changed
