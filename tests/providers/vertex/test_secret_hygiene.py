"""Secret hygiene for Vertex keys: the service account's private key never appears in an API
response body, a log record, ``ProviderKey.last_error`` or ``manage.py dumpdata``, even when Google
(here the emulator) echoes it back in its errors."""

from __future__ import annotations

import json
import logging
from io import StringIO

import pytest
from django.core.management import call_command

from apps.api_keys.models import KeyStatus, ProviderKey
from apps.core.scoping import scopes_disabled
from apps.generations.models import Generation
from tests.emulators.vertex import new_private_key, pem
from tests.generations.helpers import run_steps

pytestmark = pytest.mark.django_db


def needles(private_key: str) -> list[str]:
    """The private key, JSON-escaped, and every line of its base64 body."""
    lines = [line for line in private_key.splitlines() if len(line) >= 16 and "PRIVATE KEY" not in line]
    return [private_key, json.dumps(private_key)[1:-1], *lines]


def test_the_private_key_never_leaks(tenants, vertex_emulator, vertex_settings, caplog):
    caplog.set_level(logging.DEBUG)
    api = tenants.api_client_for(tenants.alice_token)
    fields = vertex_emulator.key_fields()
    private_key = json.loads(fields["service_account_json"])["private_key"]
    recorded: list[tuple[str, str]] = []

    def record(where, response):
        recorded.append((where, response.content.decode(errors="replace")))
        return response

    # stored through the API, validated against the emulator
    r = record("add", api.post("/v1/keys", {"provider": "vertex", **fields}, content_type="application/json"))
    assert r.status_code == 201 and r.json()["status"] == "valid", r.content
    key_id = r.json()["id"]

    # a key whose private key Google refuses, with an error that echoes it
    wrong_key = pem(new_private_key())
    wrong = vertex_emulator.account(private_key=wrong_key)
    vertex_emulator.add_fault(
        "token", status=400, body={"error": "invalid_grant", "error_description": f"bad key {wrong_key}"}
    )
    r = record(
        "refused",
        api.post(
            "/v1/keys",
            {"provider": "vertex", "service_account_json": json.dumps(wrong)},
            content_type="application/json",
        ),
    )
    assert r.status_code == 400 and "refused" in r.json()["error"]["message"]

    # a transient failure whose message echoes the key (whole, and one line of it)
    line = private_key.splitlines()[3]
    vertex_emulator.add_google_fault("fetch", 500, f"exploded on {private_key} near {line}")
    r = record("validate 500", api.post(f"/v1/keys/{key_id}/validate", {}, content_type="application/json"))
    assert r.status_code == 200 and "***" in r.json()["last_error"]

    # a generation refused with 401 twice (after one token refresh): the key is marked invalid
    vertex_emulator.add_google_fault("create", 401, f"who is {private_key}?", times=2)
    r = record(
        "generate",
        api.post(
            "/v1/video/generations",
            {"model": "vertex/veo-3.1", "prompt": "hygiene", "duration": 8, "size": "1280x720"},
            content_type="application/json",
        ),
    )
    assert r.status_code == 201, r.content
    gen = run_steps(Generation.all_orgs.get(public_id=r.json()["id"]))
    assert gen.state == "failed" and gen.error_code == "authentication_error"
    record("generation", api.get(f"/v1/video/generations/{gen.public_id}"))
    record("keys", api.get("/v1/keys"))

    with scopes_disabled():
        stored = ProviderKey.all_orgs.get(public_id=key_id)
        assert stored.status == KeyStatus.INVALID
        last_errors = list(ProviderKey.all_orgs.values_list("last_error", flat=True))
        dump = StringIO()
        call_command("dumpdata", stdout=dump)
    recorded += [("last_error", e) for e in last_errors]
    recorded += [("dumpdata", dump.getvalue()), ("logs", caplog.text), ("gen", gen.error_message)]
    assert any("***" in text for _where, text in recorded)  # the echoes were there, and scrubbed
    for secret in (*needles(private_key), *needles(wrong_key)):
        for where, text in recorded:
            assert secret not in text, f"the private key leaked into {where}"
