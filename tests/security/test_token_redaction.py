"""Invitation and password-reset tokens are credentials that travel in URLs: none reaches a log.

Covered: the patterns against the project's own routes (plain, absolute, in ``?next=``,
percent-encoded); Django's logging in this process (``django.request`` 404s and 500s with their
tracebacks, ``django.server`` request lines, through the handler LOGGING installs and through any
other handler); and a real gunicorn started with ``--logger-class mediarouter.logging.GunicornLogger``
(its access log with request line, query, referer and Location, its error log, and the Django logs
of its worker process).
"""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import time
from urllib.parse import quote

import pytest
import requests
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.core.servers.basehttp import WSGIRequestHandler
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from apps.accounts import services as account_services
from apps.accounts.models import Membership
from apps.core.scoping import org_scope
from mediarouter.logging import REDACTED, RedactSecretsFilter, redact
from tests.utils import PYTHON, ROOT, subprocess_env

HX = {"HX-Request": "true"}


def _reset_parts(user) -> tuple[str, str]:
    return urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)


def _invitation_token(tenants, email: str = "charlie@example.com") -> str:
    alice = Membership.all_orgs.select_related("organization", "user").get(
        user=tenants.alice, organization=tenants.org_a
    )
    with org_scope(tenants.org_a):
        _, token = account_services.invitation_create(by=alice, role="member", email=email)
    return token


def _assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"a token reached the log: …{text[max(0, text.find(secret) - 200) :][:400]}…"


# --- the patterns ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_patterns_hide_the_tokens_of_the_projects_own_routes(tenants):
    invite_token = _invitation_token(tenants)
    uid, reset_token = _reset_parts(tenants.alice)
    invite = reverse("invitation-accept", kwargs={"token": invite_token})
    reset = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": reset_token})
    for path in (invite, reset):
        for text in (
            f'"GET {path} HTTP/1.1" 200',
            f"https://mr.example.com{path}",
            f"/login/?next={path}",
            f"/login/?next={quote(path, safe='')}",
            f"Not Found: {path}",
        ):
            redacted = redact(text)
            _assert_clean(redacted, [invite_token, reset_token, uid])
            assert REDACTED in redacted, text
    assert redact(invite) == f"/invite/{REDACTED}/"
    assert redact(reset) == f"/password/reset/{REDACTED}/{REDACTED}/"
    # Django's second step keeps the word, not the user id
    set_password = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": "set-password"})
    assert redact(set_password) == f"/password/reset/{REDACTED}/set-password/"
    # pages without a secret are left as they are
    for path in (
        reverse("password_reset"),
        reverse("password_reset_done"),
        reverse("password_reset_complete"),
        reverse("org-invite", kwargs={"org_slug": tenants.org_a.slug}),
        '"POST /o/alice-films/members/invite/ HTTP/1.1" 200',
    ):
        assert redact(path) == path


# --- Django's logging, in this process ------------------------------------------------------


@pytest.fixture
def console_log():
    """What the console handler installed by LOGGING writes, while the test runs."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    ]
    assert handlers, "LOGGING installs no redacting console handler on the root logger"
    buffer = io.StringIO()
    previous = [h.setStream(buffer) for h in handlers]
    try:
        yield buffer
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            handler.setStream(stream)


@pytest.mark.django_db
def test_django_logs_carry_no_invitation_or_reset_token(tenants, console_log, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    # an invitation: shown, accepted, then dead (a 404, which django.request logs with the path)
    invite_token = _invitation_token(tenants)
    invite = reverse("invitation-accept", kwargs={"token": invite_token})
    anon = Client()
    assert anon.get(invite).status_code == 200
    assert anon.post(invite).status_code == 302  # to the login page, ?next= carrying the link
    charlie = tenants.client_for(tenants.charlie)
    assert charlie.post(invite).status_code == 302
    assert charlie.get(invite).status_code == 404

    # a password reset: the mailed link, and the view failing on it (a 500 with a traceback)
    assert Client().post(reverse("password_reset"), {"email": "alice@example.com"}).status_code == 302
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password/reset/" in line).strip()
    reset = "/" + link.split("://", 1)[1].split("/", 1)[1]
    reset_token = reset.strip("/").rsplit("/", 1)[1]
    assert Client().get(reset).status_code == 302

    from django.contrib.auth import views as auth_views

    def broken(self, request, *args, **kwargs):
        raise RuntimeError(f"broken while serving {request.path}")

    monkeypatch.setattr(auth_views.PasswordResetConfirmView, "dispatch", broken)
    assert Client(raise_request_exception=False).get(reset).status_code == 500

    # the development server's request lines (Django's runserver handler)
    handler = WSGIRequestHandler.__new__(WSGIRequestHandler)
    handler.request = None
    handler.log_message('"%s" %s %s', f"GET {invite} HTTP/1.1", "404", "1234")
    handler.log_message('"%s" %s %s', f"GET {reset} HTTP/1.1", "302", "0")

    captured = "\n".join(
        [console_log.getvalue(), caplog.text, *(r.getMessage() + (r.exc_text or "") for r in caplog.records)]
    )
    _assert_clean(captured, [invite_token, reset_token])
    # the lines are there, with the secrets replaced: the test saw the logs it means to check
    assert f"Not Found: /invite/{REDACTED}/" in console_log.getvalue()
    assert f"Internal Server Error: /password/reset/{REDACTED}/{REDACTED}/" in console_log.getvalue()
    assert f"broken while serving /password/reset/{REDACTED}/{REDACTED}/" in console_log.getvalue()  # traceback
    assert f'"GET /invite/{REDACTED}/ HTTP/1.1" 404' in caplog.text
    assert f'"GET /password/reset/{REDACTED}/{REDACTED}/ HTTP/1.1" 302' in console_log.getvalue()


# --- gunicorn --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s path=%(U)s query=%(q)s referer="%(f)s" location="%({location}o)s"'


@pytest.fixture
def gunicorn_server(transactional_db, tmp_path):
    """gunicorn on this run's test database, with the redacting logger class and an access log
    that shows every atom a token can hide in."""
    port = _free_port()
    output = open(tmp_path / "output.log", "wb")
    proc = subprocess.Popen(
        [
            PYTHON, "-m", "gunicorn", "mediarouter.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--logger-class", "mediarouter.logging.GunicornLogger",
            "--access-logfile", str(tmp_path / "access.log"), "--access-logformat", ACCESS_FORMAT,
            "--error-logfile", str(tmp_path / "error.log"),
        ],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/healthz", timeout=5)
                break
            except requests.RequestException:
                if proc.poll() is not None:
                    break
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "error.log").read_text())
        assert proc.poll() is None, (tmp_path / "error.log").read_text()
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        output.close()


@pytest.mark.integration
def test_gunicorn_logs_carry_no_invitation_or_reset_token(tenants, gunicorn_server, tmp_path):
    invite_token = _invitation_token(tenants)
    uid, reset_token = _reset_parts(tenants.alice)
    invite = reverse("invitation-accept", kwargs={"token": invite_token})
    reset = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": reset_token})
    unknown = reverse("invitation-accept", kwargs={"token": "unknown-" + invite_token[:20]})
    http = requests.Session()
    # the invitation page, reached from a page whose address holds the reset link (the referer)
    r = http.get(gunicorn_server + invite, headers={"Referer": gunicorn_server + reset}, timeout=10)
    assert r.status_code == 200 and "Join Alice Films" in r.text
    r = http.get(gunicorn_server + reset, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].endswith("/set-password/")
    r = http.get(gunicorn_server + reverse("login") + f"?next={quote(invite, safe='')}", timeout=10)
    assert r.status_code == 200
    assert http.get(gunicorn_server + unknown, timeout=10).status_code == 404  # Django logs "Not Found: …"
    # the worker writes its access log as each request ends; give it a moment to flush
    deadline, lines = time.monotonic() + 10, []
    while time.monotonic() < deadline and len(lines) < 4:
        access = (tmp_path / "access.log").read_text()
        lines = [line for line in access.splitlines() if "/healthz" not in line]
        time.sleep(0.1)
    logs = access + (tmp_path / "error.log").read_text() + (tmp_path / "output.log").read_text()
    _assert_clean(logs, [invite_token, reset_token, "unknown-" + invite_token[:20]])
    assert len(lines) == 4, access
    assert f'"GET /invite/{REDACTED}/ HTTP/1.1" 200' in lines[0]
    assert f'referer="{gunicorn_server}/password/reset/{REDACTED}/{REDACTED}/"' in lines[0]
    assert f"path=/password/reset/{REDACTED}/{REDACTED}/" in lines[1]
    assert f'location="/password/reset/{REDACTED}/set-password/"' in lines[1]
    assert f"query=next=%2Finvite%2F{REDACTED}" in lines[2]
    assert f"Not Found: /invite/{REDACTED}/" in logs  # Django's request log in the worker process
