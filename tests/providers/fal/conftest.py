"""Fixtures of the fal tests: the emulator, a webhook receiver, and a clean key-set cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.providers import registry
from apps.providers.base import Credentials
from apps.providers.fal import adapter as fal_adapter
from tests.emulators.fal import FalEmulator
from tests.webhook_sink import WebhookSink


@pytest.fixture(autouse=True)
def _fresh_jwks_cache():
    """The key set is cached per process: every test starts (and ends) without it."""
    fal_adapter.JWKS.clear()
    yield
    fal_adapter.JWKS.clear()


@pytest.fixture
def fal_emulator(settings) -> Iterator[FalEmulator]:
    with FalEmulator(job_seconds=10.0) as emulator:  # queued 2 s, then running 8 s (emulator time)
        for name, value in emulator.settings().items():
            setattr(settings, name, value)
        yield emulator


@pytest.fixture
def fal(fal_emulator):
    """An adapter built by the registry from the emulator's settings, with its working key."""
    return registry.build("fal", Credentials(**fal_emulator.key_fields()))


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    sink = WebhookSink("fal", status=200)
    yield sink
    sink.stop()
