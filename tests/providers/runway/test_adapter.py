"""Runway adapter: wire format and mappings with ``responses``, then against the Runway emulator."""

from __future__ import annotations

import base64
import json

import pytest
import requests
import responses

from apps.providers.base import Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.runway.adapter import RunwayProvider, progress_percent, ratio_for

BASE = "https://api.runway.example.com"
KEY = "rw-test-unit-runway-0000"


@pytest.fixture
def runway():
    return RunwayProvider(Credentials(api_key=KEY), BASE)


def spec(**kwargs):
    values = {"model": "gen4.5", "prompt": "a bunny eats a carrot", "seconds": 5, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


@responses.activate
def test_text_to_video_request(runway):
    responses.post(f"{BASE}/v1/text_to_video", json={"id": "task-1"})
    assert runway.submit(spec(seed=7)) == "task-1"
    request = responses.calls[0].request
    assert json.loads(request.body) == {
        "model": "gen4.5",
        "ratio": "1280:720",
        "duration": 5,
        "promptText": "a bunny eats a carrot",
        "seed": 7,
    }
    assert request.headers["X-Runway-Version"] == "2024-11-06"
    assert request.headers["Authorization"] == f"Bearer {KEY}"


@responses.activate
def test_image_to_video_with_bytes_sends_a_data_uri(runway):
    responses.post(f"{BASE}/v1/image_to_video", json={"id": "task-2"})
    image = InputImage(data=b"\xff\xd8jpeg", content_type="image/jpeg")
    runway.submit(spec(model="gen4_turbo", size="960x960", image=image))
    body = json.loads(responses.calls[0].request.body)
    assert body["promptImage"] == "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8jpeg").decode()
    assert body["ratio"] == "960:960" and body["model"] == "gen4_turbo"


@responses.activate
def test_image_to_video_with_a_url(runway):
    responses.post(f"{BASE}/v1/image_to_video", json={"id": "task-3"})
    runway.submit(spec(model="gen3a_turbo", size="1280x768", image=InputImage(url="https://img.example.com/a.png")))
    body = json.loads(responses.calls[0].request.body)
    assert body["promptImage"] == "https://img.example.com/a.png" and body["ratio"] == "1280:768"


@responses.activate
def test_image_only_models_refuse_text_only_without_calling(runway):
    with pytest.raises(ProviderError) as info:
        runway.submit(spec(model="gen4_turbo"))
    assert info.value.permanent and "image" in info.value.message
    assert len(responses.calls) == 0


def test_unsupported_image_type_and_huge_images_are_refused(runway):
    with pytest.raises(ProviderError, match="JPEG, PNG or WebP"):
        runway.submit(spec(image=InputImage(data=b"GIF89a", content_type="image/gif")))
    with pytest.raises(ProviderError, match="5 MB"):
        runway.submit(spec(image=InputImage(data=b"x" * (4 * 1024 * 1024), content_type="image/png")))


def test_ratio_and_progress_helpers():
    assert ratio_for("1584x672") == "1584:672"
    with pytest.raises(ProviderError):
        ratio_for("16:9")
    assert progress_percent(0.42) == 42
    assert progress_percent(1.0) == 100
    assert progress_percent(57) == 57  # a 0-100 scale is tolerated
    assert progress_percent(250) == 100
    assert progress_percent(None) is None and progress_percent("half") is None


@responses.activate
@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("PENDING", JobState.QUEUED),
        ("THROTTLED", JobState.QUEUED),
        ("QUEUED", JobState.QUEUED),
        ("RUNNING", JobState.IN_PROGRESS),
        ("SUCCEEDED", JobState.COMPLETED),
        ("FAILED", JobState.FAILED),
        ("CANCELLED", JobState.CANCELED),
        ("CANCELED", JobState.CANCELED),
        ("WARMING", JobState.IN_PROGRESS),
    ],
)
def test_status_mapping(runway, raw, state):
    responses.get(
        f"{BASE}/v1/tasks/task-1",
        json={
            "id": "task-1",
            "status": raw,
            "createdAt": "2026-09-19T12:00:00Z",
            "progress": 0.5,
            "output": ["https://cdn.example.com/o.mp4"],
            "failure": "nope",
            "failureCode": "SAFETY.INPUT.TEXT",
            "updatedAt": "2026-09-19T12:00:05Z",
            "estimatedDurationSeconds": 30,
        },
    )
    job = runway.status("task-1")
    assert job.state is state and job.raw_status == raw


@responses.activate
def test_running_task_reports_percent_progress(runway):
    responses.get(f"{BASE}/v1/tasks/t", json={"id": "t", "status": "RUNNING", "progress": 0.25})
    responses.get(f"{BASE}/v1/tasks/u", json={"id": "u", "status": "RUNNING", "progress": 60})
    assert runway.status("t").progress == 25
    assert runway.status("u").progress == 60


@responses.activate
def test_succeeded_task_lists_outputs_and_failed_task_its_reason(runway):
    responses.get(f"{BASE}/v1/tasks/ok", json={"id": "ok", "status": "SUCCEEDED", "output": ["https://c/1.mp4"]})
    responses.get(
        f"{BASE}/v1/tasks/bad",
        json={"id": "bad", "status": "FAILED", "failure": "Flagged by moderation", "failureCode": "SAFETY.INPUT.TEXT"},
    )
    responses.get(f"{BASE}/v1/tasks/empty", json={"id": "empty", "status": "SUCCEEDED", "output": []})
    done = runway.status("ok")
    assert done.output_urls == ("https://c/1.mp4",) and done.progress == 100
    failed = runway.status("bad")
    assert (failed.error_code, failed.error_message) == ("SAFETY.INPUT.TEXT", "Flagged by moderation")
    assert runway.status("empty").state is JobState.FAILED


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "code", "permanent"),
    [
        (400, {"error": "Invalid parameter 'promptText'"}, "invalid_request", True),
        (
            400,
            {
                "error": "Validation failed",
                "issues": [{"code": "x", "path": ["ratio"], "message": "bad ratio"}],
                "docUrl": "https://docs",
            },
            "invalid_request",
            True,
        ),
        (401, {"error": "Invalid API key"}, "invalid_api_key", True),
        (403, {"error": "Forbidden"}, "permission_denied", True),
        (404, {"error": "Not found"}, "not_found", True),
        (405, {"error": "Method not allowed"}, "invalid_request", True),
        (429, {"error": "Daily limit reached"}, "rate_limited", False),
        (502, {"error": "Bad gateway"}, "server_error", False),
        (503, {"error": "Shedding load"}, "server_error", False),
        (504, {"error": "Overloaded"}, "server_error", False),
    ],
)
def test_error_mapping(runway, status, body, code, permanent):
    responses.post(f"{BASE}/v1/text_to_video", status=status, json=body)
    with pytest.raises(ProviderError) as info:
        runway.submit(spec())
    assert (info.value.code, info.value.permanent) == (code, permanent)
    assert body["error"] in info.value.message


@responses.activate
def test_error_issues_are_spelled_out(runway):
    responses.post(
        f"{BASE}/v1/text_to_video",
        status=400,
        json={"error": "Validation failed", "issues": [{"path": ["ratio"], "message": "bad ratio"}]},
    )
    with pytest.raises(ProviderError, match=r"ratio: bad ratio"):
        runway.submit(spec())


@responses.activate
def test_cancel_and_delete(runway):
    responses.delete(f"{BASE}/v1/tasks/t1", status=204)
    responses.delete(f"{BASE}/v1/tasks/gone", status=404, json={"error": "Task not found"})
    responses.delete(f"{BASE}/v1/tasks/boom", status=500, json={"error": "x"})
    runway.cancel("t1")
    runway.cancel("gone")  # already cancelled or deleted: fine
    with pytest.raises(ProviderError):
        runway.delete("boom")


@responses.activate
def test_download_rereads_the_task_for_a_fresh_url(runway, public_dns):
    responses.get(
        f"{BASE}/v1/tasks/t1", json={"id": "t1", "status": "SUCCEEDED", "output": ["https://cdn.example.com/o.mp4"]}
    )
    responses.get("https://cdn.example.com/o.mp4", body=b"mp4")
    with runway.download("t1") as download:
        assert b"".join(download.chunks) == b"mp4"
    assert "Authorization" not in responses.calls[1].request.headers


@responses.activate
def test_download_refuses_private_output_urls(runway):
    with pytest.raises(ProviderError) as info:
        runway.download("t1", url="https://169.254.169.254/latest/meta-data")
    assert info.value.code == "unsafe_url"
    assert len(responses.calls) == 0


@responses.activate
def test_download_of_an_unfinished_task(runway):
    responses.get(f"{BASE}/v1/tasks/t1", json={"id": "t1", "status": "RUNNING", "progress": 0.1})
    with pytest.raises(ProviderError) as info:
        runway.download("t1")
    assert info.value.code == "not_ready" and not info.value.permanent


# --- against the emulator ---------------------------------------------------------------------


@pytest.fixture
def emulated(runway_emulator):
    return RunwayProvider(runway_emulator.credentials(), runway_emulator.base_url)


def test_lifecycle_against_the_emulator(runway_emulator, emulated):
    emulated.validate_key()
    task_id = emulated.submit(spec())
    assert emulated.status(task_id).state is JobState.QUEUED
    runway_emulator.advance(0.6)
    running = emulated.status(task_id)
    assert running.state is JobState.IN_PROGRESS and 0 < running.progress < 100
    runway_emulator.advance(1)
    done = emulated.status(task_id)
    assert done.state is JobState.COMPLETED and done.output_urls
    with emulated.download(task_id) as download:
        data = b"".join(download.chunks)
    assert data[4:8] == b"ftyp"
    assert runway_emulator.stats()["jobs_created"] == 1


def test_image_to_video_against_the_emulator(runway_emulator, emulated):
    from tests.emulators.base import sample_image

    image = InputImage(data=sample_image("PNG"), content_type="image/png")
    emulated.submit(spec(model="gen4_turbo", size="1584x672", image=image))
    assert runway_emulator.last_requests["create"].path == "/v1/image_to_video"


def test_emulator_requires_the_version_header(runway_emulator):
    response = requests.get(
        f"{runway_emulator.base_url}/v1/organization",
        headers={"Authorization": f"Bearer {runway_emulator.api_key}"},
        timeout=5,
    )
    assert response.status_code == 400 and "X-Runway-Version" in response.json()["error"]


def test_emulator_validation_reaches_the_person(emulated):
    with pytest.raises(ProviderError) as info:
        emulated.submit(spec(size="960x960"))  # gen4.5 text to video takes two ratios only
    assert info.value.permanent and "ratio" in info.value.message


def test_throttled_then_running(runway_emulator, emulated):
    runway_emulator.add_fault("create", throttle=5.0)
    task_id = emulated.submit(spec())
    throttled = emulated.status(task_id)
    assert (throttled.state, throttled.raw_status) == (JobState.QUEUED, "THROTTLED")
    runway_emulator.advance(5.5)
    assert emulated.status(task_id).raw_status == "RUNNING"


def test_concurrency_limit_parks_tasks_in_throttled(runway_emulator, emulated):
    runway_emulator.max_concurrency = 1
    first = emulated.submit(spec())
    second = emulated.submit(spec())
    assert emulated.status(first).raw_status == "PENDING"
    assert emulated.status(second).raw_status == "THROTTLED"
    runway_emulator.advance(1.5)
    assert emulated.status(first).state is JobState.COMPLETED
    assert emulated.status(second).raw_status in ("PENDING", "RUNNING")


def test_failed_task_against_the_emulator(runway_emulator, emulated):
    task_id = emulated.submit(spec(prompt="[fail] please"))
    runway_emulator.advance(2)
    job = emulated.status(task_id)
    assert job.state is JobState.FAILED and job.error_code == "SAFETY.INPUT.TEXT"


@pytest.mark.parametrize("then_404", [False, True])
def test_cancel_against_the_emulator(runway_emulator, emulated, then_404):
    runway_emulator.cancel_then_404 = then_404
    task_id = emulated.submit(spec())
    emulated.cancel(task_id)
    if then_404:
        with pytest.raises(ProviderError) as info:
            emulated.status(task_id)
        assert info.value.code == "not_found"
    else:
        assert emulated.status(task_id).state is JobState.CANCELED
    assert runway_emulator.stats()["calls"]["delete"] == 1


def test_progress_on_a_hundred_scale(runway_emulator, emulated):
    runway_emulator.progress_scale = 100.0
    task_id = emulated.submit(spec())
    runway_emulator.advance(0.6)
    assert 30 <= emulated.status(task_id).progress <= 70


def test_expired_output_url_fails_permanently(runway_emulator, emulated):
    runway_emulator.url_ttl = 10
    task_id = emulated.submit(spec())
    runway_emulator.advance(2)
    url = emulated.status(task_id).output_urls[0]
    runway_emulator.advance(60)
    with pytest.raises(ProviderError) as info:
        emulated.download(task_id, url=url)
    assert info.value.code == "download_failed" and info.value.status_code == 403
    with emulated.download(task_id) as download:  # a fresh URL from the task works again
        assert b"".join(download.chunks)[4:8] == b"ftyp"


@pytest.mark.parametrize(
    ("fault", "code", "permanent"),
    [
        ({"status": 401, "body": {"error": "Invalid API key"}}, "invalid_api_key", True),
        ({"status": 429, "body": {"error": "Daily cap"}, "headers": {"Retry-After": "30"}}, "rate_limited", False),
        ({"status": 500}, "server_error", False),
        ({"malformed": True}, "bad_response", False),
    ],
)
def test_injected_faults(runway_emulator, emulated, fault, code, permanent):
    runway_emulator.add_fault("create", **fault)
    with pytest.raises(ProviderError) as info:
        emulated.submit(spec())
    assert (info.value.code, info.value.permanent) == (code, permanent)
    if code == "rate_limited":
        assert info.value.retry_after == 30.0
    if code == "bad_response":
        assert info.value.uncertain  # the task exists, but we could not read its id
        assert runway_emulator.stats()["jobs_created"] == 1


def test_slow_status_is_a_transient_timeout(runway_emulator, emulated, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    task_id = emulated.submit(spec())
    runway_emulator.add_fault("task", delay=1.0)
    with pytest.raises(ProviderError) as info:
        emulated.status(task_id)
    assert info.value.code == "timeout" and not info.value.uncertain and not info.value.permanent


def test_wrong_key_against_the_emulator(runway_emulator):
    provider = RunwayProvider(Credentials(api_key="rw-test-emulator-wrong-1111"), runway_emulator.base_url)
    with pytest.raises(ProviderError) as info:
        provider.validate_key()
    assert info.value.is_auth_error and "rw-test-emulator-wrong-1111" not in str(info.value)
