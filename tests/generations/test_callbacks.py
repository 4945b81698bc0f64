"""Provider callbacks in (``POST /hooks/providers/<slug>/<token>``, apps/generations/callbacks.py).

In-process: the token is stored only as its digest; callbacks are requested only with a public
URL; a genuine delivery schedules one immediate status read and nothing else; forged, stale,
replayed, wrong-slug and unknown-token deliveries change nothing (401/404) and their bodies never
reach the log; MiniMax's challenge is echoed; a callback that beats the submit's answer makes the
accept step poll at once; Replicate's signing secret is fetched once and kept encrypted.

Live (a real worker with beat, the fal and Replicate emulators pushing signed webhooks to
``live_server``): jobs complete within seconds although the poll interval is a minute, with one
to three status reads."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.api_keys import crypto
from apps.api_keys import services as key_services
from apps.api_keys.models import ProviderKey
from apps.core.scoping import org_scope
from apps.generations import callbacks, engine
from apps.generations.models import Generation, GenerationEvent, State
from apps.providers import registry
from apps.providers.base import Credentials, GenerationSpec
from tests.emulators.fal import FalEmulator
from tests.emulators.kling import KlingEmulator
from tests.emulators.replicate import ReplicateEmulator

BP = Credentials(api_key="bp-key-000000")
BODY_MARKER = "secret-prompt-marker-7f3a"  # put into refused bodies: it must never reach a log


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def scheduled(monkeypatch):
    """Record the steps the engine would send, instead of sending them."""
    calls: list[tuple[str, int, float]] = []
    monkeypatch.setattr(engine, "schedule", lambda step, gen, delay: calls.append((step, gen.pk, delay)))
    return calls


def _key(tenants, provider: str, fields: dict, secret: str = "") -> ProviderKey:
    return ProviderKey.all_orgs.create(
        organization=tenants.org_a,
        public_id=f"key_cb{provider}{int(time.monotonic_ns()) % 10**12}",
        provider=provider,
        ciphertext=crypto.encrypt(json.dumps(fields)),
        last4="test",
        callback_secret_ciphertext=crypto.encrypt(secret) if secret else "",
        created_by=tenants.alice,
    )


def _gen(tenants, provider: str, key: ProviderKey | None, *, job_id: str = "job-1", state: str = State.IN_PROGRESS):
    """A generation waiting at ``provider`` with a callback URL; returns (generation, token)."""
    token = "tok-" + hashlib.sha256(f"{provider}{job_id}{time.monotonic_ns()}".encode()).hexdigest()[:40]
    gen = Generation.all_orgs.create(
        organization=tenants.org_a,
        public_id=f"video_cb{hashlib.sha256(token.encode()).hexdigest()[:20]}",
        user=tenants.alice,
        provider=provider,
        model="seedance-2.0",
        prompt="a lighthouse",
        seconds=5,
        size="1280x720",
        state=state,
        provider_key=key,
        provider_job_id=job_id if state != State.SUBMITTING else "",
        deadline_at=timezone.now() + timedelta(hours=1),
        next_poll_at=timezone.now() + timedelta(seconds=60),
        estimated_cost=Decimal("1.0000"),
        callback_digest=callbacks.token_digest(token),
    )
    return gen, token


def _post(client, slug: str, token: str, body: bytes, headers: dict | None = None):
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items() if k != "Content-Type"}
    return client.post(f"/hooks/providers/{slug}/{token}", body, content_type="application/json", **extra)


@pytest.fixture
def fal(settings):
    with FalEmulator(job_seconds=1.0) as emu:
        for name, value in emu.settings().items():
            setattr(settings, name, value)
        yield emu


@pytest.fixture
def replicate(settings):
    with ReplicateEmulator(job_seconds=1.0, auto_deliver=False) as emu:
        for name, value in emu.settings().items():
            setattr(settings, name, value)
        yield emu


def _fal_body(job_id: str) -> bytes:
    return json.dumps({"request_id": job_id, "status": "OK", "payload": {"prompt": BODY_MARKER}}).encode()


def _state(gen) -> tuple[str, int]:
    row = Generation.all_orgs.values("state", "poll_count").get(pk=gen.pk)
    return row["state"], row["poll_count"]


# --- requesting callbacks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "site", "expected"),
    [
        ("http://127.0.0.1:8123/", "http://127.0.0.1:8000", "http://127.0.0.1:8123"),  # used as given
        ("", "http://127.0.0.1:8000", None),  # the embedded default polls
        ("", "http://mr.example.com", None),  # not https
        ("", "https://localhost:8443", None),
        ("", "https://10.1.2.3", None),
        ("", "https://[::1]", None),
        ("", "https://169.254.169.254", None),
        ("", "https://mr.example.com", "https://mr.example.com"),
    ],
)
def test_the_callback_base_url_is_public_https_or_given(settings, configured, site, expected):
    settings.PROVIDER_CALLBACK_BASE_URL, settings.SITE_URL = configured, site
    assert callbacks.base_url() == expected


@pytest.mark.django_db
def test_the_token_is_stored_only_as_its_digest(tenants, settings):
    settings.PROVIDER_CALLBACK_BASE_URL = "https://hooks.example.com"
    gen, _ = _gen(tenants, "byteplus", _key(tenants, "byteplus", {"api_key": "bp-key-000000"}), state=State.SUBMITTING)
    Generation.all_orgs.filter(pk=gen.pk).update(callback_digest="")
    gen.callback_digest = ""
    adapter = registry.build("byteplus", BP)
    url = callbacks.request_callback(gen, adapter)
    prefix = "https://hooks.example.com/hooks/providers/byteplus/"
    assert url.startswith(prefix)
    token = url.removeprefix(prefix)
    assert len(token) >= 43
    stored = Generation.all_orgs.get(pk=gen.pk)
    assert stored.callback_digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in json.dumps(Generation.all_orgs.filter(pk=gen.pk).values().first(), default=str)
    # a second submit gets a new token; the old one stops working
    assert callbacks.request_callback(gen, adapter) != url
    assert Generation.all_orgs.get(pk=gen.pk).callback_digest != stored.callback_digest


@pytest.mark.django_db
def test_no_public_url_or_no_callbacks_means_polling(tenants, settings):
    settings.PROVIDER_CALLBACK_BASE_URL, settings.SITE_URL = "", "http://127.0.0.1:8000"
    gen, _ = _gen(tenants, "byteplus", None, state=State.SUBMITTING)
    assert callbacks.request_callback(gen, registry.build("byteplus", BP)) is None
    assert Generation.all_orgs.get(pk=gen.pk).callback_digest == ""  # a stale digest is cleared
    settings.PROVIDER_CALLBACK_BASE_URL = "https://hooks.example.com"
    assert registry.get_provider_class("runway").supports_callbacks is False
    assert callbacks.request_callback(gen, registry.build("runway", Credentials(api_key="rw-key-000000"))) is None


@pytest.mark.django_db
def test_the_poll_interval_stretches_only_when_callbacks_are_on(tenants, settings, scheduled):
    settings.PROVIDER_CALLBACK_POLL_SECONDS = 60
    with_cb, _ = _gen(tenants, "byteplus", None, state=State.SUBMITTING)
    without, _ = _gen(tenants, "byteplus", None, state=State.SUBMITTING)
    Generation.all_orgs.filter(pk=without.pk).update(callback_digest="")
    without.callback_digest = ""
    with org_scope(tenants.org_a):
        engine._accept_job(with_cb, "cgt-1", via="submitted")
        engine._accept_job(without, "cgt-2", via="submitted")
    assert scheduled == []  # no poll messages: next_poll_at is when the poll step takes each
    first = engine.poll_delay(0, None)
    assert first < 60
    with_cb.refresh_from_db()
    without.refresh_from_db()
    assert (with_cb.next_poll_at - with_cb.submitted_at).total_seconds() >= 60
    assert first <= (without.next_poll_at - without.submitted_at).total_seconds() < 60


@pytest.mark.django_db
def test_kling_sends_callback_url_and_reads_the_task_id(settings):
    with KlingEmulator(job_seconds=1.0) as emu:
        for name, value in emu.settings().items():
            setattr(settings, name, value)
        adapter = registry.build("kling", Credentials(**emu.key_fields()))
        spec = GenerationSpec(
            model="kling-v2-5-turbo",
            prompt="p",
            seconds=5,
            size="1280x720",
            callback_url="https://hooks.example.com/hooks/providers/kling/tok",
        )
        job_id = adapter.submit(spec)
        sent = json.loads(emu.last_requests["create"].body)
    assert sent["callback_url"] == "https://hooks.example.com/hooks/providers/kling/tok"
    assert adapter.supports_callbacks and adapter.callback_verification == "token"
    task_id = job_id.partition(":")[2]
    assert adapter.verify_callback(headers={}, body=json.dumps({"task_id": task_id}).encode()).job_id == task_id
    assert callbacks._same_job(job_id, task_id) and not callbacks._same_job(job_id, "other")


# --- the endpoint -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_genuine_fal_delivery_schedules_one_status_read(tenants, client, fal, scheduled):
    gen, token = _gen(tenants, "fal", _key(tenants, "fal", fal.key_fields()), job_id="req-genuine")
    body = _fal_body("req-genuine")
    r = _post(client, "fal", token, body, fal.signed("req-genuine", body))
    assert r.status_code == 200
    assert scheduled == [("poll", gen.pk, 0)]
    assert _state(gen) == (State.IN_PROGRESS, 0)  # nothing taken from the body
    # the same delivery again (a retry, a replay): no second read
    r = _post(client, "fal", token, body, fal.signed("req-genuine", body))
    assert r.status_code == 200 and scheduled == [("poll", gen.pk, 0)]
    assert GenerationEvent.all_orgs.filter(generation=gen, message__startswith=callbacks.NOTE).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["bad_signature", "stale", "unknown_key", "unsigned"])
def test_forged_or_stale_fal_deliveries_are_401_and_change_nothing(tenants, client, fal, scheduled, caplog, fault):
    gen, token = _gen(tenants, "fal", _key(tenants, "fal", fal.key_fields()), job_id="req-forged")
    body = _fal_body("req-forged")
    headers = {} if fault == "unsigned" else fal._spoiled(type("J", (), {"id": "req-forged"})(), body, fault)
    with caplog.at_level(logging.DEBUG):
        r = _post(client, "fal", token, body, headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature"
    assert scheduled == [] and _state(gen) == (State.IN_PROGRESS, 0)
    assert not GenerationEvent.all_orgs.filter(generation=gen).exists()
    assert "refused (401)" in caplog.text
    assert BODY_MARKER not in caplog.text and token not in caplog.text


@pytest.mark.django_db
def test_wrong_slug_unknown_token_and_get_are_refused(tenants, client, fal, scheduled, caplog):
    gen, token = _gen(tenants, "fal", _key(tenants, "fal", fal.key_fields()), job_id="req-slug")
    body = _fal_body("req-slug")
    headers = fal.signed("req-slug", body)
    with caplog.at_level(logging.DEBUG):
        assert _post(client, "replicate", token, body, headers).status_code == 404
        assert _post(client, "fal", token[:-1] + "x", body, headers).status_code == 404
        assert _post(client, "fal", "", body, headers).status_code == 404
    assert client.get(f"/hooks/providers/fal/{token}").status_code == 405
    assert scheduled == [] and _state(gen) == (State.IN_PROGRESS, 0)
    assert BODY_MARKER not in caplog.text and token not in caplog.text
    # another organization's generation is reached by its token only: charlie's client adds nothing
    charlie = tenants.client_for(tenants.charlie)
    assert _post(charlie, "fal", "tok-guess", body, headers).status_code == 404


@pytest.mark.django_db
def test_a_delivery_for_an_ended_or_another_job_reads_nothing(tenants, client, fal, scheduled):
    key = _key(tenants, "fal", fal.key_fields())
    done, token = _gen(tenants, "fal", key, job_id="req-done", state=State.COMPLETED)
    body = _fal_body("req-done")
    assert _post(client, "fal", token, body, fal.signed("req-done", body)).status_code == 200
    other, token2 = _gen(tenants, "fal", key, job_id="req-mine")
    body2 = _fal_body("req-theirs")
    assert _post(client, "fal", token2, body2, fal.signed("req-theirs", body2)).status_code == 200
    assert scheduled == []
    assert _state(done)[0] == State.COMPLETED and _state(other) == (State.IN_PROGRESS, 0)


@pytest.mark.django_db
def test_replicate_secret_is_fetched_once_and_kept_encrypted(tenants, replicate):
    key = _key(tenants, "replicate", replicate.key_fields())
    from apps.api_keys.services import provider_key_credentials

    adapter = registry.build("replicate", provider_key_credentials(key=key))
    assert key_services.provider_key_callback_secret(key=key) is None  # never fetched by a reader
    assert key_services.provider_key_callback_secret(key=key, adapter=adapter) == replicate.webhook_secret
    assert key_services.provider_key_callback_secret(key=key, adapter=adapter) == replicate.webhook_secret
    assert replicate.stats()["calls"].get("webhook_secret") == 1
    stored = ProviderKey.all_orgs.get(pk=key.pk).callback_secret_ciphertext
    assert stored and replicate.webhook_secret not in stored
    assert crypto.decrypt(stored) == replicate.webhook_secret


@pytest.mark.django_db
@pytest.mark.parametrize("tamper", ["", "bad_signature", "stale"])
def test_replicate_deliveries_are_checked_with_the_stored_secret(tenants, client, replicate, scheduled, caplog, tamper):
    key = _key(tenants, "replicate", replicate.key_fields(), secret=replicate.webhook_secret)
    gen, token = _gen(tenants, "replicate", key, job_id="pred-1")
    body = json.dumps({"id": "pred-1", "status": "succeeded", "input": {"prompt": BODY_MARKER}}).encode()
    if tamper:
        replicate.webhook_tamper.add(tamper)
    headers = replicate.sign_delivery(body)
    with caplog.at_level(logging.DEBUG):
        r = _post(client, "replicate", token, body, headers)
    if tamper:
        assert r.status_code == 401 and scheduled == []
        assert BODY_MARKER not in caplog.text
    else:
        assert r.status_code == 200 and scheduled == [("poll", gen.pk, 0)]
    assert _state(gen) == (State.IN_PROGRESS, 0)


@pytest.mark.django_db
def test_replicate_without_a_stored_secret_is_refused(tenants, client, replicate, scheduled):
    _, token = _gen(tenants, "replicate", _key(tenants, "replicate", replicate.key_fields()), job_id="pred-2")
    body = json.dumps({"id": "pred-2", "status": "succeeded"}).encode()
    assert _post(client, "replicate", token, body, replicate.sign_delivery(body)).status_code == 401
    assert scheduled == [] and replicate.stats()["calls"].get("webhook_secret") is None


@pytest.mark.django_db
def test_the_minimax_challenge_is_echoed_at_once(tenants, client, scheduled):
    gen, token = _gen(tenants, "minimax", _key(tenants, "minimax", {"api_key": "mm-key-0000000"}), job_id="123")
    started = time.monotonic()
    r = _post(client, "minimax", token, json.dumps({"challenge": "c-42"}).encode())
    assert r.status_code == 200 and r.json() == {"challenge": "c-42"}
    assert time.monotonic() - started < 3  # MiniMax's limit; not a benchmark, a contract
    assert scheduled == []
    r = _post(client, "minimax", token, json.dumps({"task_id": "123", "status": "success"}).encode())
    assert r.status_code == 200 and scheduled == [("poll", gen.pk, 0)]


@pytest.mark.django_db
def test_unsigned_byteplus_delivery_is_proved_by_the_token_only(tenants, client, scheduled):
    gen, token = _gen(tenants, "byteplus", _key(tenants, "byteplus", {"api_key": "bp-key-000000"}), job_id="cgt-7")
    assert _post(client, "byteplus", token, b"not json").status_code == 401
    assert _post(client, "byteplus", "x" * 43, json.dumps({"id": "cgt-7"}).encode()).status_code == 404
    assert scheduled == []
    body = json.dumps({"id": "cgt-7", "status": "succeeded", "content": {"video_url": "https://evil.example/x"}})
    assert _post(client, "byteplus", token, body.encode()).status_code == 200
    assert scheduled == [("poll", gen.pk, 0)]
    stored = Generation.all_orgs.get(pk=gen.pk)
    assert stored.output_url == "" and stored.state == State.IN_PROGRESS  # the body's URL is never used


@pytest.mark.django_db
def test_a_callback_before_the_submit_answer_makes_the_accept_step_poll_at_once(tenants, client, scheduled, settings):
    settings.PROVIDER_CALLBACK_POLL_SECONDS = 60
    gen, token = _gen(
        tenants, "byteplus", _key(tenants, "byteplus", {"api_key": "bp-key-000000"}), state=State.SUBMITTING
    )
    assert _post(client, "byteplus", token, json.dumps({"id": "cgt-early"}).encode()).status_code == 200
    assert scheduled == []  # nothing to read yet: no job id stored
    gen.refresh_from_db()
    with org_scope(tenants.org_a):
        engine._accept_job(gen, "cgt-early", via="submitted")
    assert scheduled == [("poll", gen.pk, 0)]
    assert Generation.all_orgs.get(pk=gen.pk).state == State.QUEUED


# --- live: a real worker, emulators pushing to live_server --------------------------------------


@pytest.fixture
def live_engine_env(live_server, settings):
    """The worker (and this process) ask for callbacks at ``live_server`` and poll once a minute;
    ``live_engine`` gives these tests a worker of their own with this environment."""
    env = {"PROVIDER_CALLBACK_BASE_URL": live_server.url, "PROVIDER_CALLBACK_POLL_SECONDS": "60"}
    settings.PROVIDER_CALLBACK_BASE_URL = live_server.url
    settings.PROVIDER_CALLBACK_POLL_SECONDS = 60.0
    return env


@pytest.fixture
def push_engine(live_engine, live_engine_env):
    """``live_engine`` whose worker asks for callbacks at ``live_server`` and polls once a minute."""
    return live_engine


def _create(tenants, model: str):
    client = tenants.api_client_for(tenants.alice_token)
    body = {"model": model, "prompt": "a lighthouse at dusk", "duration": 5, "size": "1280x720"}
    r = client.post("/v1/video/generations", body, content_type="application/json")
    assert r.status_code == 201, r.content
    return r.json()["id"]


@pytest.mark.integration
@pytest.mark.parametrize("supplier", ["fal", "replicate"])
def test_callbacks_complete_jobs_long_before_the_poll_interval(tenants, push_engine, live_server, supplier):
    video_id = _create(tenants, f"{supplier}/seedance-2.0")
    gen = push_engine.wait(video_id, timeout=30)  # the safety poll would come after 60 s
    assert gen.state == State.COMPLETED, (gen.error_code, gen.error_message)
    assert 1 <= gen.poll_count <= 3
    assert gen.callback_digest
    emulator = push_engine.emulators[supplier]
    if supplier == "fal":
        sent = emulator.sent_webhooks(1, request_id=gen.provider_job_id)
        assert sent and all(d["status"] == 200 for d in sent)
        assert sent[0]["url"].startswith(f"{live_server.url}/hooks/providers/fal/")
    else:
        assert emulator.webhook_answers and set(emulator.webhook_answers) == {200}
        assert ProviderKey.all_orgs.get(pk=gen.provider_key_id).callback_secret_ciphertext
        assert emulator.stats()["calls"].get("webhook_secret") == 1
    assert GenerationEvent.all_orgs.filter(generation=gen, message__startswith=callbacks.NOTE).exists()


@pytest.mark.integration
def test_duplicated_fal_webhook_completes_once(tenants, push_engine):
    from tests.generations.helpers import ledger_of

    push_engine.emulators["fal"].webhook_faults.append("duplicate")
    gen = push_engine.wait(_create(tenants, "fal/seedance-2.0"), timeout=30)
    assert gen.state == State.COMPLETED and 1 <= gen.poll_count <= 3
    log = push_engine.emulators["fal"].sent_webhooks(2, request_id=gen.provider_job_id)
    assert len(log) == 2 and {d["status"] for d in log} == {200}
    assert ledger_of(gen)["charge"] == [gen.estimated_cost]


@pytest.mark.integration
def test_a_forged_fal_webhook_changes_nothing(tenants, push_engine):
    fal_emu = push_engine.emulators["fal"]
    fal_emu.webhook_faults.append("bad_signature")
    video_id = _create(tenants, "fal/seedance-2.0")
    assert [d["status"] for d in fal_emu.sent_webhooks(1, timeout=20)] == [401]
    time.sleep(1.0)  # what a (wrongly) accepted delivery would have done by now
    gen = Generation.all_orgs.get(public_id=video_id)
    assert gen.state in (State.QUEUED, State.IN_PROGRESS) and gen.poll_count == 0


@pytest.mark.integration
def test_a_webhook_that_beats_the_submit_answer_still_completes_the_job(tenants, push_engine):
    fal_emu = push_engine.emulators["fal"]
    fal_emu.job_seconds = 0.1
    fal_emu.add_fault("submit", delay=1.5)  # the job is done (and pushed) before the answer arrives
    gen = push_engine.wait(_create(tenants, "fal/seedance-2.0"), timeout=30)
    assert gen.state == State.COMPLETED and 1 <= gen.poll_count <= 2
    events = list(GenerationEvent.all_orgs.filter(generation=gen).order_by("at", "id"))
    received = next(i for i, e in enumerate(events) if e.message.startswith(callbacks.NOTE))
    queued = next(i for i, e in enumerate(events) if e.to_state == State.QUEUED and e.from_state == State.SUBMITTING)
    assert events[received].from_state == State.SUBMITTING and received < queued


def test_the_callback_token_is_redacted_from_request_logs():
    from mediarouter.logging import redact

    line = 'POST /hooks/providers/fal/AbC_dEf-123456789 HTTP/1.1" 401 referer=%2Fhooks%2Fproviders%2Fkling%2Fxyz_-9'
    redacted = redact(line)
    assert "AbC_dEf-123456789" not in redacted and "xyz_-9" not in redacted
    assert "/hooks/providers/fal/[redacted]" in redacted
