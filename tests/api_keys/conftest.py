"""Fixtures for provider keys and API tokens: memberships of the three tenants, a factory for keys
stored without calling a provider, and the provider emulators wired in through settings."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from apps.accounts.models import Membership
from apps.api_keys import crypto
from apps.api_keys.models import KeyStatus, ProviderKey
from apps.core.ids import public_id
from apps.core.scoping import org_scope
from apps.providers import registry

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused, at once


@pytest.fixture(autouse=True)
def _provider_settings(settings):
    """Emulators speak plain http on 127.0.0.1; never talk to a real provider from these tests."""
    settings.PROVIDER_ALLOW_HTTP = True
    settings.PROVIDER_CONNECT_TIMEOUT = 2.0
    settings.PROVIDER_READ_TIMEOUT = 5.0
    for slug in registry.PROVIDERS:  # every provider, by the generic <SLUG>_BASE_URL rule
        setattr(settings, f"{slug.upper()}_BASE_URL", UNREACHABLE)


@pytest.fixture
def sora(openai_emulator, settings):
    settings.SORA_BASE_URL = openai_emulator.base_url
    return openai_emulator


@pytest.fixture
def runway(runway_emulator, settings):
    settings.RUNWAY_BASE_URL = runway_emulator.base_url
    return runway_emulator


@pytest.fixture
def kling(kling_emulator, settings):
    settings.KLING_BASE_URL = kling_emulator.base_url
    return kling_emulator


class Members:
    def __init__(self, tenants):
        with org_scope(tenants.org_a):
            self.alice = Membership.objects.select_related("organization", "user").get(user=tenants.alice)
            self.bob = Membership.objects.select_related("organization", "user").get(user=tenants.bob)
        with org_scope(tenants.org_b):
            self.charlie = Membership.objects.select_related("organization", "user").get(user=tenants.charlie)


@pytest.fixture
def members(tenants) -> Members:
    return Members(tenants)


@pytest.fixture
def make_key(tenants) -> Callable[..., ProviderKey]:
    """Store a key directly (no provider call), as provider_key_create would."""

    def make(
        org=None,
        provider: str = "sora",
        secret: str = "sk-stored-key-0000abcd",
        *,
        fields: dict | None = None,
        status: str = KeyStatus.VALID,
        is_default: bool | None = None,
        label: str = "",
        last_error: str = "",
    ) -> ProviderKey:
        org = org or tenants.org_a
        fields = fields or {"api_key": secret}
        with org_scope(org):
            if is_default is None:
                is_default = not ProviderKey.objects.filter(
                    organization=org, provider=provider, is_default=True
                ).exists()
            return ProviderKey.objects.create(
                organization=org,
                public_id=public_id("key"),
                provider=provider,
                label=label,
                ciphertext=crypto.encrypt(json.dumps(fields)),
                last4=list(fields.values())[-1][-4:],
                status=status,
                last_error=last_error,
                is_default=is_default,
            )

    return make
