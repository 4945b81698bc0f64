from __future__ import annotations

from django.utils import timezone

from apps.accounts.models import Membership, Organization, User
from apps.api_keys import tokens
from apps.api_keys.models import ApiToken
from apps.core.errors import ApplicationError, PermissionDeniedError
from apps.core.ids import public_id


def api_token_create(*, org: Organization, user: User, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for ``user`` in ``org``. Returns the row and the token, shown once."""
    if not Membership.all_orgs.filter(organization=org, user=user).exists():
        raise ApplicationError("The user is not a member of this organization.")
    token, prefix, digest = tokens.make_token()
    api_token = ApiToken.objects.create(
        organization=org,
        user=user,
        public_id=public_id("tok"),
        name=(name or "API token").strip()[:100],
        prefix=prefix,
        digest=digest,
    )
    return api_token, token


def api_token_revoke(*, by: Membership, public_id: str) -> ApiToken:
    api_token = ApiToken.objects.filter(organization=by.organization, public_id=public_id).first()
    if api_token is None:
        raise ApplicationError("No such token.", code="not_found")
    if api_token.user_id != by.user_id and not by.can_manage:
        raise PermissionDeniedError("Only owners and admins can revoke other members' tokens.")
    ApiToken.objects.filter(pk=api_token.pk, revoked_at=None).update(revoked_at=timezone.now())
    api_token.refresh_from_db()
    return api_token


def api_token_touch(*, token: ApiToken, at) -> None:
    ApiToken.all_orgs.filter(pk=token.pk).update(last_used_at=at)
