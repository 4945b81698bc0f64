"""Production mode must fail loudly, naming what is missing; the dev default must not need anything."""

import os
import subprocess
import sys
from pathlib import Path

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
    "EMAIL_URL": "smtp+tls://mr:mail-password@smtp.example.com:587",
}


def _run(env_overrides: dict, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PROD and k not in ("DEBUG", "EMAIL_ALLOW_CONSOLE")}
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


_EMAIL_BACKEND = ("shell", "--no-imports", "-c", "from django.conf import settings; print(settings.EMAIL_BACKEND)")


@pytest.mark.parametrize("email_url", [None, "consolemail://", "filemail:///tmp/mail", "dummymail://"])
def test_production_refuses_mail_that_is_not_sent(email_url):
    # the console backend (the default without EMAIL_URL) prints password-reset links to the log
    env = {k: v for k, v in PROD.items() if k != "EMAIL_URL"}
    if email_url:
        env["EMAIL_URL"] = email_url
    result = _run(env)
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr
    assert "needs EMAIL_URL" in result.stderr and "EMAIL_ALLOW_CONSOLE=true" in result.stderr


def test_production_sends_mail_through_email_url():
    result = _run(PROD, *_EMAIL_BACKEND)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.core.mail.backends.smtp.EmailBackend"


def test_production_prints_mail_only_when_told_to():
    env = {k: v for k, v in PROD.items() if k != "EMAIL_URL"}
    result = _run({**env, "EMAIL_ALLOW_CONSOLE": "true"}, *_EMAIL_BACKEND)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.core.mail.backends.console.EmailBackend"


def test_development_prints_mail_without_email_url():
    env = {k: v for k, v in os.environ.items() if k not in PROD and k not in ("DEBUG", "EMAIL_ALLOW_CONSOLE")}
    result = subprocess.run(
        [sys.executable, "manage.py", *_EMAIL_BACKEND],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "mediarouter.settings"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.core.mail.backends.console.EmailBackend"


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


def test_a_file_variable_wins_over_the_plain_one_and_loses_its_newline(tmp_path):
    """NAME_FILE (django-environ's FileAwareEnv) for the connection secrets too, with the trailing
    newline a secrets file usually has."""
    redis_file = tmp_path / "redis_url"
    redis_file.write_text("redis://127.0.0.1:6379/9\n")
    fernet_file = tmp_path / "fernet"
    fernet_file.write_text(PROD["FERNET_KEYS"] + "\n")
    env = {**PROD, "REDIS_URL": "redis://wrong.invalid:1/0", "REDIS_URL_FILE": str(redis_file)}
    del env["FERNET_KEYS"]
    env["FERNET_KEYS_FILE"] = str(fernet_file)
    code = "from django.conf import settings as s; print(repr(s.REDIS_URL), repr(s.FERNET_KEYS))"
    result = _run(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"'redis://127.0.0.1:6379/9' {[PROD['FERNET_KEYS']]!r}"


def test_a_missing_secret_file_is_an_error(tmp_path):
    env = {k: v for k, v in PROD.items() if k != "SECRET_KEY"}
    env["SECRET_KEY_FILE"] = str(tmp_path / "absent")
    result = _run(env)
    assert result.returncode != 0 and "absent" in result.stderr


_SESSION = (
    "import sys, pytest\n"
    "rc = pytest.main(['-q', '--collect-only', 'tests/core/test_healthz.py'])\n"
    "from django.conf import settings\n"
    "print('MEDIA_ROOT=' + str(settings.MEDIA_ROOT))\n"
    "sys.exit(rc)\n"
)


def _test_session(tmp_path, **env_overrides) -> Path:
    """Run a short pytest session in a subprocess; returns the media folder it used."""
    env = {k: v for k, v in os.environ.items() if k != "MEDIAROUTER_TEST_MEDIA_ROOT"}
    env.update(MEDIAROUTER_VAR_DIR=str(tmp_path / "var"), TMPDIR=str(tmp_path), **env_overrides)
    result = subprocess.run(
        [sys.executable, "-c", _SESSION], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(result.stdout.strip().splitlines()[-1].removeprefix("MEDIA_ROOT="))


def test_the_test_media_folder_is_removed_when_the_session_ends(tmp_path):
    media = _test_session(tmp_path)
    assert media.parent == tmp_path and media.name.startswith("mediarouter-test-media-")
    assert not media.exists()


def test_a_media_folder_handed_down_to_a_session_is_left_to_its_owner(tmp_path):
    given = tmp_path / "given"
    given.mkdir()
    (given / "video.mp4").write_bytes(b"\0")
    assert _test_session(tmp_path, MEDIAROUTER_TEST_MEDIA_ROOT=str(given)) == given
    assert (given / "video.mp4").exists()
