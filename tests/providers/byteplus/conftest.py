from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.byteplus import BytePlusEmulator


@pytest.fixture
def byteplus_emulator() -> Iterator[BytePlusEmulator]:
    """Callbacks are delivered by hand (``deliver_callbacks``) so tests see each attempt."""
    with BytePlusEmulator(job_seconds=1.0, auto_deliver=False) as emulator:
        yield emulator
