"""The Gemini API adapter against the Gemini emulator: Veo and Omni from create to bytes, and every
quirk of the contract (veo.md §9-§10): the key's model listing and a model retired under a key, the
filtered result, keyed and expiring file downloads, Vertex-only fields, Google's error bodies, the
Interactions API's statuses and cancel, and the base's faults."""

from __future__ import annotations

import pytest
import requests

from apps.providers import registry
from apps.providers.base import Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.gemini import adapter as gemini_adapter
from tests.emulators.base import sample_image, sample_mp4
from tests.emulators.gemini import GeminiEmulator

PNG = InputImage(data=sample_image("PNG"), content_type="image/png")


def spec(**kwargs):
    values = {"model": "veo-3.1", "prompt": "a lighthouse at dusk", "seconds": 8, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def omni(**kwargs):
    return spec(model="gemini-omni-1.1-flash", seconds=10, **kwargs)


def finish(adapter, emulator, job):
    emulator.advance(2)
    return adapter.status(job.job_id, job_data=job.data)


def read(adapter, job, url=None):
    with adapter.download(job.job_id, url=url, job_data=job.data) as dl:
        return b"".join(dl.chunks)


# --- Veo ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "upstream"),
    [
        ({}, "veo-3.1-generate-001"),
        ({"seconds": 4, "size": "720x1280"}, "veo-3.1-generate-001"),
        ({"size": "3840x2160"}, "veo-3.1-generate-001"),
        ({"image": PNG, "seconds": 6, "negative_prompt": "blur"}, "veo-3.1-generate-001"),
        ({"model": "veo-3.1-fast", "size": "1920x1080"}, "veo-3.1-fast-generate-001"),
    ],
)
def test_veo_create_poll_download(gemini, gemini_emulator, kwargs, upstream):
    gemini.validate_key()
    job = gemini.submit(spec(**kwargs))
    assert job.job_id.startswith(f"models/{upstream}/operations/") and job.data["model"] == upstream
    assert gemini.status(job.job_id, job_data=job.data).state is JobState.IN_PROGRESS
    done = finish(gemini, gemini_emulator, job)
    assert done.state is JobState.COMPLETED and done.usage == {"videos": 1}
    url = done.output_urls[0]
    assert "/v1beta/files/" in url and url.endswith(":download?alt=media")
    assert read(gemini, job, url) == sample_mp4()
    assert read(gemini, job) == sample_mp4()  # without a URL: re-polled
    calls = gemini_emulator.stats()["calls"]
    assert calls["models"] == 1  # validate_key filled the cache; submit used it
    assert calls["create"] == 1 and calls["download"] == 2


def test_the_file_needs_the_key_and_expires_after_two_days(gemini, gemini_emulator):
    job = gemini.submit(spec())
    url = finish(gemini, gemini_emulator, job).output_urls[0]
    assert requests.get(url, timeout=5).status_code == 403  # not pre-signed
    assert requests.get(url, headers={"x-goog-api-key": "AIza-wrong"}, timeout=5).status_code == 401
    gemini_emulator.advance(2 * 24 * 3600 + 10)
    with pytest.raises(ProviderError) as info:
        read(gemini, job, url)
    assert info.value.code == "output_expired" and info.value.permanent


def test_an_inline_video_is_decoded(gemini, gemini_emulator):
    gemini_emulator.veo_inline = True
    job = gemini.submit(spec())
    done = finish(gemini, gemini_emulator, job)
    assert done.state is JobState.COMPLETED and done.output_urls == ()
    assert read(gemini, job) == sample_mp4()


def test_a_filtered_result_is_a_content_policy_failure(gemini, gemini_emulator):
    job = gemini.submit(spec(prompt="[filtered] something unsafe"))
    status = finish(gemini, gemini_emulator, job)
    assert status.state is JobState.FAILED and status.error_code == "content_policy"
    assert "Support codes: 58061214" in status.error_message and status.error_message.endswith("No charge.")
    with pytest.raises(ProviderError) as info:
        read(gemini, job)
    assert info.value.code == "not_ready" and info.value.permanent


def test_an_operation_error(gemini, gemini_emulator):
    job = gemini.submit(spec(prompt="[error] please"))
    status = finish(gemini, gemini_emulator, job)
    assert status.state is JobState.FAILED and status.error_code == "server_error"
    assert "Video generation failed" in status.error_message


def test_a_model_the_key_no_longer_lists_is_refused_before_any_create(gemini, gemini_emulator):
    gemini_emulator.listed.discard("veo-3.1-generate-001")
    with pytest.raises(ProviderError) as info:
        gemini.submit(spec())
    assert info.value.code == "model_not_available" and info.value.permanent
    assert "no longer offered to this key by the Gemini API" in info.value.message
    assert gemini_emulator.stats()["calls"].get("create") is None and gemini_emulator.jobs_created == 0
    assert "veo-3.1-generate-001" not in gemini.available_models()
    # the preview id, when a key still lists it, is used instead
    gemini_emulator.listed.add("veo-3.1-generate-preview")
    gemini_adapter.clear_models_cache()
    assert gemini.submit(spec()).data["model"] == "veo-3.1-generate-preview"


def test_a_model_retired_after_the_listing_was_cached(gemini, gemini_emulator):
    assert "veo-3.1-generate-001" in gemini.available_models()
    gemini_emulator.listed.clear()  # Google retires it without notice
    with pytest.raises(ProviderError) as info:
        gemini.submit(spec())
    error = info.value
    assert error.code == "model_not_available" and error.status_code == 404 and error.permanent
    assert "is no longer available" in error.message
    with pytest.raises(ProviderError, match="no longer offered to this key"):
        gemini.submit(spec())  # the stale listing was dropped and read afresh
    calls = gemini_emulator.stats()["calls"]
    assert calls["create"] == 1 and calls["models"] == 2


def test_the_listing_is_read_page_by_page(gemini, gemini_emulator):
    gemini_emulator.page_size = 1
    assert gemini.available_models() == {"veo-3.1-generate-001", "veo-3.1-fast-generate-001"}
    assert gemini_emulator.stats()["calls"]["models"] == 4  # three models and a text model


def test_vertex_only_fields_are_refused_by_the_gemini_api(gemini, gemini_emulator):
    body = {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 8, "generateAudio": True}}
    with pytest.raises(ProviderError) as info:
        gemini._call("POST", "/v1beta/models/veo-3.1-generate-001:predictLongRunning", json=body, creating=True)
    assert info.value.code == "invalid_request" and info.value.permanent and "generateAudio" in info.value.message
    body["parameters"] = {"durationSeconds": 4, "resolution": "1080p"}
    with pytest.raises(ProviderError, match="8 seconds"):
        gemini._call("POST", "/v1beta/models/veo-3.1-generate-001:predictLongRunning", json=body, creating=True)
    assert gemini_emulator.jobs_created == 0


# --- keys and Google's error bodies ---------------------------------------------------------


@pytest.mark.parametrize(
    ("api_key", "invalid_400", "code", "status"),
    [
        ("AIza-wrong-key-0000", False, "invalid_api_key", 401),
        ("AIza-wrong-key-0000", True, "invalid_api_key", 400),
    ],
)
def test_a_wrong_key_is_refused(gemini_emulator, settings, api_key, invalid_400, code, status):
    settings.GEMINI_BASE_URL = gemini_emulator.base_url
    gemini_emulator.api_key_invalid_400 = invalid_400
    adapter = registry.build("gemini", Credentials(api_key=api_key))
    with pytest.raises(ProviderError) as info:
        adapter.validate_key()
    assert info.value.code == code and info.value.is_auth_error and info.value.status_code == status
    assert api_key not in str(info.value)


def test_a_missing_key_is_permission_denied(gemini_emulator):
    answer = requests.get(f"{gemini_emulator.base_url}/v1beta/models", timeout=5)
    assert answer.status_code == 403 and answer.json()["error"]["status"] == "PERMISSION_DENIED"


def test_a_429_with_retry_info(gemini, gemini_emulator):
    gemini_emulator.add_google_fault(
        "create", 429, "Resource has been exhausted (e.g. check quota).", retry_delay="38s"
    )
    with pytest.raises(ProviderError) as info:
        gemini.submit(spec())
    error = info.value
    assert (error.code, error.permanent, error.retry_after, error.uncertain) == ("rate_limited", False, 38.0, False)
    assert gemini_emulator.jobs_created == 0


@pytest.mark.parametrize(("status", "uncertain"), [(500, True), (503, False)])
def test_server_errors_on_create(gemini, gemini_emulator, status, uncertain):
    gemini_emulator.add_google_fault("create", status)
    with pytest.raises(ProviderError) as info:
        gemini.submit(spec())
    assert info.value.code == "server_error" and not info.value.permanent and info.value.uncertain is uncertain


def test_a_malformed_create_answer_is_uncertain(gemini, gemini_emulator):
    gemini_emulator.add_fault("create", malformed=True)
    with pytest.raises(ProviderError) as info:
        gemini.submit(spec())
    assert info.value.code == "bad_response" and info.value.uncertain
    assert gemini_emulator.jobs_created == 1  # it was created: the engine must not resubmit blindly


def test_a_slow_create_is_uncertain(gemini, gemini_emulator, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    gemini_emulator.add_fault("create", delay=1.0)
    with pytest.raises(ProviderError) as info:
        gemini.submit(spec())
    assert info.value.uncertain and info.value.code == "timeout"


def test_a_download_cut_mid_stream(gemini, gemini_emulator):
    job = gemini.submit(spec())
    url = finish(gemini, gemini_emulator, job).output_urls[0]
    gemini_emulator.add_fault("download", truncate=1000)
    with pytest.raises(ProviderError) as info:
        read(gemini, job, url)
    assert info.value.code == "download_interrupted" and not info.value.permanent
    assert read(gemini, job, url) == sample_mp4()  # the retry succeeds


def test_polls_survive_transient_errors(gemini, gemini_emulator):
    job = gemini.submit(spec())
    gemini_emulator.add_google_fault("operation", 503)
    with pytest.raises(ProviderError) as info:
        gemini.status(job.job_id, job_data=job.data)
    assert info.value.code == "server_error" and not info.value.permanent and not info.value.uncertain
    assert finish(gemini, gemini_emulator, job).state is JobState.COMPLETED


# --- Omni (Interactions API) ------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"size": "2160x3840"}, {"image": PNG}])
def test_omni_create_poll_download(gemini, gemini_emulator, kwargs):
    gemini_emulator.omni_seconds = 7
    job = gemini.submit(omni(**kwargs))
    assert job.data == {"api": "omni", "model": "gemini-omni-1.1-flash"} and job.job_id in gemini_emulator.jobs
    assert gemini.status(job.job_id, job_data=job.data).state is JobState.QUEUED
    gemini_emulator.advance(0.5)
    assert gemini.status(job.job_id, job_data=job.data).state is JobState.IN_PROGRESS
    done = finish(gemini, gemini_emulator, job)
    assert done.state is JobState.COMPLETED and done.raw_status == "completed"
    assert done.usage["output_seconds"] == 7.0  # what Omni delivered (it picks the length)
    assert read(gemini, job, done.output_urls[0]) == sample_mp4()
    assert "models" not in gemini_emulator.stats()["calls"]  # Omni is not gated by the listing


def test_omni_inline_delivery(gemini, gemini_emulator):
    gemini_emulator.omni_inline = True
    job = gemini.submit(omni())
    done = finish(gemini, gemini_emulator, job)
    assert done.state is JobState.COMPLETED and done.output_urls == ()
    assert read(gemini, job) == sample_mp4()


@pytest.mark.parametrize(
    ("tag", "raw", "code"),
    [
        ("[fail]", "failed", "content_policy"),
        ("[incomplete]", "incomplete", "generation_failed"),
        ("[budget]", "budget_exceeded", "budget_exceeded"),
        ("[requires_action]", "requires_action", "requires_action"),
    ],
)
def test_omni_failures(gemini, gemini_emulator, tag, raw, code):
    job = gemini.submit(omni(prompt=f"{tag} a clip"))
    status = finish(gemini, gemini_emulator, job)
    assert status.state is JobState.FAILED and status.raw_status == raw and status.error_code == code


def test_omni_cancel(gemini, gemini_emulator):
    job = gemini.submit(omni())
    gemini.cancel(job.job_id, job_data=job.data)
    assert gemini.status(job.job_id, job_data=job.data).state is JobState.CANCELED
    assert finish(gemini, gemini_emulator, job).state is JobState.CANCELED


def test_the_api_revision_header_is_required(gemini_emulator, settings):
    settings.GEMINI_BASE_URL = gemini_emulator.base_url
    settings.GEMINI_API_REVISION = "1999-01-01"
    adapter = registry.build("gemini", Credentials(api_key=gemini_emulator.api_key))
    with pytest.raises(ProviderError) as info:
        adapter.submit(omni())
    assert info.value.code == "invalid_request" and "Api-Revision" in info.value.message


def test_the_emulator_speaks_the_registry_contract():
    assert GeminiEmulator.live_models == ("veo-3.1",)
    body = GeminiEmulator.validation_ok_body()
    assert gemini_adapter.GeminiProvider.long_running_ids(body["models"]) == {"veo-3.1-generate-001"}
    assert GeminiEmulator.error_body(429, "x") == {
        "error": {"code": 429, "message": "x", "status": "RESOURCE_EXHAUSTED"}
    }
