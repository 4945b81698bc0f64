"""Fixtures of the Vertex tests: the emulator, an adapter the registry built against it, and a
clean token cache around every test (the cache is per process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.providers import registry
from apps.providers.base import Credentials
from apps.providers.vertex import adapter as vertex_adapter
from tests.emulators.vertex import VertexEmulator


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    vertex_adapter.clear_token_cache()
    yield
    vertex_adapter.clear_token_cache()


@pytest.fixture
def vertex_emulator() -> Iterator[VertexEmulator]:
    with VertexEmulator(job_seconds=1.0) as emulator:
        yield emulator


@pytest.fixture
def vertex_settings(vertex_emulator, settings):
    for name, value in vertex_emulator.settings().items():
        setattr(settings, name, value)
    return settings


@pytest.fixture
def vertex(vertex_emulator, vertex_settings):
    return registry.build("vertex", Credentials(**vertex_emulator.key_fields()))
