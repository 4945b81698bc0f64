from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions

from apps.api_keys import selectors


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer mr_...``. Binds the request to the token's organization and user.

    A revoked token, or one whose user is no longer a member of its organization, is refused (401).
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer mr_...'.")
        api_token = selectors.api_token_authenticate(token=token.strip())
        if api_token is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or orphaned API token.", code="invalid_api_key")
        now = timezone.now()
        if api_token.last_used_at is None or (now - api_token.last_used_at).total_seconds() > 60:
            # at most one write a minute per token, not one per request
            from apps.api_keys.services import api_token_touch

            api_token_touch(token=api_token, at=now)
        return api_token.user, api_token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
