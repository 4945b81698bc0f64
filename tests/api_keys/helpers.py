from __future__ import annotations

from apps.api_keys.models import ProviderKey


def keys_of(org, provider: str | None = None) -> list[ProviderKey]:
    """Set-up and assertions only: read through the explicitly unscoped manager."""
    qs = ProviderKey.all_orgs.filter(organization=org).order_by("created_at", "pk")
    if provider:
        qs = qs.filter(provider=provider)
    return list(qs)


def defaults_of(org, provider: str) -> list[str]:
    return [k.public_id for k in keys_of(org, provider) if k.is_default]
