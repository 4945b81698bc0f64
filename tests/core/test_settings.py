"""Production mode must fail loudly, naming what is missing; the dev default must not need anything."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.utils import ROOT

PROD = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x" * 60 + "production-secret-for-test",
    "FERNET_KEYS": Fernet.generate_key().decode(),
    "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/db",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "mediarouter.example.com",
}


def _run(env_overrides: dict, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PROD and k != "DEBUG"}
    env["DJANGO_SETTINGS_MODULE"] = "mediarouter.settings"
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *(args or ("check",))], cwd=ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FERNET_KEYS", "DATABASE_URL", "REDIS_URL"])
def test_production_refuses_to_start_without(missing):
    env = dict(PROD)
    del env[missing]
    result = _run(env)
    assert result.returncode != 0
    assert missing in result.stderr and "ImproperlyConfigured" in result.stderr


def test_production_refuses_debug():
    result = _run({**PROD, "DEBUG": "true"})
    assert result.returncode != 0 and "DEBUG must be off" in result.stderr


def test_production_check_deploy_is_clean():
    result = _run(PROD, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout


def test_secret_file_variables_are_read(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(PROD["SECRET_KEY"] + "\n")
    env = {k: v for k, v in PROD.items() if k != "SECRET_KEY"}
    env["SECRET_KEY_FILE"] = str(secret_file)
    assert _run(env).returncode == 0
