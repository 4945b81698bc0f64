"""Helpers for tests that start real processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child process that must see this test run's database."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "mediarouter.settings_test"
    env["MEDIAROUTER_TEST_DB_NAME"] = str(settings.DATABASES["default"]["NAME"])
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


PYTHON = sys.executable
