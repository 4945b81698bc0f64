"""Kling adapter: auth, envelope, mappings with ``responses``, then against the Kling emulator."""

from __future__ import annotations

import base64
import json
import re
import time

import jwt
import pytest
import responses

from apps.providers.base import Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.kling import adapter as kling_module
from apps.providers.kling.adapter import KlingProvider, aspect_ratio_for, mode_for

BASE = "https://api.kling.example.com"
AK, SK = "ak-test-unit-kling-0000", "fake-key-test-unit-kling-secret-000000000"
API_KEY = "kling-test-unit-api-0000"


@pytest.fixture
def kling():
    return KlingProvider(Credentials(api_key=API_KEY), BASE)


@pytest.fixture
def kling_jwt():
    return KlingProvider(Credentials(access_key=AK, secret_key=SK), BASE)


def ok(data):
    return {"code": 0, "message": "SUCCEED", "request_id": "r", "data": data}


def task(status="submitted", **extra):
    return {"task_id": "123", "task_status": status, "task_info": {}, "created_at": 1, "updated_at": 2, **extra}


def spec(**kwargs):
    values = {"model": "kling-v2-5-turbo", "prompt": "a red fox in snow", "seconds": 5, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def test_jwt_claims_and_caching(kling_jwt):
    before = int(time.time())
    token = kling_jwt._bearer()
    claims = jwt.decode(token, SK, algorithms=["HS256"])
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    assert claims["iss"] == AK
    assert before + 1800 <= claims["exp"] <= int(time.time()) + 1800
    assert claims["nbf"] <= before
    assert kling_jwt._bearer() == token  # cached


def test_jwt_is_renewed_before_expiry(kling_jwt, monkeypatch):
    token = kling_jwt._bearer()
    now = time.time()
    monkeypatch.setattr(kling_module.time, "time", lambda: now + 1800 - 200)  # inside the renewal margin
    renewed = kling_jwt._bearer()
    assert renewed != token
    assert jwt.decode(renewed, SK, algorithms=["HS256"], options={"verify_nbf": False})["exp"] > now + 3000


def test_an_api_key_is_sent_as_is(kling):
    assert kling._headers()["Authorization"] == f"Bearer {API_KEY}"


def test_size_mapping():
    assert (aspect_ratio_for("1280x720"), mode_for("1280x720")) == ("16:9", "std")
    assert (aspect_ratio_for("1080x1920"), mode_for("1080x1920")) == ("9:16", "pro")
    assert (aspect_ratio_for("1080x1080"), mode_for("1080x1080")) == ("1:1", "pro")
    assert (aspect_ratio_for("720x720"), mode_for("720x720")) == ("1:1", "std")


@responses.activate
def test_text_to_video_request(kling):
    responses.post(f"{BASE}/v1/videos/text2video", json=ok(task()))
    job_id = kling.submit(spec(size="1920x1080", negative_prompt="blur", client_reference="gen_abc"))
    assert job_id == "t2v:123"
    body = json.loads(responses.calls[0].request.body)
    assert body == {
        "model_name": "kling-v2-5-turbo",
        "prompt": "a red fox in snow",
        "negative_prompt": "blur",
        "mode": "pro",
        "aspect_ratio": "16:9",
        "duration": "5",
        "external_task_id": "gen_abc",
    }
    assert "cfg_scale" not in body


@responses.activate
def test_image_to_video_sends_raw_base64(kling):
    responses.post(f"{BASE}/v1/videos/image2video", json=ok(task()))
    job_id = kling.submit(
        spec(model="kling-v2-1", seconds=10, image=InputImage(data=b"\x89PNG", content_type="image/png"))
    )
    assert job_id == "i2v:123"
    body = json.loads(responses.calls[0].request.body)
    assert body["image"] == base64.b64encode(b"\x89PNG").decode()
    assert not body["image"].startswith("data:")
    assert "aspect_ratio" not in body and body["duration"] == "10" and body["mode"] == "std"


@responses.activate
def test_image_only_model_refuses_text_without_calling(kling):
    with pytest.raises(ProviderError) as info:
        kling.submit(spec(model="kling-v2-1"))
    assert info.value.permanent and len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("submitted", JobState.QUEUED),
        ("processing", JobState.IN_PROGRESS),
        ("succeed", JobState.COMPLETED),
        ("succeeded", JobState.COMPLETED),
        ("failed", JobState.FAILED),
        ("paused", JobState.IN_PROGRESS),
    ],
)
def test_status_mapping(kling, raw, state):
    responses.get(
        f"{BASE}/v1/videos/text2video/123",
        json=ok(task(raw, task_status_msg="risk control", task_result={"videos": [{"url": "https://cdn/v.mp4"}]})),
    )
    job = kling.status("t2v:123")
    assert job.state is state and job.raw_status == raw
    assert job.progress is None  # Kling documents no progress


@responses.activate
def test_status_details(kling):
    responses.get(
        f"{BASE}/v1/videos/image2video/9",
        json=ok(task("succeed", task_result={"videos": [{"id": "v", "url": "https://cdn/v.mp4", "duration": "5.1"}]})),
    )
    responses.get(f"{BASE}/v1/videos/text2video/8", json=ok(task("failed", task_status_msg="Risk control")))
    assert kling.status("i2v:9").output_urls == ("https://cdn/v.mp4",)
    failed = kling.status("t2v:8")
    assert failed.error_message == "Risk control"


@responses.activate
def test_a_bare_id_is_looked_up_on_both_endpoints(kling):
    responses.get(f"{BASE}/v1/videos/text2video/77", status=404, json={"code": 1203, "message": "not found"})
    responses.get(f"{BASE}/v1/videos/image2video/77", json=ok(task("processing", task_id="77")))
    assert kling.status("77").state is JobState.IN_PROGRESS


@responses.activate
@pytest.mark.parametrize(
    ("http_status", "code", "our_code", "permanent"),
    [
        (401, 1000, "authentication_error", True),
        (401, 1004, "authentication_error", True),
        (429, 1100, "account_error", True),
        (429, 1101, "account_in_arrears", True),
        (429, 1102, "insufficient_balance", True),
        (403, 1103, "permission_denied", True),
        (400, 1201, "invalid_request", True),
        (404, 1203, "not_found", True),
        (400, 1300, "content_policy", True),
        (400, 1301, "content_policy", True),
        (429, 1302, "rate_limited", False),
        (429, 1303, "concurrency_limit", False),
        (429, 1304, "permission_denied", True),
        (500, 5000, "server_error", False),
        (503, 5001, "server_error", False),
        (504, 5002, "server_error", False),
        (200, 1102, "insufficient_balance", True),  # HTTP 200 alone is not success
        (200, 1303, "concurrency_limit", False),
        (400, 1999, "provider_error", True),
        (502, 1999, "server_error", False),
    ],
)
def test_business_codes(kling, http_status, code, our_code, permanent):
    responses.post(
        f"{BASE}/v1/videos/text2video", status=http_status, json={"code": code, "message": "msg", "request_id": "r"}
    )
    with pytest.raises(ProviderError) as info:
        kling.submit(spec())
    error = info.value
    assert (error.code, error.permanent) == (our_code, permanent)
    assert f"code {code}" in error.message
    if code in (1302, 1303):
        assert error.retry_after >= 1.0


@responses.activate
def test_balance_exhausted_message_is_actionable(kling):
    responses.post(f"{BASE}/v1/videos/text2video", status=429, json={"code": 1102, "message": "balance not enough"})
    with pytest.raises(ProviderError, match="resource pack is used up or expired; buy or renew"):
        kling.submit(spec())


@responses.activate
def test_auth_error_never_shows_credentials(kling_jwt):
    token = kling_jwt._bearer()
    responses.get(
        re.compile(f"{BASE}/v1/videos/.*"), status=401, json={"code": 1002, "message": f"bad token {token} for {AK}"}
    )
    with pytest.raises(ProviderError) as info:
        kling_jwt.validate_key()
    assert info.value.is_auth_error
    for secret in (token, AK, SK):
        assert secret not in str(info.value)


@responses.activate
def test_non_envelope_body(kling):
    responses.post(f"{BASE}/v1/videos/text2video", body="<html>ok</html>")
    responses.get(f"{BASE}/v1/videos/text2video/1", status=502, body="<html>bad gateway</html>")
    with pytest.raises(ProviderError) as info:
        kling.submit(spec())
    assert info.value.code == "bad_response" and info.value.uncertain
    with pytest.raises(ProviderError) as info:
        kling.status("t2v:1")
    assert info.value.code == "server_error" and not info.value.permanent


@responses.activate
def test_find_by_reference(kling):
    responses.get(f"{BASE}/v1/videos/text2video/gen_1", status=404, json={"code": 1203, "message": "not found"})
    responses.get(
        f"{BASE}/v1/videos/image2video/gen_1",
        json=ok(task("processing", task_id="555", task_info={"external_task_id": "gen_1"})),
    )
    responses.get(f"{BASE}/v1/videos/text2video/gen_2", status=404, json={"code": 1203, "message": "not found"})
    responses.get(f"{BASE}/v1/videos/image2video/gen_2", status=404, json={"code": 1203, "message": "not found"})
    assert kling.find_by_reference("gen_1") == "i2v:555"
    assert kling.find_by_reference("gen_2") is None


@responses.activate
def test_download_uses_the_output_url(kling, public_dns):
    responses.get(
        f"{BASE}/v1/videos/text2video/1",
        json=ok(task("succeed", task_result={"videos": [{"url": "https://cdn.kling.example/v.mp4"}]})),
    )
    responses.get("https://cdn.kling.example/v.mp4", body=b"mp4")
    with kling.download("t2v:1") as download:
        assert b"".join(download.chunks) == b"mp4"
    assert "Authorization" not in responses.calls[1].request.headers


def test_kling_cannot_cancel_or_thumbnail(kling):
    for call in (lambda: kling.cancel("t2v:1"), lambda: kling.download("t2v:1", variant="thumbnail")):
        with pytest.raises(ProviderError) as info:
            call()
        assert info.value.code == "unsupported"


# --- against the emulator ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["api_key", "jwt"])
def test_lifecycle_against_the_emulator(kling_emulator, shape):
    creds = kling_emulator.credentials() if shape == "api_key" else kling_emulator.jwt_credentials()
    provider = KlingProvider(creds, kling_emulator.base_url)
    provider.validate_key()
    job_id = provider.submit(spec(client_reference="gen_lifecycle"))
    assert job_id.startswith("t2v:")
    assert provider.status(job_id).state is JobState.QUEUED
    kling_emulator.advance(0.6)
    assert provider.status(job_id).raw_status == "processing"
    kling_emulator.advance(1)
    done = provider.status(job_id)
    assert done.state is JobState.COMPLETED and done.output_urls
    with provider.download(job_id) as download:
        assert b"".join(download.chunks)[4:8] == b"ftyp"
    assert kling_emulator.stats()["jobs_created"] == 1


def test_image_to_video_against_the_emulator(kling_emulator):
    from tests.emulators.base import sample_image

    provider = KlingProvider(kling_emulator.credentials(), kling_emulator.base_url)
    job_id = provider.submit(
        spec(model="kling-v2-1", image=InputImage(data=sample_image("PNG"), content_type="image/png"))
    )
    assert job_id.startswith("i2v:")
    kling_emulator.advance(2)
    assert provider.status(job_id).state is JobState.COMPLETED


def test_expired_jwt_is_refused_by_the_emulator(kling_emulator):
    provider = KlingProvider(kling_emulator.jwt_credentials(), kling_emulator.base_url)
    provider.validate_key()
    kling_emulator.advance(1801)  # the provider's clock moves past the token's exp
    with pytest.raises(ProviderError) as info:
        provider.validate_key()
    assert info.value.is_auth_error and "code 1004" in info.value.message


def test_wrong_secret_is_refused_by_the_emulator(kling_emulator):
    provider = KlingProvider(
        Credentials(access_key=kling_emulator.access_key, secret_key="fake-key-test-emulator-kling-wrong-0000000"),
        kling_emulator.base_url,
    )
    with pytest.raises(ProviderError) as info:
        provider.validate_key()
    assert info.value.is_auth_error and "fake-key-test-emulator-kling-wrong-0000000" not in str(info.value)


@pytest.mark.parametrize(
    ("code", "http_status", "our_code", "permanent"),
    [
        (1102, None, "insufficient_balance", True),
        (1301, None, "content_policy", True),
        (1302, None, "rate_limited", False),
        (1303, None, "concurrency_limit", False),
        (5001, None, "server_error", False),
        (1102, 200, "insufficient_balance", True),
    ],
)
def test_injected_business_codes(kling_emulator, code, http_status, our_code, permanent):
    provider = KlingProvider(kling_emulator.credentials(), kling_emulator.base_url)
    kling_emulator.inject_code(code, endpoint="create", http_status=http_status)
    with pytest.raises(ProviderError) as info:
        provider.submit(spec())
    assert (info.value.code, info.value.permanent) == (our_code, permanent)
    assert kling_emulator.stats()["jobs_created"] == 0
    provider.submit(spec())  # the fault applied to one request only


def test_concurrency_limit_of_the_emulator(kling_emulator):
    kling_emulator.max_concurrency = 1
    provider = KlingProvider(kling_emulator.credentials(), kling_emulator.base_url)
    provider.submit(spec())
    with pytest.raises(ProviderError) as info:
        provider.submit(spec())
    assert info.value.code == "concurrency_limit" and info.value.retry_after >= 1.0


def test_uncertain_submit_is_reconciled_not_repeated(kling_emulator, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.3
    provider = KlingProvider(kling_emulator.credentials(), kling_emulator.base_url)
    kling_emulator.add_fault("create", delay=1.0)
    with pytest.raises(ProviderError) as info:
        provider.submit(spec(client_reference="gen_uncertain"))
    assert info.value.uncertain
    job_id = provider.find_by_reference("gen_uncertain")
    assert job_id is not None and job_id.startswith("t2v:")
    assert provider.find_by_reference("gen_never_sent") is None
    assert kling_emulator.stats()["jobs_created"] == 1
    # a blind resubmit would be refused: external_task_id must be unique
    with pytest.raises(ProviderError) as dup:
        provider.submit(spec(client_reference="gen_uncertain"))
    assert dup.value.code == "invalid_request"


def test_failed_task_against_the_emulator(kling_emulator):
    provider = KlingProvider(kling_emulator.credentials(), kling_emulator.base_url)
    job_id = provider.submit(spec(prompt="[fail] fox"))
    kling_emulator.advance(2)
    job = provider.status(job_id)
    assert job.state is JobState.FAILED and "risk control" in job.error_message


def test_slow_and_malformed_answers(kling_emulator, settings):
    provider = KlingProvider(kling_emulator.credentials(), kling_emulator.base_url)
    kling_emulator.add_fault("create", malformed=True)
    with pytest.raises(ProviderError) as info:
        provider.submit(spec())
    assert info.value.code == "bad_response" and info.value.uncertain
    kling_emulator.add_fault("query", status=500)
    with pytest.raises(ProviderError) as info:
        provider.status("t2v:1")
    assert info.value.code == "server_error" and not info.value.permanent


def test_new_design_status_spelling_is_tolerated(kling_emulator):
    provider = KlingProvider(kling_emulator.credentials(), kling_emulator.base_url)
    job_id = provider.submit(spec())
    kling_emulator.advance(2)
    kling_emulator.add_fault("query", patch={"task_status": "succeeded"})
    assert provider.status(job_id).state is JobState.COMPLETED
