"""Sora adapter: wire format and mappings with ``responses``, then against the OpenAI emulator."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from apps.providers.base import Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.sora.adapter import SoraProvider

BASE = "https://gateway.example.com/v1"
KEY = "fake-key-test-unit-openai-0000"


@pytest.fixture
def sora():
    return SoraProvider(Credentials(api_key=KEY), BASE + "/")


def video(status="queued", **extra):
    return {"id": "video_1", "object": "video", "status": status, "progress": 0, **extra}


def spec(**kwargs):
    values = {"model": "sora-2", "prompt": "a calico cat", "seconds": 8, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


@responses.activate
def test_create_sends_json_with_seconds_as_string(sora):
    responses.post(f"{BASE}/videos", json=video())
    assert sora.submit(spec()) == "video_1"
    request = responses.calls[0].request
    assert json.loads(request.body) == {"model": "sora-2", "prompt": "a calico cat", "seconds": "8", "size": "1280x720"}
    assert request.headers["Authorization"] == f"Bearer {KEY}"


@responses.activate
def test_create_with_image_bytes_is_multipart(sora):
    responses.post(f"{BASE}/videos", json=video())
    sora.submit(spec(image=InputImage(data=b"\x89PNG fake", content_type="image/png")))
    request = responses.calls[0].request
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="input_reference"; filename="input.png"' in request.body
    assert b"\x89PNG fake" in request.body
    assert b'name="seconds"\r\n\r\n8' in request.body


@responses.activate
def test_create_with_image_url_uses_the_object_form(sora):
    responses.post(f"{BASE}/videos", json=video())
    sora.submit(spec(image=InputImage(url="https://img.example.com/a.png")))
    assert json.loads(responses.calls[0].request.body)["input_reference"] == {
        "image_url": "https://img.example.com/a.png"
    }


@responses.activate
def test_remix_and_remix_via_submit(sora):
    responses.post(f"{BASE}/videos/video_0/remix", json=video(remixed_from_video_id="video_0"))
    assert sora.submit(spec(remix_of="video_0", prompt="make it night")) == "video_1"
    assert json.loads(responses.calls[0].request.body) == {"prompt": "make it night"}


@responses.activate
@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("queued", JobState.QUEUED),
        ("in_progress", JobState.IN_PROGRESS),
        ("completed", JobState.COMPLETED),
        ("failed", JobState.FAILED),
        ("expired", JobState.FAILED),
        ("warming_up", JobState.IN_PROGRESS),  # unknown: not finished
        ("", JobState.IN_PROGRESS),
    ],
)
def test_status_mapping(sora, raw, state):
    responses.get(f"{BASE}/videos/video_1", json=video(raw, progress=40))
    job = sora.status("video_1")
    assert job.state is state
    assert job.raw_status == raw
    assert job.progress == (100 if state is JobState.COMPLETED else 40)


@responses.activate
def test_status_carries_the_failure_and_the_poll_hint(sora):
    responses.get(
        f"{BASE}/videos/video_1",
        json=video("failed", error={"code": "moderation_blocked", "message": "Blocked by moderation."}),
        headers={"openai-poll-after-ms": "250"},
    )
    job = sora.status("video_1")
    assert (job.error_code, job.error_message, job.poll_after) == ("moderation_blocked", "Blocked by moderation.", 0.25)


@responses.activate
def test_job_ids_are_quoted_into_paths(sora):
    responses.get(f"{BASE}/videos/..%2Fadmin", json=video())
    sora.status("../admin")
    assert responses.calls[0].request.url == f"{BASE}/videos/..%2Fadmin"


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "code", "permanent"),
    [
        (
            400,
            {"error": {"message": "Invalid size", "type": "invalid_request_error", "param": "size", "code": None}},
            "invalid_request_error",
            True,
        ),
        (
            401,
            {"error": {"message": f"Incorrect API key provided: {KEY}.", "code": "invalid_api_key"}},
            "invalid_api_key",
            True,
        ),
        (403, {"error": {"message": "Country not supported"}}, "permission_denied", True),
        (
            404,
            {"error": {"message": "The model `sora-2` does not exist", "code": "model_not_found"}},
            "model_not_found",
            True,
        ),
        (404, {"error": {"message": "Video not found"}}, "not_found", True),
        (
            429,
            {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}},
            "insufficient_quota",
            True,
        ),
        (429, {"error": {"message": "Rate limit reached"}}, "rate_limited", False),
        (500, {"error": {"message": "Internal"}}, "server_error", False),
        (503, "<html>overloaded</html>", "server_error", False),
    ],
)
def test_error_mapping(sora, status, body, code, permanent):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.post(f"{BASE}/videos", status=status, **kwargs)
    with pytest.raises(ProviderError) as info:
        sora.submit(spec())
    error = info.value
    assert (error.code, error.permanent, error.status_code) == (code, permanent, status)
    assert KEY not in str(error)
    assert f"HTTP {status}" in error.message


@responses.activate
def test_bad_request_names_the_field(sora):
    responses.post(f"{BASE}/videos", status=400, json={"error": {"message": "Invalid size", "param": "size"}})
    with pytest.raises(ProviderError, match=r"Invalid size \(field: size\)"):
        sora.submit(spec())


@responses.activate
@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "12"}, 12.0), ({"retry-after-ms": "500"}, 0.5), ({}, None)],
)
def test_retry_after_is_honoured(sora, headers, expected):
    responses.get(f"{BASE}/videos/video_1", status=429, json={"error": {"message": "slow down"}}, headers=headers)
    with pytest.raises(ProviderError) as info:
        sora.status("video_1")
    assert info.value.retry_after == expected


@responses.activate
def test_create_failure_that_must_not_be_retried_is_uncertain(sora):
    responses.post(f"{BASE}/videos", status=500, json={"error": {"message": "x"}}, headers={"x-should-retry": "false"})
    with pytest.raises(ProviderError) as info:
        sora.submit(spec())
    assert info.value.uncertain and not info.value.permanent


@responses.activate
def test_malformed_create_answer_is_uncertain(sora):
    responses.post(f"{BASE}/videos", body="{not json")
    with pytest.raises(ProviderError) as info:
        sora.submit(spec())
    assert (info.value.code, info.value.uncertain) == ("bad_response", True)


@responses.activate
def test_create_timeout_is_uncertain(sora):
    responses.post(f"{BASE}/videos", body=requests.ReadTimeout())
    with pytest.raises(ProviderError) as info:
        sora.submit(spec())
    assert info.value.uncertain and info.value.code == "timeout"


@responses.activate
@pytest.mark.parametrize("variant", ["video", "thumbnail"])
def test_download_uses_the_authenticated_content_endpoint(sora, variant, public_dns):
    responses.get(f"{BASE}/videos/video_1/content", body=b"bytes", content_type="video/mp4")
    with sora.download("video_1", variant=variant) as download:
        assert b"".join(download.chunks) == b"bytes"
    request = responses.calls[0].request
    assert request.url.endswith(f"/videos/video_1/content?variant={variant}")
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Accept"] == "application/binary"


@responses.activate
def test_download_from_a_foreign_url_never_sends_the_key(sora, public_dns):
    responses.get("https://cdn.example.com/v.mp4", body=b"bytes")
    with sora.download("video_1", url="https://cdn.example.com/v.mp4") as download:
        list(download.chunks)
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_download_errors_use_the_openai_envelope(sora, public_dns):
    responses.get(f"{BASE}/videos/video_1/content", status=404, json={"error": {"message": "Video not found"}})
    with pytest.raises(ProviderError) as info:
        sora.download("video_1")
    assert info.value.code == "not_found" and "Video not found" in info.value.message


def test_unknown_variant_is_refused(sora):
    with pytest.raises(ProviderError) as info:
        sora.download("video_1", variant="spritesheet")
    assert info.value.permanent


@responses.activate
def test_validate_key_lists_one_video_and_delete(sora):
    responses.get(f"{BASE}/videos", json={"object": "list", "data": []})
    responses.delete(f"{BASE}/videos/video_1", json={"id": "video_1", "object": "video.deleted", "deleted": True})
    sora.validate_key()
    sora.delete("video_1")
    assert responses.calls[0].request.url == f"{BASE}/videos?limit=1"
    assert responses.calls[1].request.method == "DELETE"


def test_sora_cannot_cancel(sora):
    with pytest.raises(ProviderError) as info:
        sora.cancel("video_1")
    assert info.value.code == "unsupported" and info.value.permanent


# --- against the emulator ---------------------------------------------------------------------


@pytest.fixture
def emulated(openai_emulator):
    return SoraProvider(openai_emulator.credentials(), openai_emulator.base_url)


def test_lifecycle_against_the_emulator(openai_emulator, emulated):
    emulated.validate_key()
    job_id = emulated.submit(spec(seconds=4))
    assert emulated.status(job_id).state is JobState.QUEUED
    openai_emulator.advance(0.6)
    running = emulated.status(job_id)
    assert running.state is JobState.IN_PROGRESS and 0 < running.progress < 100
    assert running.poll_after == 0.05
    openai_emulator.advance(1)
    assert emulated.status(job_id).state is JobState.COMPLETED
    with emulated.download(job_id) as download:
        data = b"".join(download.chunks)
    assert download.content_type == "video/mp4" and data[4:8] == b"ftyp"
    with emulated.download(job_id, variant="thumbnail") as thumb:
        assert thumb.content_type == "image/webp" and b"WEBP" in b"".join(thumb.chunks)
    assert openai_emulator.last_requests["content"].headers["Accept"] == "application/binary"
    remix_id = emulated.remix(job_id, spec(prompt="now at night"))
    assert remix_id != job_id
    emulated.delete(job_id)
    with pytest.raises(ProviderError) as info:
        emulated.status(job_id)
    assert info.value.code == "not_found"
    assert openai_emulator.stats()["jobs_created"] == 2


def test_image_upload_against_the_emulator(openai_emulator, emulated):
    from tests.emulators.base import sample_image

    emulated.submit(spec(image=InputImage(data=sample_image("PNG"), content_type="image/png")))
    assert openai_emulator.stats()["jobs_created"] == 1


def test_failed_job_against_the_emulator(openai_emulator, emulated):
    job_id = emulated.submit(spec(prompt="something [fail]"))
    openai_emulator.advance(2)
    job = emulated.status(job_id)
    assert job.state is JobState.FAILED and job.error_code == "moderation_blocked"


def test_content_before_completion_is_an_error(openai_emulator, emulated):
    job_id = emulated.submit(spec())
    with pytest.raises(ProviderError) as info:
        emulated.download(job_id)
    assert info.value.code == "video_not_ready"


def test_emulator_validation_reaches_the_person(emulated):
    with pytest.raises(ProviderError) as info:
        emulated.submit(spec(size="1920x1080"))
    assert info.value.permanent and "size" in info.value.message


def test_wrong_key_against_the_emulator_never_leaks_the_key(openai_emulator):
    wrong = "fake-key-test-emulator-wrong-9999"
    provider = SoraProvider(Credentials(api_key=wrong), openai_emulator.base_url)
    with pytest.raises(ProviderError) as info:
        provider.validate_key()
    assert info.value.is_auth_error and info.value.permanent
    assert wrong not in str(info.value) and wrong not in repr(info.value)
    assert "Incorrect API key provided" in info.value.message


@pytest.mark.parametrize(
    ("fault", "code", "permanent", "retry_after"),
    [
        ({"status": 429, "headers": {"Retry-After": "2"}}, "rate_limited", False, 2.0),
        ({"status": 500}, "server_error", False, None),
        ({"status": 503}, "server_error", False, None),
        ({"status": 401}, "invalid_api_key", True, None),
    ],
)
def test_injected_faults_on_status(openai_emulator, emulated, fault, code, permanent, retry_after):
    job_id = emulated.submit(spec())
    openai_emulator.add_fault("retrieve", **fault)
    with pytest.raises(ProviderError) as info:
        emulated.status(job_id)
    assert (info.value.code, info.value.permanent, info.value.retry_after) == (code, permanent, retry_after)
    assert emulated.status(job_id).state is JobState.QUEUED  # the fault was for one request only


def test_slow_create_is_uncertain_and_created_exactly_one_job(openai_emulator, emulated, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    openai_emulator.add_fault("create", delay=1.0)
    with pytest.raises(ProviderError) as info:
        emulated.submit(spec())
    assert info.value.uncertain and info.value.code == "timeout"
    assert openai_emulator.stats()["jobs_created"] == 1


def test_malformed_json_from_the_emulator(openai_emulator, emulated):
    openai_emulator.add_fault("create", malformed=True)
    with pytest.raises(ProviderError) as info:
        emulated.submit(spec())
    assert info.value.code == "bad_response" and info.value.uncertain


def test_faults_and_stats_over_the_control_endpoint(openai_emulator, emulated):
    root = openai_emulator.root_url
    response = requests.post(
        f"{root}/_emulator/faults", json={"endpoint": "create", "status": 503, "times": 2}, timeout=5
    )
    assert response.status_code == 200
    for _ in range(2):
        with pytest.raises(ProviderError):
            emulated.submit(spec())
    emulated.submit(spec())
    stats = requests.get(f"{root}/_emulator/stats", timeout=5).json()
    assert stats == {"calls": {"create": 3}, "jobs_created": 1, "faults_pending": 0}


def test_unknown_status_from_the_emulator_keeps_polling(openai_emulator, emulated):
    job_id = emulated.submit(spec())
    openai_emulator.add_fault("retrieve", patch={"status": "rendering", "surprise": True})
    assert emulated.status(job_id).state is JobState.IN_PROGRESS


@pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")
def test_the_official_sdk_works_against_the_emulator(openai_emulator):
    """Emulator fidelity: the unmodified openai SDK (multipart create, poll, binary download)."""
    openai = pytest.importorskip("openai")
    from tests.emulators.base import sample_image

    openai_emulator.job_seconds = 0.3
    client = openai.OpenAI(base_url=openai_emulator.base_url, api_key=openai_emulator.api_key, max_retries=0)
    created = client.videos.create(
        prompt="a cat", seconds="4", size="1280x720", input_reference=("a.png", sample_image("PNG"))
    )
    assert created.status == "queued"
    finished = client.videos.create_and_poll(prompt="a cat", seconds="4", size="1280x720")
    assert finished.status == "completed" and finished.progress == 100
    assert client.videos.download_content(finished.id).read()[4:8] == b"ftyp"
    assert openai_emulator.last_requests["retrieve"].headers.get("X-Stainless-Poll-Helper") == "true"
    assert openai_emulator.stats()["jobs_created"] == 2
