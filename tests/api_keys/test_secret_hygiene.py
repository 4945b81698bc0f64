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
    echo = f"upstream exploded while using {flow.secrets['sora']}"
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

    for name, secret in flow.secrets.items():
        leaks = [where for where, text in haystack if secret in text]
        assert not leaks, f"the {name} key leaked into: {leaks}"
