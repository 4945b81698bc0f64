"""Pytest fixtures that run each provider emulator on a free 127.0.0.1 port for one test.

Use them from a conftest (``from tests.emulators.fixtures import openai_emulator  # noqa: F401``).
Each yields the running emulator: ``.base_url`` (OpenAI's includes ``/v1``), ``.api_key`` (and
Kling's ``.access_key``/``.secret_key``), ``.credentials()``, ``.add_fault()``, ``.advance()``,
``.stats()``. Jobs take ``job_seconds=1.0`` of emulator time; tests fast-forward with ``advance``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.providers.base import Credentials

from .kling import KlingEmulator
from .runway import RunwayEmulator
from .sora import OpenAIEmulator


class _Creds:
    def credentials(self) -> Credentials:
        return Credentials(api_key=self.api_key)  # type: ignore[attr-defined]


class OpenAITestEmulator(_Creds, OpenAIEmulator):
    pass


class RunwayTestEmulator(_Creds, RunwayEmulator):
    pass


class KlingTestEmulator(_Creds, KlingEmulator):
    def jwt_credentials(self) -> Credentials:
        return Credentials(access_key=self.access_key, secret_key=self.secret_key)


@pytest.fixture
def openai_emulator() -> Iterator[OpenAITestEmulator]:
    with OpenAITestEmulator(job_seconds=1.0) as emulator:
        yield emulator  # type: ignore[misc]


@pytest.fixture
def runway_emulator() -> Iterator[RunwayTestEmulator]:
    with RunwayTestEmulator(job_seconds=1.0) as emulator:
        yield emulator  # type: ignore[misc]


@pytest.fixture
def kling_emulator() -> Iterator[KlingTestEmulator]:
    with KlingTestEmulator(job_seconds=1.0) as emulator:
        yield emulator  # type: ignore[misc]
