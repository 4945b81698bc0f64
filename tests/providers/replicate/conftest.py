"""Fixtures of the Replicate tests: the emulator, an adapter pointed at it, a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.providers import registry
from apps.providers.base import Credentials
from apps.providers.replicate import adapter
from tests.emulators.replicate import ReplicateEmulator
from tests.webhook_sink import WebhookSink


@pytest.fixture(autouse=True)
def _fresh_pacer() -> Iterator[None]:
    """The create pacer is process-wide: every test starts with an empty minute."""
    adapter.PACER.clear()
    yield
    adapter.PACER.clear()


@pytest.fixture
def replicate_emulator() -> Iterator[ReplicateEmulator]:
    with ReplicateEmulator(job_seconds=1.0) as emulator:
        yield emulator


@pytest.fixture
def replicate(replicate_emulator, settings):
    """An adapter built by the registry from the emulator's settings, with its working key."""
    for name, value in replicate_emulator.settings().items():
        setattr(settings, name, value)
    return registry.build("replicate", Credentials(**replicate_emulator.key_fields()))


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    sink = WebhookSink("replicate", status=204)
    yield sink
    sink.stop()
