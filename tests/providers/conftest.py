from __future__ import annotations

import pytest

from apps.providers import http
from tests.emulators.fixtures import kling_emulator  # noqa: F401

PUBLIC_IP = "93.184.215.14"


@pytest.fixture(autouse=True)
def _provider_settings(settings):
    """Emulators speak plain http on 127.0.0.1; the sandbox finishes jobs quickly."""
    settings.PROVIDER_ALLOW_HTTP = True
    settings.SANDBOX_JOB_SECONDS = 0.5
    settings.SANDBOX_PROVIDER_ENABLED = True


@pytest.fixture
def public_dns(monkeypatch):
    """Resolve every host to a public address (no DNS in tests; ``responses`` serves the URL)."""
    monkeypatch.setattr(http, "_resolve", lambda host, port: [PUBLIC_IP])
