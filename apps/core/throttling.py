"""API throttling, per API token and per organization, for every API view (both API shapes).

Rates come from settings (``API_THROTTLE_TOKEN_RATE``, ``API_THROTTLE_ORG_RATE``; ``"120/min"``
style, empty to disable) and are read on every request, so an operator's change (or a test's)
applies without a restart. Counts live in Django's default cache: Redis when ``REDIS_URL`` is set,
the file cache otherwise, so web processes share them. An over-rate request gets 429 with
``Retry-After`` in the API's error envelope (``apps.core.api.exception_handler``).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRateThrottle(SimpleRateThrottle):
    setting_name: str

    def get_rate(self) -> str | None:
        return getattr(settings, self.setting_name, None) or None

    def allow_request(self, request, view):
        # DRF reads the rate once, at construction; read it again so settings changes apply.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        token = getattr(request, "auth", None)
        if token is None or getattr(token, "organization_id", None) is None:
            return None  # unauthenticated requests are refused (401) before throttling matters
        return self.cache_format % {"scope": self.scope, "ident": self.ident_of(token)}

    def ident_of(self, token) -> str:
        raise NotImplementedError


class TokenRateThrottle(_SettingsRateThrottle):
    """Requests per API token."""

    scope = "api_token"
    setting_name = "API_THROTTLE_TOKEN_RATE"

    def ident_of(self, token) -> str:
        return token.public_id


class OrgRateThrottle(_SettingsRateThrottle):
    """Requests per organization, all its members' tokens together."""

    scope = "api_org"
    setting_name = "API_THROTTLE_ORG_RATE"

    def ident_of(self, token) -> str:
        return str(token.organization_id)
