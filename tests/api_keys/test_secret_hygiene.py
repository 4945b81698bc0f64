"""Secret hygiene: record a whole flow with provider keys and prove the plaintext appears nowhere.

The flow adds keys through the API and the Settings page, validates them against the emulators,
makes the provider fail with errors that echo the key back, lists keys through the API and the
page, and opens the admin. Every response (body, headers, cookies), every exception, every log
record (root logger at DEBUG, SQL included) is recorded; at the end the database is scanned too
(every column of every ProviderKey row, the sessions, and a full ``dumpdata``).

Adding a step: write ``def step_<name>(flow: Flow) -> None`` and append it to ``STEPS`` (for
example the engine's "generate a video with the key" step). Record what it produces with
``flow.response(...)``, ``flow.exception(...)`` or ``flow.text(...)``.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Membership
from apps.api_keys import services
from apps.api_keys.models import KeyStatus, ProviderKey
from apps.core.errors import ApplicationError
from apps.core.scoping import org_scope, scopes_disabled
from tests.emulators.fixtures import KlingTestEmulator, OpenAITestEmulator

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@dataclass
class Flow:
    tenants: object
    sora: OpenAITestEmulator
    kling: KlingTestEmulator
    staff: object
    secrets: dict[str, str]  # what must never leak, by name
    recorded: list[tuple[str, str]] = field(default_factory=list)
    key_ids: list[str] = field(default_factory=list)

    # --- recording ----------------------------------------------------------------------------

    def text(self, where: str, text: str) -> None:
        self.recorded.append((where, text))

    def response(self, where: str, response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.items())
        self.text(
            where, f"{response.status_code}\n{headers}\n{response.cookies}\n{response.content.decode(errors='replace')}"
        )

    def exception(self, where: str, exc: BaseException) -> None:
        self.text(where, f"{exc}\n{exc!r}\n{getattr(exc, 'message', '')}\n" + "".join(traceback.format_exception(exc)))

    # --- helpers ------------------------------------------------------------------------------

    @property
    def alice_api(self):
        return self.tenants.api_client_for(self.tenants.alice_token)

    @property
    def alice_page(self):
        return self.tenants.client_for(self.tenants.alice)

    def page_url(self, suffix: str) -> str:
        return f"/o/{self.tenants.org_a.slug}/settings/{suffix}"

    def api_post(self, where: str, url: str, data=None):
        r = self.alice_api.post(url, data or {}, content_type="application/json")
        self.response(where, r)
        return r

    def page_post(self, where: str, url: str, data=None, *, htmx: bool = False):
        client = self.alice_page
        r = client.post(url, data or {}, headers=HX if htmx else {})
        self.response(where, r)
        if r.status_code == 302:
            self.response(where + " (after redirect)", client.get(r["Location"]))
        return r


# --- the steps ------------------------------------------------------------------------------


def step_add_via_api(flow: Flow) -> None:
    r = flow.api_post("API add sora", "/v1/keys", {"provider": "sora", "api_key": flow.secrets["sora"], "label": "api"})
    assert r.status_code == 201 and r.json()["status"] == "valid"
    flow.key_ids.append(r.json()["id"])
    r = flow.api_post(
        "API add kling pair",
        "/v1/keys",
        {"provider": "kling", "access_key": flow.secrets["kling_access"], "secret_key": flow.secrets["kling_secret"]},
    )
    assert r.status_code == 201 and r.json()["status"] == "valid"
    flow.key_ids.append(r.json()["id"])


def step_add_via_page(flow: Flow) -> None:
    r = flow.page_post(
        "page add sora", flow.page_url("keys/add/"), {"provider": "sora", "api_key": flow.secrets["sora"]}
    )
    assert r.status_code == 302
    r = flow.page_post(
        "page add kling (htmx)",
        flow.page_url("keys/add/"),
        {"provider": "kling", "access_key": flow.secrets["kling_access"], "secret_key": flow.secrets["kling_secret"]},
        htmx=True,
    )
    assert r.status_code == 200


def step_refused_keys(flow: Flow) -> None:
    """A wrong key is refused everywhere, and the provider's echo of it is scrubbed."""
    wrong = {"provider": "sora", "api_key": flow.secrets["refused"]}
    assert flow.api_post("API add refused", "/v1/keys", wrong).status_code == 400
    assert flow.page_post("page add refused", flow.page_url("keys/add/"), wrong).status_code == 422
    assert flow.page_post("page add refused (htmx)", flow.page_url("keys/add/"), wrong, htmx=True).status_code == 422
    with org_scope(flow.tenants.org_a):
        alice = Membership.objects.get(user=flow.tenants.alice)
        with pytest.raises(ApplicationError) as info:
            services.provider_key_create(by=alice, **wrong)
    flow.exception("service add refused", info.value)


def step_validate(flow: Flow) -> None:
    for key_id in flow.key_ids:
        r = flow.api_post("API validate", f"/v1/keys/{key_id}/validate")
        assert r.status_code == 200 and r.json()["status"] == "valid"
        r = flow.page_post("page validate", flow.page_url(f"keys/{key_id}/validate/"), htmx=True)
        assert r.status_code == 200


def step_provider_fails_echoing_the_key(flow: Flow) -> None:
    sora_key, kling_key = flow.key_ids
    # a transient failure whose body echoes the key
    import base64
    from urllib.parse import quote

    sora = flow.secrets["sora"]
    basic = base64.b64encode(f"u:{sora}".encode()).decode()
    echo = f"upstream exploded while using {sora} (Basic {basic}, ?key={quote(sora + '/x', safe='')})"
    flow.sora.add_fault(endpoint="list", status=500, body={"error": {"message": echo}})
    r = flow.api_post("API validate (500 echo)", f"/v1/keys/{sora_key}/validate")
    assert r.status_code == 200 and "***" in r.json()["last_error"]
    flow.kling.add_fault(
        endpoint="list",
        status=500,
        body={"code": 5000, "message": f"bad {flow.secrets['kling_access']} / {flow.secrets['kling_secret']}"},
    )
    r = flow.page_post("page validate kling (500 echo)", flow.page_url(f"keys/{kling_key}/validate/"), htmx=True)
    assert r.status_code == 200
    # the provider revokes the key: its 401 echoes it back (like a careless gateway)
    flow.sora.api_key = "fake-key-the-provider-now-wants-another-key"
    r = flow.page_post("page validate (401 echo)", flow.page_url(f"keys/{sora_key}/validate/"))
    assert r.status_code == 302
    assert ProviderKey.all_orgs.get(public_id=sora_key).status == KeyStatus.INVALID
    # the engine reports an auth failure whose message echoes the key
    key = ProviderKey.all_orgs.get(public_id=kling_key)
    services.provider_key_mark_invalid(key=key, error=f"Kling said: {flow.secrets['kling_secret']} is invalid")


def step_generate_and_fail(flow: Flow) -> None:
    """Generate with the Kling key through the API; the provider refuses it with a message that
    echoes the key. The engine marks the key invalid and fails the job: no trace of the key."""
    from apps.generations.models import Generation, GenerationEvent
    from tests.generations.helpers import run_steps

    flow.kling.add_fault(
        endpoint="create",
        status=401,
        body={
            "code": 1004,
            "message": f"signature invalid for {flow.secrets['kling_access']}:{flow.secrets['kling_secret']}",
        },
    )
    r = flow.api_post(
        "API generate (kling)",
        "/v1/video/generations",
        {"model": "kling-v1-6", "prompt": "hygiene", "duration": 5, "size": "1280x720"},
    )
    assert r.status_code == 201, r.content
    gen = run_steps(Generation.all_orgs.get(public_id=r.json()["id"]))
    assert gen.state == "failed" and gen.error_code == "authentication_error"
    assert ProviderKey.all_orgs.get(public_id=flow.key_ids[1]).status == KeyStatus.INVALID  # Settings shows it
    flow.response("API generation detail", flow.alice_api.get(f"/v1/video/generations/{gen.public_id}"))
    for event in GenerationEvent.all_orgs.filter(generation=gen):
        flow.text("generation event", event.message)
    flow.text("generation error", f"{gen.error_code} {gen.error_message}")
    flow.response("admin generation", flow.staff.get(f"/admin/generations/generation/{gen.pk}/change/"))


def step_list(flow: Flow) -> None:
    r = flow.alice_api.get("/v1/keys")
    flow.response("API list", r)
    assert len(r.json()["data"]) == 4
    flow.response("page list", flow.alice_page.get(flow.page_url("keys/")))
    flow.response("page list (bob)", flow.tenants.client_for(flow.tenants.bob).get(flow.page_url("keys/")))


def step_admin(flow: Flow) -> None:
    flow.response("admin list", flow.staff.get("/admin/api_keys/providerkey/"))
    for key in ProviderKey.all_orgs.all():
        flow.response("admin change", flow.staff.get(f"/admin/api_keys/providerkey/{key.pk}/change/"))


STEPS: list[Callable[[Flow], None]] = [
    step_add_via_api,
    step_add_via_page,
    step_refused_keys,
    step_validate,
    step_generate_and_fail,
    step_provider_fails_echoing_the_key,
    step_list,
    step_admin,
]


# --- the test -------------------------------------------------------------------------------


@pytest.fixture
def hygiene_secrets() -> dict[str, str]:
    return {
        "sora": f"sk-hygiene-sora-{secrets.token_hex(16)}",
        "kling_access": f"ak-hygiene-{secrets.token_hex(16)}",
        "kling_secret": f"sk-hygiene-kling-{secrets.token_hex(16)}",
        "refused": f"sk-hygiene-refused-{secrets.token_hex(16)}",
    }


@pytest.fixture
def flow(tenants, hygiene_secrets, settings, django_user_model):
    staff = tenants.client_for(django_user_model.objects.create_superuser("ops@example.com", "pw"))
    with (
        OpenAITestEmulator(api_key=hygiene_secrets["sora"], job_seconds=1.0) as sora,
        KlingTestEmulator(
            access_key=hygiene_secrets["kling_access"], secret_key=hygiene_secrets["kling_secret"], job_seconds=1.0
        ) as kling,
    ):
        settings.SORA_BASE_URL = sora.base_url
        settings.KLING_BASE_URL = kling.base_url
        yield Flow(tenants=tenants, sora=sora, kling=kling, staff=staff, secrets=hygiene_secrets)


def _database_texts() -> list[tuple[str, str]]:
    texts = []
    for row in ProviderKey.all_orgs.values():
        for column, value in row.items():
            if isinstance(value, str):
                texts.append((f"ProviderKey.{column} of {row['public_id']}", value))
    for session in Session.objects.all():
        texts.append(("session", repr(SessionStore().decode(session.session_data))))
    dump = StringIO()
    with scopes_disabled():
        call_command("dumpdata", stdout=dump)
    texts.append(("dumpdata", dump.getvalue()))
    return texts


def test_the_plaintext_key_appears_nowhere(flow, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    with CaptureQueriesContext(connection) as queries:  # also logs every SQL statement at DEBUG
        for step in STEPS:
            step(flow)

    assert len(flow.key_ids) == 2 and ProviderKey.all_orgs.count() == 4
    haystack = list(flow.recorded)
    haystack += _database_texts()
    haystack += [("SQL", f"{q['sql']}") for q in queries.captured_queries]
    haystack.append(("log text", caplog.text))
    for record in caplog.records:
        haystack.append((f"log {record.name}", f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"))
    assert any("provider key added" in text for _, text in haystack)  # the logs were captured
    assert any("api_keys_providerkey" in text for _, text in haystack)  # and the SQL

    assert_nowhere(haystack, flow.secrets)  # as is, and base64- or URL-encoded


# --- every store: encoded forms, Django's error reports, the real worker, broker, cache ---------


def encoded_forms(secret: str) -> dict[str, str]:
    """How a secret may appear: as is, URL-encoded (``quote``/``quote_plus``), JSON-escaped, and
    base64 (standard and URL-safe) at each of the three alignments it can take inside a longer
    encoded text (its stable middle: the characters that depend on the secret's bytes only)."""
    import base64
    import json
    from urllib.parse import quote, quote_plus

    forms = {
        "plain": secret,
        "url": quote(secret, safe=""),
        "url+": quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
    }
    for pad in range(3):
        for name, encode in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
            text = encode(b"x" * pad + secret.encode()).decode()
            forms[f"{name}@{pad}"] = text[4 if pad else 0 : -4]
    assert all(len(form) >= 16 for form in forms.values()), forms
    return forms


def assert_nowhere(haystack: list[tuple[str, str]], named_secrets: dict[str, str]) -> None:
    for name, secret in named_secrets.items():
        for form_name, form in encoded_forms(secret).items():
            leaks = [where for where, text in haystack if form in text]
            assert not leaks, f"the {name} secret ({form_name}) leaked into: {leaks}"


def test_encoded_forms_are_found():
    """The scan itself: a secret echoed base64-encoded (at any alignment) or URL-encoded is caught."""
    import base64
    from urllib.parse import quote

    secret = "fal-id-1234:fal-secret-" + secrets.token_hex(12)
    for pad in ("", "a", "ab"):
        echoed = "Bearer " + base64.b64encode((pad + secret + "!").encode()).decode()
        with pytest.raises(AssertionError, match="b64"):
            assert_nowhere([("echo", echoed)], {"fal": secret})
    with pytest.raises(AssertionError, match="url"):
        assert_nowhere([("echo", f"?key={quote(secret, safe='')}")], {"fal": secret})
    assert_nowhere([("clean", "nothing to see " + secret[:10])], {"fal": secret})


def _service_account(private_key_pem: str) -> str:
    import json

    return json.dumps(
        {
            "type": "service_account",
            "project_id": "hygiene-project",
            "private_key_id": secrets.token_hex(20),
            "private_key": private_key_pem,
            "client_email": "veo@hygiene-project.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


@pytest.fixture
def new_credentials() -> tuple[dict[str, dict], dict[str, str]]:
    """Keys in the newer credential shapes: (the fields per provider, the secrets to look for)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from apps.providers.minimax.adapter import CN_HOST

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    body_lines = [line for line in pem.splitlines() if not line.startswith("-----")]
    fal_id, fal_secret = f"fal-id-{secrets.token_hex(8)}", f"fal-secret-{secrets.token_hex(16)}"
    minimax = f"mm-hygiene-{secrets.token_hex(16)}"
    account = _service_account(pem)
    fields = {
        "fal": {"provider": "fal", "api_key": f"{fal_id}:{fal_secret}"},
        "minimax": {"provider": "minimax", "api_key": minimax, "region": CN_HOST},
        "vertex": {"provider": "vertex", "service_account_json": account},
    }
    to_find = {
        "fal key": f"{fal_id}:{fal_secret}",
        "fal secret half": fal_secret,
        "minimax region key": minimax,
        # the private key: each line of its PEM body, and the whole PEM as the JSON file holds it
        **{f"vertex private_key line {i}": line for i, line in enumerate(body_lines[1:-1:6])},
        "vertex private_key (JSON-escaped)": __import__("json").dumps(pem)[1:40],
    }
    return fields, to_find


CRASH = "the database went away while adding a key"


@pytest.mark.parametrize("via", ["api", "page", "page-htmx"])
@pytest.mark.parametrize("provider", ["fal", "minimax", "vertex"])
def test_a_crash_while_adding_a_key_leaves_no_secret_in_the_error_report(
    tenants, settings, monkeypatch, caplog, new_credentials, provider, via
):
    """An unexpected exception inside provider_key_create (after the key was checked): the 500
    page, the log record and the technical report Django builds for the admins
    (``ExceptionReporter`` with DEBUG off, as AdminEmailHandler sends it) carry none of the key:
    ``sensitive_post_parameters`` hides the form fields, ``sensitive_variables`` the frames."""
    import sys

    from django.core.signals import got_request_exception
    from django.test import Client
    from django.views.debug import ExceptionReporter

    fields, to_find = new_credentials
    settings.DEBUG = False
    monkeypatch.setattr(services, "_check", lambda slug, credentials: services._Check(status=KeyStatus.VALID))

    def crash(org):
        raise RuntimeError(CRASH)

    monkeypatch.setattr(services, "_lock_org", crash)
    reports: list[tuple[str, str]] = []

    def report(sender, request, **kwargs):
        exc_type, exc, tb = sys.exc_info()
        reporter = ExceptionReporter(request, exc_type, exc, tb)
        reports.append(("technical 500 (text)", reporter.get_traceback_text()))
        reports.append(("technical 500 (html)", reporter.get_traceback_html()))

    got_request_exception.connect(report)
    caplog.set_level(logging.DEBUG)
    try:
        if via == "api":
            client = Client(headers={"Authorization": f"Bearer {tenants.alice_token}"}, raise_request_exception=False)
            r = client.post("/v1/keys", fields[provider], content_type="application/json")
        else:
            client = Client(raise_request_exception=False)
            client.force_login(tenants.alice)
            headers = HX if via == "page-htmx" else {}
            r = client.post(f"/o/{tenants.org_a.slug}/settings/keys/add/", fields[provider], headers=headers)
    finally:
        got_request_exception.disconnect(report)
    assert r.status_code == 500
    assert len(reports) == 2, "the crash did not reach Django's error handling"
    text = reports[0][1]
    assert CRASH in text and "provider_key_create" in text  # the report is the crash's
    assert "********************" in text  # and it hid something: the sensitive values
    haystack = [*reports, ("500 response", r.content.decode(errors="replace")), ("log", caplog.text)]
    haystack += [(f"log {rec.name}", f"{rec.getMessage()} {rec.exc_text or ''}") for rec in caplog.records]
    assert not ProviderKey.all_orgs.exists()
    assert_nowhere(haystack, to_find)


def _snapshot_folder(folder, seen: dict[str, str]) -> None:
    from pathlib import Path

    for path in Path(folder).rglob("*"):
        if path.is_file():
            try:
                seen[str(path)] = path.read_bytes().decode(errors="replace")
            except OSError:
                pass  # consumed (deleted) between the listing and the read


@pytest.mark.integration
def test_the_real_worker_log_broker_messages_and_cache_hold_no_key(tenants, live_engine, settings):
    """A job through the real worker with each keyed emulator; the providers fail first with an
    error that echoes the key back. The worker's log, every broker message seen while it ran (the
    embedded broker's folder, polled; on Redis the broker's keys), the result store and the file
    cache hold none of the keys, in any encoding."""
    import threading

    from apps.generations.models import GenerationEvent

    emulators = live_engine.emulators
    named = {}
    for slug, emulator in emulators.items():
        for field_name, value in emulator.key_fields().items():
            if len(value) >= 16:
                named[f"{slug} {field_name}"] = value
    assert len(named) >= 3, named
    runway = emulators["runway"]
    # Runway echoes its own key: as is, base64-encoded and URL-encoded
    import base64
    from urllib.parse import quote

    own = runway.key_fields()["api_key"]
    echo = f"{own} / Basic {base64.b64encode(f'user:{own}'.encode()).decode()} / ?k={quote(own, safe='')}"
    runway.add_fault(endpoint="create", status=500, body={"error": f"upstream broke near {echo}"}, times=1)
    runway.add_fault(endpoint="task", status=503, body={"error": f"still broken {echo}"}, times=1)

    seen: dict[str, str] = {}
    embedded = settings.CELERY_BROKER_URL == "mrfs://"
    broker_dir = settings.VAR_DIR / "broker"
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            if embedded:
                _snapshot_folder(broker_dir, seen)
            stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        r = tenants.api_client_for(tenants.alice_token).post(
            "/v1/video/generations",
            {"model": "runway/gen4.5", "prompt": "hygiene through the worker", "duration": 5},
            content_type="application/json",
        )
        assert r.status_code == 201, r.content
        gen = live_engine.wait(r.json()["id"], timeout=90)
    finally:
        stop.set()
        watcher.join()
    assert gen.state == "completed", (gen.error_code, gen.error_message)
    assert runway.stats()["faults_pending"] == 0  # the echoing errors were served and survived
    log = live_engine.worker.log()
    assert gen.public_id in log or "generations." in log  # the worker logged this job's steps

    haystack = [
        ("worker log", log),
        *[
            ("generation event", m)
            for m in GenerationEvent.all_orgs.filter(generation=gen).values_list("message", flat=True)
        ],
    ]
    if embedded:
        _snapshot_folder(broker_dir, seen)
        assert any("generation_id" in text for text in seen.values()), "no broker message was seen"
        haystack += [(f"broker {path}", text) for path, text in seen.items()]
    else:
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            value = {"string": lambda k: client.get(k), "list": lambda k: b" ".join(client.lrange(k, 0, -1))}.get(
                kind, lambda k: b""
            )(key)
            haystack.append((f"redis {key!r}", (value or b"").decode(errors="replace")))
    cache = settings.CACHES["default"]
    if cache["BACKEND"].endswith("FileBasedCache"):
        files: dict[str, str] = {}
        _snapshot_folder(cache["LOCATION"], files)
        haystack += [(f"cache {path}", text) for path, text in files.items()]
    assert_nowhere(haystack, named)
