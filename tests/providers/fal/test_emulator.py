"""The fal adapter against the fal emulator: every model from create to downloaded bytes, and
every quirk of reference/providers/fal.md §14 (URL rule, COMPLETED with errors, 202/200, webhook
vocabulary and signatures, per-model input types, uncertain submits, ignored cancels, the retry
hint, auto_fix), plus the emulator's injectable faults and the expiring media URL."""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests

from apps.providers import http, registry
from apps.providers.base import CallbackRejected, Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.fal import adapter as fal_adapter
from apps.providers.fal.adapter import OUTPUT_LIFETIME_SECONDS
from tests.emulators.base import sample_image, sample_mp4
from tests.emulators.fal import EMULATOR, FalEmulator, validate

PNG = InputImage(data=sample_image("PNG"), content_type="image/png")
URL = InputImage(url="https://img.example.com/frame.png")


def spec(**kwargs) -> GenerationSpec:
    values = {"model": "veo-3.1", "prompt": "a lighthouse at dusk", "seconds": 8, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def finish(fal, emulator, job, seconds: float = 11.0):
    emulator.advance(seconds)
    return fal.status(job.job_id, job_data=job.data)


def fetch(fal, job, status) -> bytes:
    with fal.download(job.job_id, url=status.output_urls[0], job_data=job.data) as download:
        return b"".join(download.chunks)


# (model, seconds, size, image, endpoint the emulator must see, billable units)
RUNS = [
    ("veo-3.1", 8, "1280x720", None, "fal-ai/veo3.1", "8"),
    ("veo-3.1", 4, "2160x3840", PNG, "fal-ai/veo3.1/image-to-video", "4"),
    ("veo-3.1-fast", 6, "1080x1920", None, "fal-ai/veo3.1/fast", "6"),
    ("veo-3.1-fast", 8, "1280x720", URL, "fal-ai/veo3.1/fast/image-to-video", "8"),
    ("kling-v3", 5, "1920x1080", None, "fal-ai/kling-video/v3/pro/text-to-video", "5"),
    ("kling-v3", 12, "720x1280", PNG, "fal-ai/kling-video/v3/standard/image-to-video", "12"),
    ("seedance-2.0", 4, "640x640", None, "bytedance/seedance-2.0/text-to-video", "4"),
    ("seedance-2.0", 15, "1920x1080", PNG, "bytedance/seedance-2.0/image-to-video", "15"),
    ("hailuo-2.3", 10, "1366x768", None, "fal-ai/minimax/hailuo-2.3/standard/text-to-video", "1"),
    ("hailuo-2.3", 6, "1920x1080", PNG, "fal-ai/minimax/hailuo-2.3/pro/image-to-video", "1"),
    ("minimax-h3", 15, "1440x2560", None, "minimax/h3/text-to-video", "15"),
    ("minimax-h3", 5, "2560x1440", PNG, "minimax/h3/image-to-video", "5"),
    ("wan-2.7", 2, "1080x1920", None, "fal-ai/wan/v2.7/text-to-video", "2"),
    ("wan-2.7", 15, "1280x720", PNG, "fal-ai/wan/v2.7/image-to-video", "15"),
    ("luma-ray-3.2", 10, "1920x1080", None, "luma/agent/ray/v3.2/text-to-video", "1"),
    ("luma-ray-3.2", 5, "540x540", URL, "luma/agent/ray/v3.2/image-to-video", "1"),
]


@pytest.mark.parametrize(
    ("model", "seconds", "size", "image", "endpoint", "units"),
    RUNS,
    ids=[f"{r[0]}-{'i2v' if r[3] else 't2v'}" for r in RUNS],
)
def test_every_model_from_create_to_downloaded_bytes(fal_emulator, fal, model, seconds, size, image, endpoint, units):
    job = fal.submit(spec(model=model, seconds=seconds, size=size, image=image, seed=None))
    submitted = fal_emulator.last_requests["submit"]
    assert submitted.path == f"/{endpoint}"  # the full endpoint id on submit
    app = "/".join(endpoint.split("/")[:2])
    assert job.data["status_url"] == f"{fal_emulator.base_url}/{app}/requests/{job.job_id}/status"

    assert fal.status(job.job_id, job_data=job.data).state is JobState.QUEUED
    fal_emulator.advance(3)
    assert fal.status(job.job_id, job_data=job.data).state is JobState.IN_PROGRESS
    status = finish(fal, fal_emulator, job, 8)
    assert status.state is JobState.COMPLETED, status.error_message
    assert status.usage["billable_units"] == units and status.usage["inference_time"] == 8.0
    assert fetch(fal, job, status) == sample_mp4()
    stats = fal_emulator.stats()
    assert stats["jobs_created"] == 1 and stats["calls"]["status"] == 3 and stats["calls"]["result"] == 1


def test_the_urls_drop_the_sub_path_and_a_rebuilt_one_fails(fal_emulator, fal):
    job = fal.submit(spec(model="kling-v3", seconds=5, size="1920x1080"))
    base = f"{fal_emulator.base_url}/fal-ai/kling-video/requests/{job.job_id}"
    assert job.data == {
        "status_url": f"{base}/status",
        "response_url": base,
        "cancel_url": f"{base}/cancel",
        "endpoint_id": "fal-ai/kling-video/v3/pro/text-to-video",  # for fal's unit price
    }
    rebuilt = {
        name: url.replace("/fal-ai/kling-video/", "/fal-ai/kling-video/v3/pro/text-to-video/")
        for name, url in job.data.items()
        if name != "endpoint_id"
    }
    with pytest.raises(ProviderError) as info:
        fal.status(job.job_id, job_data=rebuilt)
    assert info.value.code == "not_found" and info.value.status_code == 404
    assert fal.status(job.job_id, job_data=job.data).state is JobState.QUEUED


def test_status_is_202_until_completed_then_200(fal_emulator, fal):
    job = fal.submit(spec())
    auth = {"Authorization": f"Key {fal_emulator.api_key}"}
    answer = requests.get(job.data["status_url"], headers=auth, timeout=5)
    assert answer.status_code == 202 and answer.json()["status"] == "IN_QUEUE" and answer.json()["queue_position"] == 0
    assert requests.get(job.data["response_url"], headers=auth, timeout=5).status_code == 400  # not finished
    fal_emulator.advance(3)
    answer = requests.get(job.data["status_url"], params={"logs": "1"}, headers=auth, timeout=5)
    assert answer.status_code == 202 and answer.json()["status"] == "IN_PROGRESS" and answer.json()["logs"]
    fal_emulator.advance(8)
    answer = requests.get(job.data["status_url"], headers=auth, timeout=5)
    assert answer.status_code == 200 and answer.json()["status"] == "COMPLETED"
    assert answer.json()["error"] is None and answer.json()["metrics"]["inference_time"] == 8.0


def test_auth_is_a_key_header(fal_emulator, fal):
    assert fal.validate_key() is None
    assert fal_emulator.last_requests["pricing"].headers["Authorization"] == f"Key {fal_emulator.api_key}"
    bearer = requests.get(
        f"{fal_emulator.root_url}/v1/models/pricing",
        headers={"Authorization": f"Bearer {fal_emulator.api_key}"},
        timeout=5,
    )
    assert bearer.status_code == 401 and "Key" in bearer.json()["detail"]
    wrong = registry.build("fal", Credentials(api_key="fal-emu-key-id:wrong-secret"))
    with pytest.raises(ProviderError) as info:
        wrong.validate_key()
    assert info.value.code == "invalid_api_key" and info.value.is_auth_error and "wrong-secret" not in str(info.value)
    with pytest.raises(ProviderError) as info:
        wrong.submit(spec())
    assert info.value.is_auth_error and fal_emulator.stats()["jobs_created"] == 0


@pytest.mark.parametrize(
    ("status", "permanent", "auth"),
    [(400, True, False), (401, True, True), (403, True, True), (404, True, False), (422, True, False),
     (429, False, False), (500, False, False), (502, False, False), (503, False, False)],
)  # fmt: skip
def test_the_emulators_error_bodies_classify_alike(fal_emulator, fal, status, permanent, auth):
    body = FalEmulator.error_body(status, "upstream says no")
    fal_emulator.add_fault("pricing", status=status, body=body, headers={"Retry-After": "3"})
    with pytest.raises(ProviderError) as info:
        fal.validate_key()
    error = info.value
    assert (error.permanent, error.is_auth_error, error.status_code) == (permanent, auth, status)
    assert error.retry_after == (None if permanent else 3.0) and "upstream says no" in str(error)


def test_queue_positions_decrease_under_the_concurrency_cap(fal_emulator, fal):
    fal_emulator.max_concurrency = 1
    jobs = [fal.submit(spec(prompt=f"clip {i}")) for i in range(3)]
    auth = {"Authorization": f"Key {fal_emulator.api_key}"}

    def positions():
        answers = [requests.get(j.data["status_url"], headers=auth, timeout=5).json() for j in jobs]
        return [(a["status"], a.get("queue_position")) for a in answers]

    fal_emulator.advance(3)
    assert positions() == [("IN_PROGRESS", None), ("IN_QUEUE", 0), ("IN_QUEUE", 1)]
    fal_emulator.advance(10)
    assert positions() == [("COMPLETED", None), ("IN_PROGRESS", None), ("IN_QUEUE", 0)]
    assert [fal.status(j.job_id, job_data=j.data).state for j in jobs] == [
        JobState.COMPLETED, JobState.IN_PROGRESS, JobState.QUEUED,
    ]  # fmt: skip


# --- quirk 2: COMPLETED is not success --------------------------------------------------------------


@pytest.mark.parametrize("status_tells", [True, False])
def test_a_runner_failure_ends_failed(fal_emulator, fal, status_tells):
    fal_emulator.status_reports_errors = status_tells  # False: a legacy app, only the result tells
    job = fal.submit(spec(prompt="a storm [fail]"))
    status = finish(fal, fal_emulator, job)
    assert status.state is JobState.FAILED and status.raw_status == "COMPLETED"
    assert status.error_code == "generation_failed" and "Runner disconnected" in status.error_message
    assert status.output_urls == ()
    with pytest.raises(ProviderError):
        fal.download(job.job_id, job_data=job.data)


def test_a_moderated_output_is_a_content_policy_failure(fal_emulator, fal):
    job = fal.submit(spec(prompt="a battle [moderated]"))
    status = finish(fal, fal_emulator, job)
    assert (status.state, status.error_code) == (JobState.FAILED, "content_policy")
    assert "flagged by the content checker" in status.error_message


def test_a_moderated_prompt_is_refused_at_submit_without_retry(fal_emulator, fal):
    with pytest.raises(ProviderError) as info:
        fal.submit(spec(prompt="something [nsfw]"))
    assert info.value.code == "content_policy" and info.value.permanent and info.value.status_code == 422
    assert fal_emulator.stats()["jobs_created"] == 0


# --- quirk 6: per-model input types; a mapping bug fails like production ----------------------------


def test_the_emulator_validates_each_models_input():
    assert validate("fal-ai/veo3.1", {"prompt": "x", "duration": "8s"}) == []
    assert validate("fal-ai/veo3.1", {"prompt": "x", "duration": 8})[0]["loc"] == ["body", "duration"]
    assert validate("fal-ai/wan/v2.7/text-to-video", {"prompt": "x", "duration": "5"})[0]["loc"] == ["body", "duration"]
    assert validate("fal-ai/wan/v2.7/text-to-video", {"prompt": "x", "duration": 5}) == []
    problems = validate("fal-ai/kling-video/v3/pro/image-to-video", {"prompt": "x", "image_url": "https://a.example/i"})
    assert {tuple(p["loc"]) for p in problems} == {("body", "start_image_url"), ("body", "image_url")}
    assert validate("fal-ai/minimax/hailuo-2.3/pro/text-to-video", {"prompt": "x", "duration": "6"})
    assert validate("luma/agent/ray/v3.2/image-to-video", {"prompt": "x", "image_url": "data:image/png;base64,AAAA"})
    assert validate("minimax/h3/text-to-video", {"prompt": "x", "duration": 5, "resolution": "2K"}) == []


@pytest.mark.parametrize(
    ("model", "bug", "field"),
    [
        ("veo-3.1", {"duration": "integer"}, "body.duration"),  # 8 instead of "8s"
        ("wan-2.7", {"duration": "string"}, "body.duration"),  # "5" instead of 5
        ("kling-v3", {"image_field": "image_url"}, "body.start_image_url"),
        ("hailuo-2.3", {"no_duration_tiers": ()}, "body.duration"),  # pro has no duration
    ],
)
def test_a_mapping_bug_is_a_422_like_in_production(fal_emulator, fal, monkeypatch, model, bug, field):
    entry = fal._catalog_model(spec(model=model))
    broken = dataclasses.replace(entry, extra={**entry.extra, **bug})
    monkeypatch.setattr(fal, "_catalog_model", lambda s: broken)
    fields = {"model": model, "seconds": 6 if model == "hailuo-2.3" else 8 if model == "veo-3.1" else 5}
    if model == "kling-v3":
        fields["image"] = PNG
    if model == "hailuo-2.3":
        fields["size"] = "1920x1080"
    with pytest.raises(ProviderError) as info:
        fal.submit(spec(**fields))
    assert info.value.code == "invalid_request" and info.value.permanent and info.value.status_code == 422
    assert field in info.value.message
    assert fal_emulator.stats()["jobs_created"] == 0


def test_an_unknown_endpoint_is_a_catalogue_problem(fal_emulator, fal, monkeypatch):
    entry = fal._catalog_model(spec())
    broken = dataclasses.replace(entry, extra={**entry.extra, "endpoints": {"t2v": "fal-ai/veo9", "i2v": "x/y"}})
    monkeypatch.setattr(fal, "_catalog_model", lambda s: broken)
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert info.value.code == "model_not_available" and info.value.permanent


def test_images_go_inline_where_the_model_takes_a_data_uri(fal_emulator, fal):
    fal.submit(spec(model="kling-v3", seconds=5, image=PNG))
    sent = fal_emulator.last_requests["submit"].json()
    assert sent["start_image_url"].startswith("data:image/png;base64,") and "image_url" not in sent
    with pytest.raises(ProviderError) as info:
        fal.submit(spec(model="luma-ray-3.2", seconds=5, image=PNG))
    assert "public https URL" in info.value.message
    fal.submit(spec(model="luma-ray-3.2", seconds=5, image=URL))
    assert fal_emulator.last_requests["submit"].json()["image_url"] == URL.url
    assert fal_emulator.stats()["jobs_created"] == 2


def test_veo_never_lets_fal_rewrite_the_prompt(fal_emulator, fal):
    fal.submit(spec())  # quirk 10
    assert fal_emulator.last_requests["submit"].json()["auto_fix"] is False
    lifecycle = fal_emulator.last_requests["submit"].headers["X-Fal-Object-Lifecycle-Preference"]
    assert json.loads(lifecycle) == {"expiration_duration_seconds": OUTPUT_LIFETIME_SECONDS}


# --- quirk 7: a submit that may have reached fal is uncertain -------------------------------------


def test_submit_faults(fal_emulator, fal, settings):
    fal_emulator.runner_fault("submit")
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert info.value.uncertain and not info.value.permanent and info.value.code == "server_error"

    fal_emulator.ingress_fault("submit", status=502)
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert not info.value.uncertain and not info.value.permanent and info.value.status_code == 502

    fal_emulator.user_timeout_fault("submit")
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert info.value.code == "timeout" and info.value.permanent and not info.value.uncertain

    fal_emulator.add_fault("submit", status=429, body={"detail": "Too many requests"}, headers={"Retry-After": "2"})
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert info.value.code == "rate_limited" and info.value.retry_after == 2.0
    assert fal_emulator.stats()["jobs_created"] == 0

    fal_emulator.add_fault("submit", malformed=True)  # handled, then a broken answer
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert info.value.uncertain and info.value.code == "bad_response"
    assert fal_emulator.stats()["jobs_created"] == 1

    settings.PROVIDER_READ_TIMEOUT = 0.3
    fal_emulator.add_fault("submit", delay=1.0)  # handled, answered too late
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert info.value.uncertain and info.value.code == "timeout"
    assert fal_emulator.stats()["jobs_created"] == 2


def test_poll_faults_are_transient(fal_emulator, fal):
    job = fal.submit(spec())
    fal_emulator.add_fault("status", status=429, body={"detail": "slow down"}, headers={"Retry-After": "2"})
    with pytest.raises(ProviderError) as info:
        fal.status(job.job_id, job_data=job.data)
    assert info.value.code == "rate_limited" and info.value.retry_after == 2.0
    fal_emulator.ingress_fault("status", status=503)
    with pytest.raises(ProviderError) as info:
        fal.status(job.job_id, job_data=job.data)
    assert not info.value.permanent
    fal_emulator.advance(11)
    fal_emulator.ingress_fault("result", status=502)  # the result fetch never reached fal
    with pytest.raises(ProviderError) as info:
        fal.status(job.job_id, job_data=job.data)
    assert not info.value.permanent
    assert fal.status(job.job_id, job_data=job.data).state is JobState.COMPLETED


# --- quirk 8: cancel --------------------------------------------------------------------------------


def test_cancel_of_a_queued_request(fal_emulator, fal):
    job = fal.submit(spec())
    assert fal.cancel(job.job_id, job_data=job.data) is None
    assert fal_emulator.last_requests["cancel"].method == "PUT"
    status = fal.status(job.job_id, job_data=job.data)
    assert (status.state, status.error_code) == (JobState.CANCELED, "canceled")
    with pytest.raises(ProviderError) as info:
        fal.cancel(job.job_id, job_data=job.data)
    assert info.value.code == "already_completed"


def test_a_running_request_may_ignore_cancel_and_complete(fal_emulator, fal):
    fal_emulator.honour_cancel = False
    job = fal.submit(spec())
    fal_emulator.advance(3)
    assert fal.cancel(job.job_id, job_data=job.data) is None  # CANCELLATION_REQUESTED: not terminal
    assert fal.status(job.job_id, job_data=job.data).state is JobState.IN_PROGRESS
    status = finish(fal, fal_emulator, job, 8)
    assert status.state is JobState.COMPLETED and status.usage["billable_units"] == "8"  # and billed
    with pytest.raises(ProviderError) as info:
        fal.cancel(job.job_id, job_data=job.data)
    assert info.value.code == "already_completed" and info.value.permanent


def test_a_running_request_that_honours_cancel(fal_emulator, fal):
    job = fal.submit(spec())
    fal_emulator.advance(3)
    fal.cancel(job.job_id, job_data=job.data)
    assert fal.status(job.job_id, job_data=job.data).state is JobState.CANCELED


def test_cancel_of_an_unknown_request_is_a_no_op(fal_emulator, fal):
    job = fal.submit(spec())
    other = {name: url.replace(job.job_id, "00000000-0000-0000-0000-000000000000") for name, url in job.data.items()}
    assert fal.cancel("00000000-0000-0000-0000-000000000000", job_data=other) is None  # NOT_FOUND


# --- the media URL expires ------------------------------------------------------------------------


@pytest.mark.parametrize("expired_status", [404, 410])
def test_the_output_expires_after_the_requested_lifetime(fal_emulator, fal, expired_status):
    fal_emulator.expired_status = expired_status
    job = fal.submit(spec())
    status = finish(fal, fal_emulator, job)
    fal_emulator.advance(OUTPUT_LIFETIME_SECONDS - 60)
    assert fetch(fal, job, status) == sample_mp4()  # still there just before
    fal_emulator.advance(120)
    with pytest.raises(ProviderError) as info:
        fetch(fal, job, status)
    assert info.value.code == "output_expired" and info.value.permanent


def test_a_download_broken_mid_stream(fal_emulator, fal):
    job = fal.submit(spec())
    status = finish(fal, fal_emulator, job)
    fal_emulator.add_fault("file", truncate=2000)
    with pytest.raises(ProviderError) as info:
        fetch(fal, job, status)
    assert info.value.code == "download_interrupted" and not info.value.permanent
    assert fetch(fal, job, status) == sample_mp4()


def test_only_the_configured_host_may_be_private(fal_emulator, fal, settings):
    job = fal.submit(spec())
    status = finish(fal, fal_emulator, job)
    elsewhere = status.output_urls[0].replace("127.0.0.1", "localhost")
    with pytest.raises(ProviderError) as info:
        fal.download(job.job_id, url=elsewhere, job_data=job.data)
    assert info.value.code == "unsafe_url"


# --- quirks 4 and 5: signed webhooks -------------------------------------------------------------------


def test_webhooks_are_signed_and_verify(fal_emulator, fal, webhook_sink):
    ok = fal.submit(spec(callback_url=webhook_sink.url))
    assert fal_emulator.last_requests["submit"].arg("fal_webhook") == webhook_sink.url
    failed = fal.submit(spec(prompt="x [fail]", callback_url=webhook_sink.url))
    fal_emulator.advance(11)
    deliveries = webhook_sink.wait(2)
    by_id = {json.loads(body)["request_id"]: (headers, body) for headers, body in deliveries}

    headers, body = by_id[ok.job_id]
    assert fal.verify_callback(headers=headers, body=body).job_id == ok.job_id
    payload = json.loads(body)
    assert payload["status"] == "OK" and payload["error"] is None and payload["payload"]["video"]["url"]
    headers, body = by_id[failed.job_id]
    assert fal.verify_callback(headers=headers, body=body).job_id == failed.job_id
    payload = json.loads(body)
    assert payload["status"] == "ERROR" and payload["error"] == "Invalid status code: 503"  # not the queue enum

    tampered = body.replace(b'"ERROR"', b'"OK"')
    with pytest.raises(CallbackRejected):
        fal.verify_callback(headers=headers, body=tampered)
    assert fal_emulator.stats()["calls"]["jwks"] == 1  # the key set was fetched once and cached


def test_spoiled_webhooks_are_rejected_and_duplicates_name_the_same_job(fal_emulator, fal, webhook_sink):
    fal_emulator.webhook_faults = ["bad_signature", "stale", "unknown_key", "duplicate"]
    jobs = [fal.submit(spec(prompt=f"clip {i}", callback_url=webhook_sink.url)) for i in range(4)]
    fal_emulator.advance(11)
    deliveries = webhook_sink.wait(5)
    by_id: dict[str, list] = {}
    for headers, body in deliveries:
        by_id.setdefault(json.loads(body)["request_id"], []).append((headers, body))
    for job in jobs[:3]:
        ((headers, body),) = by_id[job.job_id]
        with pytest.raises(CallbackRejected):
            fal.verify_callback(headers=headers, body=body)
    twice = by_id[jobs[3].job_id]
    assert len(twice) == 2  # at-least-once delivery: the engine dedupes
    assert {fal.verify_callback(headers=h, body=b).job_id for h, b in twice} == {jobs[3].job_id}
    assert [entry["fault"] for entry in fal_emulator.sent_webhooks(5)].count("duplicate") == 2


def test_a_rotated_signing_key_is_picked_up(fal_emulator, fal, webhook_sink, monkeypatch):
    now = [5000.0]
    monkeypatch.setattr(fal_adapter.JWKS, "clock", lambda: now[0])
    first = fal.submit(spec(callback_url=webhook_sink.url))
    fal_emulator.advance(11)
    ((headers, body),) = webhook_sink.wait(1)
    assert fal.verify_callback(headers=headers, body=body).job_id == first.job_id

    fal_emulator.rotate_signing_key()
    second = fal.submit(spec(callback_url=webhook_sink.url))
    fal_emulator.advance(11)
    headers, body = webhook_sink.wait(2)[1]
    with pytest.raises(CallbackRejected):  # the key set was fetched under a minute ago
        fal.verify_callback(headers=headers, body=body)
    now[0] += 61
    assert fal.verify_callback(headers=headers, body=body).job_id == second.job_id
    assert fal_emulator.stats()["calls"]["jwks"] == 2


def test_a_stale_timestamp_is_rejected_even_with_a_good_signature(fal_emulator, fal):
    job = fal.submit(spec())
    fal_emulator.advance(11)
    headers, body = fal_emulator.delivery(job.job_id)
    assert fal.verify_callback(headers=headers, body=body).job_id == job.job_id
    import time

    stale = fal_emulator.signed(job.job_id, body, timestamp=int(time.time()) - 301)
    with pytest.raises(CallbackRejected, match="tolerance"):
        fal.verify_callback(headers=stale, body=body)
    stale_key = fal_emulator.signed(job.job_id, body, key=fal_emulator.stale_key)
    assert fal.verify_callback(headers=stale_key, body=body).job_id == job.job_id  # any listed key verifies


# --- the shared emulator questions --------------------------------------------------------------------


def test_the_emulator_answers_the_registry_questions(fal_emulator):
    assert EMULATOR is FalEmulator and FalEmulator.slug == "fal"
    assert FalEmulator.live_models[0] == "veo-3.1"
    settings = fal_emulator.settings()
    assert set(settings) == {"FAL_BASE_URL", "FAL_API_BASE_URL", "FAL_JWKS_URL"}
    adapter = registry.build("fal", Credentials(**fal_emulator.key_fields()))
    assert adapter.base_url == settings["FAL_BASE_URL"] and adapter.options["JWKS_URL"] == settings["FAL_JWKS_URL"]
    assert http.origin(adapter.base_url) in adapter._private_hosts()
    assert registry.catalog_module("fal").MODELS[0].id == FalEmulator.live_models[0]
