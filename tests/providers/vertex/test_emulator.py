"""The Vertex adapter against the Vertex emulator: from the signed token exchange to downloaded
bytes for every model, inline and through Cloud Storage, and every quirk of the contract (veo.md
§9-§10): the POST poll, filtered results, expiring tokens, retired models, Google's errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from apps.providers import registry
from apps.providers.base import Credentials, GenerationSpec, InputImage, JobState, ProviderError
from tests.emulators.base import sample_image, sample_mp4
from tests.emulators.vertex import new_private_key, pem

PNG = InputImage(data=sample_image("PNG"), content_type="image/png")


def spec(**kwargs):
    values = {"model": "veo-3.1", "prompt": "a lighthouse at dusk", "seconds": 8, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def run(adapter, emulator, job):
    assert adapter.status(job.job_id, job_data=job.data).state is JobState.IN_PROGRESS
    emulator.advance(2)
    return adapter.status(job.job_id, job_data=job.data)


def read(adapter, job, url=None):
    with adapter.download(job.job_id, url=url, job_data=job.data) as download:
        return b"".join(download.chunks)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"seconds": 4, "size": "720x1280", "audio": False},
        {"size": "1920x1080", "seed": 7, "negative_prompt": "blur"},
        {"size": "3840x2160"},
        {"image": PNG},
        {"model": "veo-3.1-fast", "seconds": 6},
        {"model": "veo-3.1-lite", "size": "1080x1920"},
    ],
)
def test_create_poll_download_inline(vertex, vertex_emulator, kwargs):
    vertex.validate_key()
    job = vertex.submit(spec(**kwargs))
    assert job.job_id in vertex_emulator.jobs and "/operations/" in job.job_id
    done = run(vertex, vertex_emulator, job)
    assert done.state is JobState.COMPLETED and done.output_urls == ()
    assert done.usage["delivery"] == "inline"
    assert read(vertex, job) == sample_mp4()
    assert vertex_emulator.calls["fetch"] == 4  # validation, two polls, the download's re-read
    assert len(vertex_emulator.assertions) == 1  # one token for all of it


def test_create_poll_download_through_cloud_storage(vertex_emulator, vertex_settings):
    fields = {**vertex_emulator.key_fields(), "storage_uri": "gs://tenant-bucket/veo/"}
    adapter = registry.build("vertex", Credentials(**fields))
    job = adapter.submit(spec(client_reference="gen_123"))
    sent = vertex_emulator.last_requests["create"].json()
    assert sent["parameters"]["storageUri"] == "gs://tenant-bucket/veo/gen_123/"
    done = run(adapter, vertex_emulator, job)
    (uri,) = done.output_urls
    assert uri.startswith("gs://tenant-bucket/veo/gen_123/") and uri.endswith("/sample_0.mp4")
    assert read(adapter, job, url=uri) == sample_mp4()
    assert read(adapter, job) == sample_mp4()  # without the stored URI: re-read, then GCS
    assert vertex_emulator.calls["storage"] == 2
    vertex_emulator.bucket.clear()  # the tenant's retention deleted it
    with pytest.raises(ProviderError) as info:
        read(adapter, job, url=uri)
    assert info.value.code == "output_expired" and info.value.permanent


def test_the_emulator_verifies_the_signature(vertex_emulator, vertex_settings):
    doc = vertex_emulator.account(private_key=pem(new_private_key()))  # right account and key id, wrong key
    adapter = registry.build("vertex", Credentials(service_account_json=json.dumps(doc), location="us-central1"))
    with pytest.raises(ProviderError) as info:
        adapter.validate_key()
    assert info.value.code == "authentication_error" and info.value.is_auth_error
    assert "Invalid JWT Signature" in info.value.message
    assert vertex_emulator.assertions == [] and vertex_emulator.calls["fetch"] == 0


def test_an_expired_token_is_refreshed_once(vertex, vertex_emulator):
    job = vertex.submit(spec())
    vertex_emulator.expire_tokens()  # Google's side says the token expired before our margin did
    vertex_emulator.advance(2)
    assert vertex.status(job.job_id).state is JobState.COMPLETED
    assert len(vertex_emulator.assertions) == 2


def test_short_lived_tokens_are_renewed_before_they_expire(vertex_emulator, vertex_settings, monkeypatch):
    from apps.providers.vertex import adapter as module

    vertex_emulator.token_ttl = 120  # the adapter keeps it for 60 s (half, under the 300 s margin)
    adapter = registry.build("vertex", Credentials(**vertex_emulator.key_fields()))
    clock = [5000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    adapter.validate_key()
    clock[0] += 61
    adapter.validate_key()
    assert len(vertex_emulator.assertions) == 2 and vertex_emulator.stats()["calls"].get("fetch") == 2


def test_a_filtered_result_is_a_failed_generation(vertex, vertex_emulator):
    job = vertex.submit(spec(prompt="[filtered] a famous person"))
    status = run(vertex, vertex_emulator, job)
    assert status.state is JobState.FAILED and status.error_code == "content_policy"
    assert "Support codes: 58061214" in status.error_message and "No charge" in status.error_message
    with pytest.raises(ProviderError) as info:
        read(vertex, job)
    assert info.value.code == "content_policy" and info.value.permanent


def test_an_operation_error_is_a_failed_generation(vertex, vertex_emulator):
    job = vertex.submit(spec(prompt="[fail] a clip"))
    status = run(vertex, vertex_emulator, job)
    assert status.state is JobState.FAILED and status.error_code == "generation_failed"
    assert "INTERNAL" in status.error_message


def test_retired_model_is_not_found(vertex, vertex_emulator, monkeypatch):
    model = vertex._catalog_model(spec())
    retired = dataclasses.replace(model, provider_model="veo-3.0-generate-001")
    monkeypatch.setattr(type(vertex), "_catalog_model", lambda self, s: retired)
    with pytest.raises(ProviderError) as info:
        vertex.submit(spec())
    assert info.value.code == "model_not_available" and info.value.permanent
    assert "no longer available" in info.value.message and vertex_emulator.jobs_created == 0


def test_another_project_is_permission_denied(vertex_emulator, vertex_settings):
    doc = vertex_emulator.account(project_id="someone-elses-project")
    adapter = registry.build("vertex", Credentials(service_account_json=json.dumps(doc)))
    with pytest.raises(ProviderError) as info:
        adapter.validate_key()
    assert info.value.code == "permission_denied" and info.value.is_auth_error and info.value.permanent


@pytest.mark.parametrize(
    ("endpoint", "status", "code", "permanent", "retry_after"),
    [
        ("create", 429, "rate_limited", False, 38.0),
        ("create", 403, "permission_denied", True, None),
        ("create", 503, "server_error", False, None),
        ("create", 400, "invalid_request", True, None),
        ("token", 503, "server_error", False, None),
    ],
)
def test_googles_errors(vertex, vertex_emulator, endpoint, status, code, permanent, retry_after):
    vertex_emulator.add_google_fault(
        endpoint, status, "Quota exceeded for aiplatform.googleapis.com", retry_delay="38s" if status == 429 else None
    )
    with pytest.raises(ProviderError) as info:
        vertex.submit(spec())
    error = info.value
    assert (error.code, error.permanent, error.retry_after, error.status_code) == (code, permanent, retry_after, status)
    assert not error.uncertain and vertex_emulator.jobs_created == 0
    assert vertex.submit(spec()).job_id in vertex_emulator.jobs  # the fault was one-off


def test_a_poll_fault_is_transient_and_the_next_poll_works(vertex, vertex_emulator):
    job = vertex.submit(spec())
    vertex_emulator.add_google_fault("fetch", 503, "The service is currently unavailable.")
    with pytest.raises(ProviderError) as info:
        vertex.status(job.job_id)
    assert info.value.code == "server_error" and not info.value.permanent and not info.value.uncertain
    vertex_emulator.add_fault("fetch", malformed=True)
    with pytest.raises(ProviderError) as info:
        vertex.status(job.job_id)
    assert info.value.code == "bad_response" and not info.value.permanent
    vertex_emulator.advance(2)
    assert vertex.status(job.job_id).state is JobState.COMPLETED


def test_an_unknown_operation_is_not_found(vertex):
    with pytest.raises(ProviderError) as info:
        vertex.status(
            "projects/mr-emulator-project/locations/us-central1/publishers/google/models/veo-3.1-generate-001/operations/nope"
        )
    assert info.value.code == "not_found" and info.value.permanent


def test_a_download_broken_mid_stream_is_transient(vertex, vertex_emulator):
    job = vertex.submit(spec())
    vertex_emulator.advance(2)
    vertex_emulator.add_fault("fetch", truncate=20000)
    with pytest.raises(ProviderError) as info:
        read(vertex, job)
    assert not info.value.permanent
    assert read(vertex, job) == sample_mp4()
