"""Fixtures of the Gemini API tests: the emulator, an adapter the registry built against it, and an
empty model-listing cache for every test (the cache is per process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.providers import registry
from apps.providers.base import Credentials
from apps.providers.gemini import adapter as gemini_adapter
from tests.emulators.gemini import GeminiEmulator


@pytest.fixture(autouse=True)
def _fresh_model_cache() -> Iterator[None]:
    gemini_adapter.clear_models_cache()
    yield
    gemini_adapter.clear_models_cache()


@pytest.fixture
def gemini_emulator() -> Iterator[GeminiEmulator]:
    with GeminiEmulator(job_seconds=1.0) as emulator:
        yield emulator


@pytest.fixture
def gemini(gemini_emulator, settings):
    for name, value in gemini_emulator.settings().items():
        setattr(settings, name, value)
    return registry.build("gemini", Credentials(**gemini_emulator.key_fields()))
