"""Fixtures of the MiniMax tests: the emulator and an adapter the registry built against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.providers import registry
from apps.providers.base import Credentials
from tests.emulators.minimax import MinimaxEmulator


@pytest.fixture
def minimax_emulator() -> Iterator[MinimaxEmulator]:
    with MinimaxEmulator(job_seconds=1.0) as emulator:
        yield emulator


@pytest.fixture
def minimax(minimax_emulator, settings):
    for name, value in minimax_emulator.settings().items():
        setattr(settings, name, value)
    return registry.build("minimax", Credentials(**minimax_emulator.key_fields()))
