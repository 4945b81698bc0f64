from __future__ import annotations

from apps.accounts.models import Membership, Organization
from apps.api_keys import tokens
from apps.api_keys.models import ApiToken, ProviderKey


def api_token_authenticate(*, token: str) -> ApiToken | None:
    """Find the active token for this secret, or None. Tokens are identity: looked up across
    organizations (by their own secret), through the explicitly unscoped manager."""
    prefix = tokens.parse_prefix(token)
    if prefix is None:
        return None
    api_token = (
        ApiToken.all_orgs.select_related("user", "organization")
        .filter(prefix=prefix, revoked_at=None, user__is_active=True)
        .first()
    )
    if api_token is None or not tokens.matches(token, api_token.digest):
        return None
    if not Membership.all_orgs.filter(user_id=api_token.user_id, organization_id=api_token.organization_id).exists():
        return None
    return api_token


def api_token_list(*, org: Organization, user=None) -> list[ApiToken]:
    qs = ApiToken.objects.filter(organization=org).select_related("user")
    if user is not None:
        qs = qs.filter(user=user)
    return list(qs)


def provider_key_list(*, org: Organization, provider: str | None = None) -> list[ProviderKey]:
    qs = ProviderKey.objects.filter(organization=org)
    if provider:
        qs = qs.filter(provider=provider)
    return list(qs)


def provider_key_get(*, org: Organization, public_id: str) -> ProviderKey | None:
    return ProviderKey.objects.filter(organization=org, public_id=public_id).first()
