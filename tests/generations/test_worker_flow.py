"""The whole flow through a real Celery worker (and beat) against each provider's emulator:
the native API → submit → polls → download into storage → charge. Then with faults at every
step, and with the worker killed between submit and poll. Each ends completed or cleanly failed,
with exactly one provider job, exactly one stored video, and every hold settled or released."""

from __future__ import annotations

import base64
import hashlib

import pytest
from django.core.files.storage import default_storage

from apps.billing.models import UsageEntry
from apps.generations.models import State
from apps.providers import catalog, registry
from tests.emulators import emulator_class
from tests.emulators.base import sample_image, sample_mp4
from tests.generations.helpers import assert_ledger_balanced

pytestmark = [pytest.mark.integration]

IMAGE = "data:image/png;base64," + base64.b64encode(sample_image("PNG")).decode()


def _create(tenants, token=None, **body):
    client = tenants.api_client_for(token or tenants.alice_token)
    r = client.post("/v1/video/generations", body, content_type="application/json")
    assert r.status_code == 201, r.content
    return r.json()["id"]


def _assert_stored(gen, expected: bytes | None = None):
    assert gen.state == State.COMPLETED, (gen.state, gen.error_code, gen.error_message)
    with default_storage.open(gen.video_file, "rb") as fh:
        data = fh.read()
    if expected is not None:
        assert data == expected
    assert hashlib.sha256(data).hexdigest() == gen.sha256 and len(data) == gen.bytes
    folder, _ = gen.video_file.rsplit("/", 1)
    assert [n for n in default_storage.listdir(folder)[1] if n.startswith(gen.public_id)] == [f"{gen.public_id}.mp4"]


def _cases() -> dict[str, dict]:
    """Text and image to video on every provider with an emulator (the registry's slugs), with the
    first of its emulator's live models that can do each; plus an aspect-ratio request."""
    cases = {}
    for slug in registry.PROVIDERS:
        emulator = emulator_class(slug)
        if emulator is None:
            continue
        models = [catalog.get_model(f"{slug}/{m}") for m in emulator.live_models]
        for kind, capability, extra in (
            ("t2v", catalog.TEXT_TO_VIDEO, {}),
            ("i2v", catalog.IMAGE_TO_VIDEO, {"image": IMAGE}),
        ):
            model = next((m for m in models if capability in m.capabilities), None)
            if model is None:
                continue
            sizes = model.allowed_sizes(has_image=bool(extra))
            size = model.default_size if model.default_size in sizes else sizes[0]
            cases[f"{slug}-{kind}"] = dict(
                model=model.qualified_id,
                prompt=f"a {kind} clip",
                duration=model.default_seconds,
                size=size,
                **extra,
            )
    cases["runway-ratio"] = dict(model="runway/gen4.5", prompt="city at night", duration=5, aspect_ratio="16:9")
    return cases


def test_every_provider_text_and_image_to_video(tenants, live_engine):
    cases = _cases()
    ids = {name: _create(tenants, token=tenants.bob_token, **body) for name, body in cases.items()}
    for name, public_id in ids.items():
        gen = live_engine.wait(public_id)
        _assert_stored(gen, sample_mp4())
        assert_ledger_balanced(gen)
        charge = UsageEntry.all_orgs.get(generation=gen, kind="charge")
        assert charge.user == tenants.bob and charge.amount == gen.estimated_cost > 0, name
    for provider, emulator in live_engine.emulators.items():
        expected = sum(1 for name in cases if name.startswith(f"{provider}-"))
        assert emulator.stats()["jobs_created"] == expected, provider
    # the stored copy is what the API hands out, to the member's organization only
    r = tenants.api_client_for(tenants.alice_token).get(f"/v1/video/generations/{ids['kling-t2v']}/content")
    assert r.status_code == 200 and b"".join(r.streaming_content) == sample_mp4()
    r = tenants.api_client_for(tenants.charlie_token).get(f"/v1/video/generations/{ids['kling-t2v']}/content")
    assert r.status_code == 404


def test_faults_at_every_step_end_cleanly(tenants, live_engine):
    sora, runway, kling = (live_engine.emulators[k] for k in ("sora", "runway", "kling"))
    sora.add_fault("create", status=500)  # submit 500: retried
    sora.add_fault("content", truncate=2000)  # download broken mid-stream: retried
    runway.add_fault("task", status=429, headers={"Retry-After": "1"})  # poll 429
    runway.add_fault("task", status=500)  # poll 500
    runway.add_fault("task", malformed=True)  # poll garbage
    kling.add_fault("create", delay=3.0)  # submit times out (read timeout 2 s): reconciled by reference

    ids = {
        "sora": _create(tenants, model="sora-2", prompt="fault drill", duration=4, size="1280x720"),
        "runway": _create(tenants, model="gen4.5", prompt="fault drill", duration=5, size="1280x720"),
        "kling": _create(tenants, model="kling-v1-6", prompt="fault drill", duration=5, size="1280x720"),
    }
    for provider, public_id in ids.items():
        gen = live_engine.wait(public_id, timeout=90)
        _assert_stored(gen, sample_mp4())
        assert_ledger_balanced(gen)
        assert live_engine.emulators[provider].stats()["jobs_created"] == 1, provider
    sora_gen = live_engine.wait(ids["sora"])
    assert sora_gen.download_attempts == 2 and sora_gen.submit_attempts == 2
    kling_gen = live_engine.wait(ids["kling"])
    assert kling_gen.submit_attempts == 1  # found by external_task_id, never sent twice


def test_permanent_and_uncertain_failures_cost_nothing(tenants, live_engine):
    sora, kling = live_engine.emulators["sora"], live_engine.emulators["kling"]
    sora.add_fault("create", delay=3.0)  # uncertain submit on a provider that cannot be asked
    kling.inject_code(1301, endpoint="create")  # content policy: permanent

    sora_id = _create(tenants, model="sora-2", prompt="uncertain", duration=4, size="1280x720")
    kling_id = _create(tenants, model="kling-v1-6", prompt="blocked", duration=5, size="1280x720")
    sora_gen = live_engine.wait(sora_id, timeout=60)
    assert sora_gen.state == State.FAILED and sora_gen.error_code == "submit_uncertain"
    assert sora_gen.submit_attempts == 1  # never resubmitted
    kling_gen = live_engine.wait(kling_id)
    assert kling_gen.state == State.FAILED and kling_gen.error_message
    for gen in (sora_gen, kling_gen):
        assert_ledger_balanced(gen)
        assert not gen.video_file


def test_worker_killed_between_submit_and_poll_resumes_without_a_second_job(tenants, live_engine, tmp_path):
    sora = live_engine.emulators["sora"]
    public_id = _create(tenants, model="sora-2", prompt="survive a crash", duration=4, size="1280x720")
    live_engine.wait(public_id, until=lambda g: bool(g.provider_job_id))
    live_engine.worker.kill()
    live_engine.worker.start()  # same queue, same database: a restarted worker
    gen = live_engine.wait(public_id, timeout=90)
    _assert_stored(gen, sample_mp4())
    assert_ledger_balanced(gen)
    assert sora.stats()["jobs_created"] == 1 and gen.submit_attempts == 1
