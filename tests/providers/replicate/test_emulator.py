"""The Replicate adapter against the Replicate emulator: create to downloaded bytes for every model,
and through every quirk and fault of the contract (replicate.md §10-§11)."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import requests

from apps.providers.base import CallbackRejected, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.catalog import supplier_model
from apps.providers.replicate.catalog import MODELS
from tests.emulators.base import sample_image, sample_mp4
from tests.emulators.replicate import ReplicateEmulator, version_id


def spec(**kwargs):
    values = {"model": "seedance-2.0", "prompt": "a lighthouse at dusk", "seconds": 5, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def direct(emulator, path, body=None, headers=None, method="POST"):
    """A request to the emulator as another Replicate client would send it."""
    return requests.request(
        method,
        f"{emulator.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {emulator.api_key}", **(headers or {})},
        timeout=10,
    )


@pytest.mark.parametrize("model_id", ["seedance-2.0", "kling-v3", "wan-3", "veo-3.1", "veo-3.1-fast"])
def test_create_poll_download(replicate, replicate_emulator, model_id):
    model = supplier_model("replicate", model_id)
    replicate.validate_key()
    replicate_emulator.reset()
    job_id = replicate.submit(spec(model=model_id, seconds=model.default_seconds, size=model.default_size, seed=9))
    created = replicate_emulator.last_requests["create"]
    assert created.path == f"/v1/models/{model.provider_model}/predictions"
    assert created.headers.get("Prefer") is None and created.headers.get("Cancel-After") is None

    first = replicate.status(job_id)
    assert (first.state, first.raw_status, first.progress) == (JobState.QUEUED, "starting", None)
    replicate_emulator.advance(0.5)
    running = replicate.status(job_id)
    assert (running.state, running.raw_status) == (JobState.IN_PROGRESS, "processing")
    replicate_emulator.advance(1)
    done = replicate.status(job_id)
    assert done.state is JobState.COMPLETED and done.progress == 100 and len(done.output_urls) == 1
    assert done.usage == {"predict_time": 0.8, "total_time": 1.0}

    with replicate.download(job_id, url=done.output_urls[0]) as download:
        assert b"".join(download.chunks) == sample_mp4()
    with replicate.download(job_id) as download:  # no URL: the prediction is read again
        assert b"".join(download.chunks) == sample_mp4()
    stats = replicate_emulator.stats()
    assert stats["jobs_created"] == 1 and stats["calls"]["create"] == 1


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.id)
def test_every_catalog_size_duration_and_audio_choice_passes_the_models_schema(replicate, replicate_emulator, model):
    """The emulator checks each model's input schema (422 on a wrong value or an unknown field), so
    every size, duration and audio choice the catalog offers is mapped to inputs the model takes."""
    sent = 0
    for size in model.sizes:
        seconds = 8 if model.id.startswith("veo") else model.default_seconds
        replicate.submit(spec(model=model.id, size=size, seconds=seconds))
        sent += 1
    for seconds in model.seconds:
        replicate.submit(spec(model=model.id, size=model.default_size, seconds=seconds))
        sent += 1
    for audio in (None, False, True) if model.has_audio else (None, False):
        replicate.submit(spec(model=model.id, size=model.default_size, seconds=model.default_seconds, audio=audio))
        sent += 1
    assert replicate_emulator.stats()["jobs_created"] == sent


@pytest.mark.parametrize(
    ("model_id", "size", "field"),
    [("veo-3.1", "720x1280", "image"), ("kling-v3", "1280x720", "start_image"), ("seedance-2.0", "720x720", "image")],
)
def test_image_to_video_with_a_data_uri(replicate, replicate_emulator, model_id, size, field):
    seconds = supplier_model("replicate", model_id).default_seconds
    image = InputImage(data=sample_image("PNG"), content_type="image/png")
    job_id = replicate.submit(spec(model=model_id, size=size, seconds=seconds, image=image))
    sent = replicate_emulator.last_requests["create"].json()["input"]
    assert sent[field].startswith("data:image/png;base64,")
    replicate_emulator.advance(2)
    assert replicate.status(job_id).state is JobState.COMPLETED


def test_image_to_video_with_a_url(replicate, replicate_emulator):
    replicate.submit(spec(model="kling-v3", image=InputImage(url="https://img.example.com/frame.webp")))
    sent = replicate_emulator.last_requests["create"].json()["input"]
    assert sent["start_image"] == "https://img.example.com/frame.webp" and "aspect_ratio" not in sent


def test_a_failed_prediction_carries_its_free_text(replicate, replicate_emulator):
    job_id = replicate.submit(spec(prompt="[fail] a forbidden scene"))
    replicate_emulator.advance(2)
    job = replicate.status(job_id)
    assert (job.state, job.raw_status, job.error_code) == (JobState.FAILED, "failed", "content_policy")
    assert "flagged as sensitive" in job.error_message and job.output_urls == ()


def test_cancel(replicate, replicate_emulator):
    job_id = replicate.submit(spec())
    replicate_emulator.advance(0.5)
    replicate.cancel(job_id)
    assert replicate.status(job_id).state is JobState.CANCELED
    replicate_emulator.advance(5)
    replicate.cancel(job_id)  # a terminal prediction comes back unchanged
    assert replicate.status(job_id).raw_status == "canceled"
    replicate.cancel("nosuchprediction00000000000")  # unknown: nothing to cancel
    assert replicate_emulator.stats()["calls"]["cancel"] == 3


def test_a_deadline_before_start_is_aborted_and_after_start_canceled(replicate, replicate_emulator):
    body = {"input": {"prompt": "a fox", "duration": 5}}
    early = direct(replicate_emulator, "/v1/models/bytedance/seedance-2.0/predictions", body, {"Cancel-After": "100ms"})
    late = direct(replicate_emulator, "/v1/models/bytedance/seedance-2.0/predictions", body, {"Cancel-After": "0.5s"})
    assert early.status_code == late.status_code == 201 and "deadline" in early.json()
    replicate_emulator.advance(2)
    aborted = replicate.status(early.json()["id"])
    assert (aborted.state, aborted.raw_status, aborted.error_code) == (JobState.FAILED, "aborted", "aborted")
    assert aborted.usage == {}  # never ran: nothing billed
    canceled = replicate.status(late.json()["id"])
    assert canceled.state is JobState.CANCELED and canceled.usage["predict_time"] > 0
    bad = direct(replicate_emulator, "/v1/models/bytedance/seedance-2.0/predictions", body, {"Cancel-After": "soon"})
    assert bad.status_code == 422 and "Cancel-After" in bad.json()["detail"]


def test_outputs_expire_one_hour_after_completion(replicate, replicate_emulator):
    job_id = replicate.submit(spec())
    replicate_emulator.advance(2)
    url = replicate.status(job_id).output_urls[0]
    replicate_emulator.advance(3598)  # 59 min 59 s after completion: still there
    with replicate.download(job_id, url=url) as download:
        assert b"".join(download.chunks) == sample_mp4()
    replicate_emulator.advance(2)
    gone = replicate.status(job_id)
    assert (gone.state, gone.error_code) == (JobState.FAILED, "output_expired")
    body = direct(replicate_emulator, f"/v1/predictions/{job_id}", method="GET").json()
    assert body["data_removed"] is True and body["output"] is None and body["input"] is None
    for kwargs in ({"url": url}, {}):
        with pytest.raises(ProviderError) as info:
            replicate.download(job_id, **kwargs)
        assert info.value.code == "output_expired" and info.value.permanent


def test_a_list_output_is_normalised(replicate, replicate_emulator):
    replicate_emulator.output_as_list = True
    job_id = replicate.submit(spec())
    replicate_emulator.advance(2)
    body = direct(replicate_emulator, f"/v1/predictions/{job_id}", method="GET").json()
    assert isinstance(body["output"], list)
    done = replicate.status(job_id)
    assert done.output_urls == tuple(body["output"])
    with replicate.download(job_id) as download:
        assert b"".join(download.chunks) == sample_mp4()


def test_a_wrong_token_is_refused(replicate_emulator, settings):
    from apps.providers import registry
    from apps.providers.base import Credentials

    settings.REPLICATE_BASE_URL = replicate_emulator.base_url
    wrong = "r8_fake-key-test-emulator-wrong-token"
    provider = registry.build("replicate", Credentials(api_key=wrong))
    for call in (provider.validate_key, lambda: provider.submit(spec())):
        with pytest.raises(ProviderError) as info:
            call()
        assert info.value.is_auth_error and info.value.code == "invalid_api_key"
        assert wrong not in str(info.value) and "valid authentication token" in info.value.message
    assert replicate_emulator.stats()["jobs_created"] == 0


def test_an_unknown_model_is_404_and_a_mapping_bug_is_422(replicate, replicate_emulator, monkeypatch):
    seedance = supplier_model("replicate", "seedance-2.0")
    gone = dataclasses.replace(seedance, provider_model="bytedance/seedance-9")
    monkeypatch.setattr(replicate, "_catalog_model", lambda _spec: gone)
    with pytest.raises(ProviderError) as info:
        replicate.submit(spec())
    assert (info.value.code, info.value.permanent, info.value.status_code) == ("model_not_available", True, 404)

    wrong = {**seedance.extra, "size_inputs": {"1280x720": {"aspect_ratio": "16:9", "resolution": "540p"}}}
    buggy = dataclasses.replace(seedance, extra=wrong)
    monkeypatch.setattr(replicate, "_catalog_model", lambda _spec: buggy)
    with pytest.raises(ProviderError) as info:
        replicate.submit(spec())
    assert (info.value.code, info.value.permanent, info.value.status_code) == ("invalid_request", True, 422)
    assert "input.resolution" in info.value.message
    assert replicate_emulator.stats()["jobs_created"] == 0


def test_the_emulators_rate_limit_answers_429_with_retry_after(replicate, replicate_emulator):
    replicate_emulator.creates_per_minute = 1
    replicate.submit(spec())
    replicate_emulator.advance(20)
    with pytest.raises(ProviderError) as info:
        replicate.submit(spec())
    error = info.value
    assert (error.code, error.permanent, error.uncertain) == ("rate_limited", False, False)
    assert error.retry_after == 40.0 and "resets in ~40s" in error.message
    assert replicate_emulator.stats()["jobs_created"] == 1


@pytest.mark.parametrize(
    ("fault", "code", "uncertain", "jobs"),
    [
        ({"status": 500}, "server_error", True, 0),
        ({"status": 503, "headers": {"Retry-After": "3"}}, "server_error", True, 0),
        ({"malformed": True}, "bad_response", True, 1),
        ({"delay": 1.0}, "timeout", True, 1),
        ({"status": 401}, "invalid_api_key", False, 0),
        ({"status": 402}, "insufficient_balance", False, 0),
    ],
)
def test_create_faults(replicate, replicate_emulator, settings, fault, code, uncertain, jobs):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    replicate_emulator.add_fault("create", **fault)
    with pytest.raises(ProviderError) as info:
        replicate.submit(spec())
    assert (info.value.code, info.value.uncertain) == (code, uncertain)
    # a slow or garbled answer still created the (paid) prediction: no lookup exists, so the engine
    # must not resubmit; it fails the generation without charge
    assert replicate_emulator.stats()["jobs_created"] == jobs
    replicate.submit(spec())  # the fault applied to one request only


@pytest.mark.parametrize(
    ("fault", "code", "retry_after"),
    [
        ({"status": 503, "headers": {"Retry-After": "2"}}, "server_error", 2.0),
        (
            {
                "status": 429,
                "body": ReplicateEmulator.error_body(429, "Request was throttled. Your rate limit resets in ~5s."),
            },
            "rate_limited",
            5.0,
        ),
        ({"status": 404}, "not_found", None),
    ],
)
def test_poll_faults(replicate, replicate_emulator, fault, code, retry_after):
    job_id = replicate.submit(spec())
    replicate_emulator.add_fault("prediction", **fault)
    with pytest.raises(ProviderError) as info:
        replicate.status(job_id)
    assert (info.value.code, info.value.retry_after, info.value.uncertain) == (code, retry_after, False)
    assert replicate.status(job_id).state is JobState.QUEUED


def test_an_unknown_status_keeps_polling(replicate, replicate_emulator):
    job_id = replicate.submit(spec())
    replicate_emulator.add_fault("prediction", patch={"status": "warming"})
    job = replicate.status(job_id)
    assert (job.state, job.raw_status) == (JobState.IN_PROGRESS, "warming")


@pytest.mark.parametrize(
    ("fault", "code", "permanent"),
    [({"truncate": 1000}, "download_interrupted", False), ({"status": 503}, "download_failed", False)],
)
def test_download_faults(replicate, replicate_emulator, fault, code, permanent):
    job_id = replicate.submit(spec())
    replicate_emulator.advance(2)
    url = replicate.status(job_id).output_urls[0]
    replicate_emulator.add_fault("file", **fault)
    with pytest.raises(ProviderError) as info:
        with replicate.download(job_id, url=url) as download:
            b"".join(download.chunks)
    assert (info.value.code, info.value.permanent) == (code, permanent)
    with replicate.download(job_id, url=url) as download:  # the next attempt gets the file
        assert b"".join(download.chunks) == sample_mp4()


def test_prefer_wait_holds_the_create_and_returns_the_live_object(replicate_emulator):
    replicate_emulator.job_seconds = 0.3
    body = {"input": {"prompt": "a fox", "duration": 5}}
    path = "/v1/models/bytedance/seedance-2.0/predictions"
    finished = direct(replicate_emulator, path, body, {"Prefer": "wait=10"})
    assert finished.status_code == 201 and finished.json()["status"] == "succeeded"
    replicate_emulator.job_seconds = 30.0
    running = direct(replicate_emulator, path, body, {"Prefer": "wait=1"})
    assert running.status_code == 201 and running.json()["status"] in ("starting", "processing")


def test_create_by_version(replicate, replicate_emulator):
    body = {"input": {"prompt": "a fox", "duration": 5}}
    for version in ("bytedance/seedance-2.0", f"bytedance/seedance-2.0:{version_id('bytedance/seedance-2.0')}"):
        answer = direct(replicate_emulator, "/v1/predictions", {**body, "version": version})
        assert answer.status_code == 201 and answer.json()["model"] == "bytedance/seedance-2.0"
    bare = direct(replicate_emulator, "/v1/predictions", {**body, "version": version_id("bytedance/seedance-2.0")})
    assert bare.status_code == 201
    replicate_emulator.advance(2)
    assert replicate.status(bare.json()["id"]).state is JobState.COMPLETED
    wrong = direct(replicate_emulator, "/v1/predictions", {**body, "version": "bytedance/seedance-2.0:" + "0" * 64})
    assert wrong.status_code == 422 and wrong.json()["status"] == 422 and wrong.json()["title"]


def test_problem_details_on_every_error(replicate_emulator):
    unknown = direct(replicate_emulator, "/v1/models/acme/nothing/predictions", {"input": {"prompt": "x"}})
    invalid = direct(
        replicate_emulator,
        "/v1/models/google/veo-3.1/predictions",
        {"input": {"prompt": "x", "duration": "8", "colour": "red"}},
    )
    for answer, status in ((unknown, 404), (invalid, 422)):
        assert answer.status_code == status and answer.headers["Content-Type"] == "application/problem+json"
        assert set(answer.json()) == {"title", "detail", "status"} and answer.json()["status"] == status
    assert "input.duration" in invalid.json()["detail"] and "input.colour" in invalid.json()["detail"]


# --- webhooks ----------------------------------------------------------------------------------


def test_signed_webhook_of_a_completed_prediction(replicate, replicate_emulator, webhook_sink):
    job_id = replicate.submit(spec(callback_url=webhook_sink.url))
    assert replicate_emulator.last_requests["create"].json()["webhook_events_filter"] == ["completed"]
    replicate_emulator.advance(2)
    (headers, body), *_ = webhook_sink.wait(1)
    time.sleep(0.3)
    assert len(webhook_sink.deliveries) == 1  # "completed" only, as asked
    secret = replicate.callback_secret()
    assert secret == replicate_emulator.webhook_secret and secret.startswith("whsec_")
    delivery = replicate.verify_callback(headers=headers, body=body, secret=secret)
    assert delivery.job_id == job_id
    polled = direct(replicate_emulator, f"/v1/predictions/{job_id}", method="GET").json()
    assert json.loads(body) == polled  # the webhook body is the GET body (§8)


@pytest.mark.parametrize("tamper", ["bad_signature", "stale"])
def test_tampered_webhooks_are_rejected(replicate, replicate_emulator, webhook_sink, tamper):
    replicate_emulator.webhook_tamper.add(tamper)
    replicate.submit(spec(callback_url=webhook_sink.url))
    replicate_emulator.advance(2)
    (headers, body), *_ = webhook_sink.wait(1)
    with pytest.raises(CallbackRejected):
        replicate.verify_callback(headers=headers, body=body, secret=replicate.callback_secret())


def test_duplicates_verify_alike_and_a_replayed_body_does_not(replicate, replicate_emulator, webhook_sink):
    replicate_emulator.webhook_tamper.add("duplicate")
    first = replicate.submit(spec(callback_url=webhook_sink.url))
    second = replicate.submit(spec(prompt="[fail] another", callback_url=webhook_sink.url))
    replicate_emulator.advance(2)
    deliveries = webhook_sink.wait(4)
    secret = replicate.callback_secret()
    verified = [replicate.verify_callback(headers=h, body=b, secret=secret).job_id for h, b in deliveries]
    assert sorted(verified) == sorted([first, first, second, second])
    by_job = {json.loads(b)["id"]: (h, b) for h, b in deliveries}
    # the body of one delivery under the headers of the other: refused
    with pytest.raises(CallbackRejected):
        replicate.verify_callback(headers=by_job[first][0], body=by_job[second][1], secret=secret)
    # a delivery signed by another Replicate account (another emulator's secret): refused
    with ReplicateEmulator() as other:
        with pytest.raises(CallbackRejected):
            replicate.verify_callback(headers=by_job[first][0], body=by_job[first][1], secret=other.webhook_secret)


def test_a_late_start_event_still_names_the_prediction(replicate, replicate_emulator, webhook_sink):
    replicate_emulator.webhook_tamper.add("late_start")
    body = {"input": {"prompt": "a fox", "duration": 5}, "webhook": webhook_sink.url}
    created = direct(
        replicate_emulator,
        "/v1/models/bytedance/seedance-2.0/predictions",
        {**body, "webhook_events_filter": ["start", "completed"]},
    ).json()
    replicate_emulator.advance(2)
    deliveries = webhook_sink.wait(2)
    statuses = [json.loads(b)["status"] for _h, b in deliveries]
    assert statuses == ["succeeded", "succeeded"]  # the start event came after completed, both as it is now
    secret = replicate.callback_secret()
    assert {replicate.verify_callback(headers=h, body=b, secret=secret).job_id for h, b in deliveries} == {
        created["id"]
    }
    assert [d.event for d in replicate_emulator.webhooks_sent] == ["completed", "start"]


def test_the_emulator_refuses_a_bad_webhook(replicate_emulator):
    path = "/v1/models/bytedance/seedance-2.0/predictions"
    body = {"input": {"prompt": "a fox"}}
    for extra in ({"webhook": "http://example.com/hook"}, {"webhook_events_filter": ["finished"]}):
        answer = direct(replicate_emulator, path, {**body, **extra})
        assert answer.status_code == 422
    assert replicate_emulator.stats()["jobs_created"] == 0
