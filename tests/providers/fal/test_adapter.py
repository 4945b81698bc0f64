"""fal adapter, wire format with ``responses``: the queue client, every status and error form,
every model's input mapping and refusals, the download and the webhook signature."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from decimal import Decimal
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from apps.providers import http
from apps.providers.base import (
    CallbackDelivery,
    CallbackRejected,
    Credentials,
    GenerationSpec,
    InputImage,
    JobState,
    ProviderError,
    SubmittedJob,
)
from apps.providers.fal import adapter as fal_adapter
from apps.providers.fal import catalog as fal_catalog
from apps.providers.fal.adapter import FalProvider

QUEUE = "https://queue.fal.example"
API = "https://api.fal.example"
JWKS_URL = "https://rest.fal.example/.well-known/jwks.json"
ALPHA_JWKS_URL = "https://rest.alpha.fal.example/.well-known/jwks.json"
SECRET = "fal-secret-unit-0000abcd"
KEY = f"fal-key-id-unit:{SECRET}"
REQ = "024ca5b1-45d3-4afd-883e-ad3abe2a1c4d"
URL_IMAGE = InputImage(url="https://img.example.com/frame.png")
PNG = b"\x89PNG\r\n\x1a\nfake-png"
BYTES_IMAGE = InputImage(data=PNG, content_type="image/png")
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()


def make(options: dict | None = None) -> FalProvider:
    return FalProvider(Credentials(api_key=KEY), QUEUE, options=options or {"API_BASE_URL": API, "JWKS_URL": JWKS_URL})


@pytest.fixture
def fal():
    return make()


def spec(**kwargs) -> GenerationSpec:
    values = {"model": "veo-3.1", "prompt": "a red fox in fresh snow", "seconds": 8, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def urls(app: str, request_id: str = REQ, host: str = QUEUE) -> dict[str, str]:
    base = f"{host}/{app}/requests/{request_id}"
    return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}


def queued(app: str, request_id: str = REQ) -> dict:
    return {"request_id": request_id, "gateway_request_id": request_id, **urls(app, request_id), "status": "IN_QUEUE"}


JOB = urls("fal-ai/kling-video")


# --- credentials and key validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [(KEY, True), ("a:b", True), ("no-colon-in-this-key", False), (":secret-only", False), ("key-id-only:", False)],
)
def test_check_credentials_wants_the_id_secret_form(value, ok):
    errors = FalProvider.check_credentials(Credentials(api_key=value))
    assert (errors == {}) is ok
    if not ok:
        assert set(errors) == {"api_key"} and "key_id:key_secret" in errors["api_key"]
        assert value not in errors["api_key"]


def test_flags_and_settings():
    assert FalProvider.supports_callbacks and FalProvider.callback_verification == "signature"
    assert FalProvider.supports_cancel and not FalProvider.supports_delete and not FalProvider.supports_lookup
    assert FalProvider.supplier_kind == "aggregator"
    assert FalProvider.default_base_url == "https://queue.fal.run"
    assert {s.name: s.default for s in FalProvider.extra_settings} == {
        "API_BASE_URL": "https://api.fal.ai",
        "JWKS_URL": "https://rest.fal.ai/.well-known/jwks.json",
    }
    assert [f.name for f in FalProvider.key_fields] == ["api_key"] and FalProvider.key_fields[0].secret


def test_registry_reads_the_settings(settings):
    from apps.providers import registry

    settings.FAL_BASE_URL = "https://queue.fal.example/"
    settings.FAL_API_BASE_URL = "https://api.fal.example"
    settings.FAL_JWKS_URL = "https://jwks.fal.example/k.json"
    adapter = registry.build("fal", Credentials(api_key=KEY))
    assert adapter.base_url == "https://queue.fal.example"
    assert dict(adapter.options) == {
        "API_BASE_URL": "https://api.fal.example",
        "JWKS_URL": "https://jwks.fal.example/k.json",
    }


@responses.activate
def test_validate_key_asks_the_platform_api_with_the_key(fal):
    responses.get(f"{API}/v1/models/pricing", json={"prices": []})
    assert fal.validate_key() is None
    request = responses.calls[0].request
    assert request.headers["Authorization"] == f"Key {KEY}"
    assert parse_qs(urlsplit(request.url).query) == {"endpoint_id": ["fal-ai/veo3.1"]}


@pytest.mark.parametrize(
    ("queue", "api_setting", "asked"),
    [
        ("https://queue.fal.run", "https://api.fal.ai", "https://api.fal.ai"),
        ("https://fal-proxy.example", "https://api.fal.ai", "https://fal-proxy.example"),  # one proxy for all
        ("https://fal-proxy.example", "https://api.fal.example", "https://api.fal.example"),  # set: kept
    ],
)
@responses.activate
def test_which_host_validates_the_key(queue, api_setting, asked):
    responses.get(f"{asked}/v1/models/pricing", json={"prices": []})
    FalProvider(Credentials(api_key=KEY), queue, options={"API_BASE_URL": api_setting}).validate_key()
    assert responses.calls[0].request.url.startswith(f"{asked}/v1/models/pricing?")


@pytest.mark.parametrize(("status", "code"), [(401, "invalid_api_key"), (403, "permission_denied")])
@responses.activate
def test_validate_key_refusals_mark_the_key_invalid(fal, status, code):
    responses.get(f"{API}/v1/models/pricing", status=status, json={"detail": f"Invalid key {KEY}"})
    with pytest.raises(ProviderError) as info:
        fal.validate_key()
    error = info.value
    assert error.code == code and error.permanent and error.is_auth_error and error.status_code == status
    assert KEY not in str(error) and SECRET not in str(error) and SECRET not in repr(error)


# --- submit: the request, the answer, the URL rule -------------------------------------------------


@responses.activate
def test_submit_posts_to_the_full_endpoint_and_keeps_the_returned_urls(fal):
    responses.post(f"{QUEUE}/fal-ai/kling-video/v3/pro/text-to-video", json=queued("fal-ai/kling-video"))
    job = fal.submit(spec(model="kling-v3", seconds=5, size="1920x1080"))
    assert job == SubmittedJob(job_id=REQ, data={**JOB, "endpoint_id": "fal-ai/kling-video/v3/pro/text-to-video"})
    assert "/v3/" not in job.data["status_url"]  # the sub-path is dropped (quirk 1), kept as given
    request = responses.calls[0].request
    assert request.headers["Authorization"] == f"Key {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.headers["X-Fal-Object-Lifecycle-Preference"]) == {"expiration_duration_seconds": 86400}
    assert "fal_webhook" not in (urlsplit(request.url).query or "")


@responses.activate
def test_a_callback_url_becomes_fal_webhook(fal):
    hook = "https://mr.example.com/hooks/fal/gen_1/tok?x=1"
    responses.post(f"{QUEUE}/fal-ai/veo3.1", json=queued("fal-ai/veo3.1"))
    fal.submit(spec(callback_url=hook))
    assert parse_qs(urlsplit(responses.calls[0].request.url).query) == {"fal_webhook": [hook]}


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "IN_QUEUE"},
        {"request_id": REQ},
        {"request_id": REQ, **urls("fal-ai/veo3.1", host="https://evil.example")},
        {"request_id": REQ, **urls("fal-ai/veo3.1", host="http://queue.fal.example")},
        [],
        "not json",
    ],
)
@responses.activate
def test_an_unusable_submit_answer_is_uncertain(fal, answer):
    body = answer if isinstance(answer, str) else json.dumps(answer)
    responses.post(f"{QUEUE}/fal-ai/veo3.1", body=body)
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert info.value.code == "bad_response" and info.value.uncertain and not info.value.permanent


# --- every model's input mapping -------------------------------------------------------------------

# (case, spec fields, endpoint, exact JSON body)
MAPPINGS = [
    (
        "veo t2v 720p",
        {"model": "veo-3.1"},
        "fal-ai/veo3.1",
        {
            "prompt": "a red fox in fresh snow",
            "duration": "8s",
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "generate_audio": True,
            "auto_fix": False,
        },
    ),
    (
        "veo t2v portrait 1080p silent, seed and negative prompt",
        {"model": "veo-3.1", "seconds": 4, "size": "1080x1920", "audio": False, "seed": 7, "negative_prompt": "blur"},
        "fal-ai/veo3.1",
        {
            "prompt": "a red fox in fresh snow",
            "duration": "4s",
            "resolution": "1080p",
            "aspect_ratio": "9:16",
            "generate_audio": False,
            "negative_prompt": "blur",
            "seed": 7,
            "auto_fix": False,
        },
    ),
    (
        "veo i2v 4k from a URL",
        {"model": "veo-3.1", "seconds": 6, "size": "3840x2160", "image": URL_IMAGE},
        "fal-ai/veo3.1/image-to-video",
        {
            "prompt": "a red fox in fresh snow",
            "duration": "6s",
            "resolution": "4k",
            "aspect_ratio": "16:9",
            "generate_audio": True,
            "image_url": URL_IMAGE.url,
        },
    ),
    (
        "veo fast t2v",
        {"model": "veo-3.1-fast", "size": "720x1280"},
        "fal-ai/veo3.1/fast",
        {
            "prompt": "a red fox in fresh snow",
            "duration": "8s",
            "resolution": "720p",
            "aspect_ratio": "9:16",
            "generate_audio": True,
            "auto_fix": False,
        },
    ),
    (
        "veo fast i2v from bytes",
        {"model": "veo-3.1-fast", "seconds": 4, "size": "1920x1080", "image": BYTES_IMAGE, "audio": False},
        "fal-ai/veo3.1/fast/image-to-video",
        {
            "prompt": "a red fox in fresh snow",
            "duration": "4s",
            "resolution": "1080p",
            "aspect_ratio": "16:9",
            "generate_audio": False,
            "image_url": PNG_URI,
        },
    ),
    (
        "kling t2v pro",
        {"model": "kling-v3", "seconds": 10, "size": "1920x1080", "negative_prompt": "text"},
        "fal-ai/kling-video/v3/pro/text-to-video",
        {
            "prompt": "a red fox in fresh snow",
            "duration": "10",
            "aspect_ratio": "16:9",
            "generate_audio": True,
            "negative_prompt": "text",
        },
    ),
    (
        "kling t2v standard square silent",
        {"model": "kling-v3", "seconds": 3, "size": "720x720", "audio": False},
        "fal-ai/kling-video/v3/standard/text-to-video",
        {"prompt": "a red fox in fresh snow", "duration": "3", "aspect_ratio": "1:1", "generate_audio": False},
    ),
    (
        "kling i2v: start_image_url, no aspect ratio",
        {"model": "kling-v3", "seconds": 15, "size": "1280x720", "image": BYTES_IMAGE},
        "fal-ai/kling-video/v3/standard/image-to-video",
        {"prompt": "a red fox in fresh snow", "duration": "15", "generate_audio": True, "start_image_url": PNG_URI},
    ),
    (
        "seedance t2v 480p with a seed",
        {"model": "seedance-2.0", "seconds": 4, "size": "864x480", "seed": 99},
        "bytedance/seedance-2.0/text-to-video",
        {
            "prompt": "a red fox in fresh snow",
            "duration": "4",
            "resolution": "480p",
            "aspect_ratio": "16:9",
            "generate_audio": True,
            "seed": 99,
        },
    ),
    (
        "seedance i2v 1080p square silent",
        {"model": "seedance-2.0", "seconds": 15, "size": "1440x1440", "image": URL_IMAGE, "audio": False},
        "bytedance/seedance-2.0/image-to-video",
        {
            "prompt": "a red fox in fresh snow",
            "duration": "15",
            "resolution": "1080p",
            "aspect_ratio": "1:1",
            "generate_audio": False,
            "image_url": URL_IMAGE.url,
        },
    ),
    (
        "hailuo t2v standard 10 s",
        {"model": "hailuo-2.3", "seconds": 10, "size": "1366x768"},
        "fal-ai/minimax/hailuo-2.3/standard/text-to-video",
        {"prompt": "a red fox in fresh snow", "duration": "10"},
    ),
    (
        "hailuo t2v pro: no duration field",
        {"model": "hailuo-2.3", "seconds": 6, "size": "1920x1080"},
        "fal-ai/minimax/hailuo-2.3/pro/text-to-video",
        {"prompt": "a red fox in fresh snow"},
    ),
    (
        "hailuo i2v standard",
        {"model": "hailuo-2.3", "seconds": 6, "size": "1366x768", "image": BYTES_IMAGE},
        "fal-ai/minimax/hailuo-2.3/standard/image-to-video",
        {"prompt": "a red fox in fresh snow", "duration": "6", "image_url": PNG_URI},
    ),
    (
        "h3 t2v: integer duration, 2K",
        {"model": "minimax-h3", "seconds": 5, "size": "2560x1440"},
        "minimax/h3/text-to-video",
        {"prompt": "a red fox in fresh snow", "duration": 5, "resolution": "2K", "aspect_ratio": "16:9"},
    ),
    (
        "h3 i2v: the ratio follows the image",
        {"model": "minimax-h3", "seconds": 12, "size": "1440x2560", "image": URL_IMAGE},
        "minimax/h3/image-to-video",
        {"prompt": "a red fox in fresh snow", "duration": 12, "resolution": "2K", "image_url": URL_IMAGE.url},
    ),
    (
        "wan t2v: integer duration, seed, negative prompt",
        {"model": "wan-2.7", "seconds": 2, "size": "960x960", "seed": 2147483647, "negative_prompt": "blur"},
        "fal-ai/wan/v2.7/text-to-video",
        {
            "prompt": "a red fox in fresh snow",
            "duration": 2,
            "resolution": "720p",
            "aspect_ratio": "1:1",
            "negative_prompt": "blur",
            "seed": 2147483647,
        },
    ),
    (
        "wan i2v 1080p",
        {"model": "wan-2.7", "seconds": 15, "size": "1920x1080", "image": BYTES_IMAGE},
        "fal-ai/wan/v2.7/image-to-video",
        {"prompt": "a red fox in fresh snow", "duration": 15, "resolution": "1080p", "image_url": PNG_URI},
    ),
    (
        "luma t2v 10 s portrait 540p",
        {"model": "luma-ray-3.2", "seconds": 10, "size": "540x960"},
        "luma/agent/ray/v3.2/text-to-video",
        {"prompt": "a red fox in fresh snow", "duration": "10s", "resolution": "540p", "aspect_ratio": "9:16"},
    ),
    (
        "luma i2v from a URL",
        {"model": "luma-ray-3.2", "seconds": 5, "size": "1080x1080", "image": URL_IMAGE},
        "luma/agent/ray/v3.2/image-to-video",
        {
            "prompt": "a red fox in fresh snow",
            "duration": "5s",
            "resolution": "1080p",
            "aspect_ratio": "1:1",
            "image_url": URL_IMAGE.url,
        },
    ),
]


@pytest.mark.parametrize(("case", "fields", "endpoint", "body"), MAPPINGS, ids=[m[0] for m in MAPPINGS])
@responses.activate
def test_every_model_maps_its_input(fal, case, fields, endpoint, body):
    app = "/".join(endpoint.split("/")[:2])
    responses.post(f"{QUEUE}/{endpoint}", json=queued(app))
    job = fal.submit(spec(**fields))
    sent = json.loads(responses.calls[0].request.body)
    assert sent == body
    # exact types, not only equal values ("8s" vs 8, 5 vs "5", True vs 1)
    assert {k: type(v) for k, v in sent.items()} == {k: type(v) for k, v in body.items()}
    assert job.job_id == REQ and job.data == {**urls(app), "endpoint_id": endpoint}


def test_every_catalog_model_has_both_modes_and_a_mapping_for_every_size():
    assert {m.id for m in fal_catalog.MODELS} == {
        "veo-3.1", "veo-3.1-fast", "kling-v3", "seedance-2.0", "hailuo-2.3", "minimax-h3", "wan-2.7", "luma-ray-3.2",
    }  # fmt: skip
    for model in fal_catalog.MODELS:
        assert set(model.extra["endpoints"]) == {"t2v", "i2v"}, model.id
        assert set(model.extra["sizes"]) == set(model.sizes), model.id
        assert model.extra["image_field"] in ("image_url", "start_image_url")
        assert model.extra["duration"] in ("suffix_s", "string", "integer")


# --- refusals before anything is sent ---------------------------------------------------------------

REFUSALS = [
    ("unknown model", {"model": "no-such-model"}, "model_not_available", "no mapping"),
    ("veo duration", {"seconds": 5}, "invalid_request", "durations of 4, 6, 8"),
    ("veo size", {"size": "1024x1024"}, "invalid_request", "sizes"),
    ("veo fast has no 4k price", {"model": "veo-3.1-fast", "size": "3840x2160"}, "invalid_request", "sizes"),
    ("kling takes no seed", {"model": "kling-v3", "seconds": 5, "seed": 3}, "invalid_request", "seed"),
    (
        "seedance takes no negative prompt",
        {"model": "seedance-2.0", "seconds": 5, "negative_prompt": "x"},
        "invalid_request",
        "negative prompt",
    ),
    (
        "hailuo 1080p is 6 s only",
        {"model": "hailuo-2.3", "seconds": 10, "size": "1920x1080"},
        "invalid_request",
        "10 s",
    ),
    (
        "hailuo is silent",
        {"model": "hailuo-2.3", "seconds": 6, "size": "1366x768", "audio": True},
        "invalid_request",
        "silent",
    ),
    ("wan always has audio", {"model": "wan-2.7", "seconds": 5, "audio": False}, "invalid_request", "always"),
    (
        "h3 always has audio",
        {"model": "minimax-h3", "seconds": 5, "size": "2560x1440", "audio": False},
        "invalid_request",
        "always",
    ),
    ("wan seed range", {"model": "wan-2.7", "seconds": 5, "seed": 2147483648}, "invalid_request", "2147483647"),
    (
        "luma 10 s from an image needs keyframes",
        {"model": "luma-ray-3.2", "seconds": 10, "image": URL_IMAGE},
        "invalid_request",
        "5 s",
    ),
    (
        "luma needs a public image URL",
        {"model": "luma-ray-3.2", "seconds": 5, "image": BYTES_IMAGE},
        "invalid_request",
        "public https URL",
    ),
    (
        "gif images",
        {"image": InputImage(data=b"GIF89a", content_type="image/gif")},
        "invalid_request",
        "JPEG, PNG or WebP",
    ),
    ("empty image", {"image": InputImage(data=b"", content_type="image/png")}, "invalid_request", "empty"),
    ("empty prompt", {"prompt": "  "}, "invalid_request", "prompt"),
]


@pytest.mark.parametrize(("case", "fields", "code", "words"), REFUSALS, ids=[r[0] for r in REFUSALS])
@responses.activate
def test_what_a_model_cannot_do_is_refused_before_submitting(fal, case, fields, code, words):
    with pytest.raises(ProviderError) as info:
        fal.submit(spec(**fields))
    assert info.value.code == code and info.value.permanent
    assert words in info.value.message
    assert len(responses.calls) == 0


# --- status -------------------------------------------------------------------------------------


@responses.activate
def test_queued_and_running(fal):
    responses.get(JOB["status_url"], status=202, json={"status": "IN_QUEUE", "queue_position": 3})
    status = fal.status(REQ, job_data=JOB)
    assert (status.state, status.progress, status.raw_status) == (JobState.QUEUED, 0, "IN_QUEUE")
    responses.replace(responses.GET, JOB["status_url"], status=202, json={"status": "IN_PROGRESS", "logs": None})
    status = fal.status(REQ, job_data=JOB)
    assert (status.state, status.raw_status, status.output_urls) == (JobState.IN_PROGRESS, "IN_PROGRESS", ())
    assert all(call.request.headers["Authorization"] == f"Key {KEY}" for call in responses.calls)
    assert [call.request.url for call in responses.calls] == [JOB["status_url"]] * 2


@responses.activate
def test_completed_reads_the_result_and_what_was_billed(fal):
    responses.get(
        JOB["status_url"],
        json={"status": "COMPLETED", "metrics": {"inference_time": 41.5}, "error": None, "error_type": None},
    )
    video = "https://v3b.fal.media/files/b/0a8d04e2/out.mp4"
    responses.get(
        JOB["response_url"],
        json={"video": {"url": video, "content_type": "video/mp4"}, "seed": 5},
        headers={"x-fal-billable-units": "5", "x-fal-request-id": REQ},
    )
    status = fal.status(REQ, job_data=JOB)
    assert (status.state, status.progress, status.output_urls) == (JobState.COMPLETED, 100, (video,))
    assert status.usage == {"request_id": REQ, "inference_time": 41.5, "billable_units": "5"}
    assert [call.request.url for call in responses.calls] == [JOB["status_url"], JOB["response_url"]]


RUNNER_GONE = (503, {"detail": "Runner disconnected", "error_type": "runner_disconnected"}, "Runner disconnected")
FLAGGED = (
    422,
    {"detail": [{"loc": ["body"], "msg": "output flagged", "type": "content_policy_violation"}]},
    "output flagged",
)
TOO_LONG = (422, {"detail": [{"loc": ["body", "prompt"], "msg": "too long", "type": "value_error"}]}, "too long")


@pytest.mark.parametrize(
    ("error_type", "result", "state", "code"),
    [
        ("runner_disconnected", RUNNER_GONE, JobState.FAILED, "generation_failed"),
        (None, FLAGGED, JobState.FAILED, "content_policy"),  # only the result's body tells
        (None, TOO_LONG, JobState.FAILED, "invalid_request"),
        (None, "unreachable", JobState.FAILED, "generation_failed"),  # the status's word stands
        ("content_policy_violation", None, JobState.FAILED, "content_policy"),
        ("bad_request", None, JobState.FAILED, "invalid_request"),
        ("client_cancelled", None, JobState.CANCELED, "canceled"),
    ],
)
@responses.activate
def test_completed_with_an_error_is_not_a_success(fal, error_type, result, state, code):
    responses.get(JOB["status_url"], json={"status": "COMPLETED", "error": "Runner gone", "error_type": error_type})
    if result == "unreachable":
        responses.get(JOB["response_url"], body=requests.ConnectionError("reset"))
    elif result is not None:
        responses.get(JOB["response_url"], status=result[0], json=result[1], headers={"x-fal-request-id": REQ})
    status = fal.status(REQ, job_data=JOB)
    assert (status.state, status.error_code) == (state, code)
    assert "Runner gone" in status.error_message and status.output_urls == ()
    if isinstance(result, tuple):
        assert result[2] in status.error_message  # the model's own words
    # the type on the status is precise enough: the result is not fetched
    assert len(responses.calls) == (1 if result is None else 2)


@pytest.mark.parametrize(
    ("result_status", "body", "headers", "code"),
    [
        (
            422,
            {"detail": [{"loc": ["body"], "msg": "output flagged", "type": "content_policy_violation"}]},
            {},
            "content_policy",
        ),
        (
            422,
            {"detail": [{"loc": ["body", "prompt"], "msg": "too long", "type": "value_error"}]},
            {},
            "invalid_request",
        ),
        (
            503,
            {"detail": "Runner disconnected", "error_type": "runner_disconnected"},
            {"x-fal-request-id": REQ},
            "generation_failed",
        ),
        (500, {"detail": "boom"}, {"x-fal-request-id": REQ}, "generation_failed"),
    ],
)
@responses.activate
def test_a_result_that_carries_an_error_fails_the_job(fal, result_status, body, headers, code):
    responses.get(JOB["status_url"], json={"status": "COMPLETED", "error": None})
    responses.get(JOB["response_url"], status=result_status, json=body, headers=headers)
    status = fal.status(REQ, job_data=JOB)
    assert (status.state, status.error_code) == (JobState.FAILED, code)
    assert status.error_message


@pytest.mark.parametrize(
    ("result_status", "headers", "code", "permanent"),
    [
        (502, {}, "server_error", False),  # the ingress: fal never answered
        (429, {"Retry-After": "4"}, "rate_limited", False),
        (401, {}, "invalid_api_key", True),
    ],
)
@responses.activate
def test_a_result_fetch_that_did_not_reach_the_job_raises(fal, result_status, headers, code, permanent):
    responses.get(JOB["status_url"], json={"status": "COMPLETED", "error": None})
    responses.get(JOB["response_url"], status=result_status, body="<html>nginx</html>", headers=headers)
    with pytest.raises(ProviderError) as info:
        fal.status(REQ, job_data=JOB)
    assert (info.value.code, info.value.permanent) == (code, permanent)
    assert info.value.retry_after == (4.0 if result_status == 429 else None)


@responses.activate
def test_a_result_without_a_video_fails(fal):
    responses.get(JOB["status_url"], json={"status": "COMPLETED"})
    responses.get(JOB["response_url"], json={"images": []})
    status = fal.status(REQ, job_data=JOB)
    assert (status.state, status.error_code) == (JobState.FAILED, "no_output")


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("FAILED", JobState.FAILED),
        ("CANCELLED", JobState.CANCELED),
        ("CANCELED", JobState.CANCELED),
        ("NEW", JobState.IN_PROGRESS),
    ],
)
@responses.activate
def test_statuses_outside_the_sdk_enum(fal, raw, state):
    responses.get(JOB["status_url"], json={"status": raw})
    assert fal.status(REQ, job_data=JOB).state is state


@pytest.mark.parametrize(
    ("job_data", "code"),
    [
        (None, "bad_job_data"),
        ({}, "bad_job_data"),
        ({"status_url": "https://evil.example/fal-ai/x/requests/1/status"}, "unsafe_url"),
        ({"status_url": "https://queue.fal.example:8443/fal-ai/x/requests/1/status"}, "unsafe_url"),
        ({"status_url": "http://queue.fal.example/fal-ai/x/requests/1/status"}, "unsafe_url"),
    ],
)
@responses.activate
def test_stored_urls_must_be_on_the_queue_host(fal, job_data, code):
    with pytest.raises(ProviderError) as info:
        fal.status(REQ, job_data=job_data)
    assert info.value.code == code and info.value.permanent
    with pytest.raises(ProviderError):
        fal.cancel(REQ, job_data=job_data)
    assert len(responses.calls) == 0  # the key went nowhere


@responses.activate
def test_status_errors(fal):
    responses.get(JOB["status_url"], status=404, json={"detail": "Request not found"})
    with pytest.raises(ProviderError) as info:
        fal.status(REQ, job_data=JOB)
    assert info.value.code == "not_found" and info.value.permanent
    responses.replace(responses.GET, JOB["status_url"], status=200, body="not json")
    with pytest.raises(ProviderError) as info:
        fal.status(REQ, job_data=JOB)
    assert info.value.code == "bad_response" and not info.value.permanent


# --- errors -----------------------------------------------------------------------------------------

# (status, body, headers, code, permanent)
ERRORS = [
    (400, {"detail": "Bad input"}, {}, "invalid_request", True),
    (400, {"detail": "Bad input", "error_type": "bad_request"}, {}, "invalid_request", True),
    (400, {"detail": "Bad input"}, {"X-Fal-Needs-Retry": "true"}, "invalid_request", False),
    (404, {"detail": "Not found"}, {}, "not_found", True),
    (408, {"detail": "slow"}, {}, "server_error", False),
    (409, {"detail": "conflict"}, {}, "server_error", False),
    (
        422,
        {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]},
        {},
        "invalid_request",
        True,
    ),
    (
        422,
        {"detail": [{"loc": ["body", "prompt"], "msg": "flagged", "type": "content_policy_violation"}]},
        {},
        "content_policy",
        True,
    ),
    (422, {"detail": "a plain string detail"}, {"X-Fal-Retryable": "true"}, "invalid_request", True),
    (429, {"detail": "slow down"}, {"Retry-After": "3"}, "rate_limited", False),
    (499, {"detail": "gone", "error_type": "client_cancelled"}, {}, "request_canceled", True),
    (500, {"detail": "boom", "error_type": "internal_error"}, {}, "server_error", False),
    (500, {"detail": "boom"}, {"X-Fal-Error-Type": "runner_server_error"}, "server_error", False),
    (502, "<html><body>502 Bad Gateway</body></html>", {}, "server_error", False),
    (
        503,
        {"detail": "busy", "error_type": "runner_scheduling_failure"},
        {"X-Fal-Retryable": "false"},
        "server_error",
        True,
    ),
    (503, {"detail": "busy"}, {"X-Fal-Needs-Retry": "false", "X-Fal-Retryable": "true"}, "server_error", True),
    (504, {"detail": "late", "error_type": "request_timeout"}, {"X-Fal-Request-Timeout-Type": "user"}, "timeout", True),
    (504, {"detail": "late", "error_type": "request_timeout"}, {}, "timeout", False),
    (504, {"detail": "cold", "error_type": "startup_timeout"}, {}, "server_error", False),
]


@pytest.mark.parametrize(("status", "body", "headers", "code", "permanent"), ERRORS)
@responses.activate
def test_error_forms_are_classified(fal, status, body, headers, code, permanent):
    kwargs = {"body": body} if isinstance(body, str) else {"json": body}
    responses.get(f"{API}/v1/models/pricing", status=status, headers={"Retry-After": "3", **headers}, **kwargs)
    with pytest.raises(ProviderError) as info:
        fal.validate_key()
    error = info.value
    assert (error.code, error.permanent, error.status_code) == (code, permanent, status)
    assert error.retry_after == (None if permanent else 3.0)
    assert not error.uncertain  # not a submit


def test_validation_details_reach_the_person(fal):
    body = {
        "detail": [
            {"loc": ["body", "duration"], "msg": "value is not a valid enumeration member", "type": "value_error"},
            {"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"},
        ]
    }
    with responses.RequestsMock() as mocked:
        mocked.get(f"{API}/v1/models/pricing", status=422, json=body)
        with pytest.raises(ProviderError) as info:
            fal.validate_key()
    assert "body.duration: value is not a valid enumeration member; body.prompt: field required" in info.value.message


@pytest.mark.parametrize(
    ("status", "body", "headers", "code", "permanent", "uncertain"),
    [
        (404, {"detail": "Application not found"}, {}, "model_not_available", True, False),
        (500, {"detail": "boom"}, {"x-fal-request-id": REQ}, "server_error", False, True),  # reached fal
        (
            503,
            {"detail": "busy"},
            {"x-fal-request-id": REQ, "X-Fal-Error-Type": "runner_scheduling_failure"},
            "server_error",
            False,
            True,
        ),
        (502, {"detail": "bad gateway"}, {}, "server_error", False, False),  # the ingress: never reached fal
        (
            504,
            {"detail": "late", "error_type": "request_timeout"},
            {"x-fal-request-id": REQ, "X-Fal-Request-Timeout-Type": "user"},
            "timeout",
            True,
            False,
        ),
        (422, {"detail": [{"loc": ["body"], "msg": "bad"}]}, {"x-fal-request-id": REQ}, "invalid_request", True, False),
    ],
)
@responses.activate
def test_submit_errors_say_whether_a_job_may_exist(fal, status, body, headers, code, permanent, uncertain):
    responses.post(f"{QUEUE}/fal-ai/veo3.1", status=status, json=body, headers=headers)
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert (info.value.code, info.value.permanent, info.value.uncertain) == (code, permanent, uncertain)


@responses.activate
def test_a_submit_timeout_after_sending_is_uncertain(fal):
    responses.post(f"{QUEUE}/fal-ai/veo3.1", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ProviderError) as info:
        fal.submit(spec())
    assert info.value.uncertain and not info.value.permanent and info.value.code == "timeout"


@responses.activate
def test_an_echoed_key_is_scrubbed(fal):
    responses.get(
        f"{API}/v1/models/pricing",
        status=422,
        json={"detail": [{"loc": ["header", KEY], "msg": f"bad key {KEY} / {SECRET}", "type": "value_error"}]},
    )
    with pytest.raises(ProviderError) as info:
        fal.validate_key()
    assert KEY not in str(info.value) and SECRET not in str(info.value) and "***" in str(info.value)


def _raw_response(status: int, content: bytes, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = content
    response.headers = CaseInsensitiveDict(headers)
    response.url = f"{API}/v1/models/pricing"
    return response


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    status=st.integers(min_value=300, max_value=599),
    body=st.one_of(
        st.binary(max_size=64),
        JSONISH.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"detail": JSONISH, "error_type": JSONISH}).map(lambda v: json.dumps(v).encode()),
        st.just(json.dumps({"detail": [{"loc": ["body"], "msg": f"bad key {KEY}"}]}).encode()),
        st.just(json.dumps({"detail": f"your secret is {SECRET}", "error_type": "bad_request"}).encode()),
    ),
    headers=st.dictionaries(
        st.sampled_from(
            ["X-Fal-Retryable", "X-Fal-Needs-Retry", "X-Fal-Error-Type", "x-fal-request-id", "Retry-After"]
        ),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_ :", max_size=12),
        max_size=3,
    ),
)
def test_error_parsing_survives_any_body(status, body, headers):
    fal = make()
    with mock.patch.object(http, "request", return_value=_raw_response(status, body, headers)):
        with pytest.raises(ProviderError) as info:
            fal.validate_key()
        with pytest.raises(ProviderError):
            fal.submit(spec())
    assert info.value.status_code == status and isinstance(info.value.permanent, bool)
    assert SECRET not in str(info.value) and len(info.value.message) < 700


# --- cancel -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "answer"), [(202, "CANCELLATION_REQUESTED"), (200, "OK"), (404, "NOT_FOUND")])
@responses.activate
def test_cancel_accepts_what_fal_accepts(fal, status, answer):
    responses.put(JOB["cancel_url"], status=status, json={"status": answer})
    assert fal.cancel(REQ, job_data=JOB) is None
    assert responses.calls[0].request.method == "PUT"
    assert responses.calls[0].request.headers["Authorization"] == f"Key {KEY}"


@responses.activate
def test_cancel_of_a_completed_request_is_refused(fal):
    responses.put(JOB["cancel_url"], status=400, json={"status": "ALREADY_COMPLETED"})
    with pytest.raises(ProviderError) as info:
        fal.cancel(REQ, job_data=JOB)
    assert info.value.code == "already_completed" and info.value.permanent


@responses.activate
def test_cancel_errors(fal):
    responses.put(JOB["cancel_url"], status=503, body="<html>upstream</html>")
    with pytest.raises(ProviderError) as info:
        fal.cancel(REQ, job_data=JOB)
    assert info.value.code == "server_error" and not info.value.permanent
    responses.replace(responses.PUT, JOB["cancel_url"], status=202, json={"status": "MAYBE"})
    with pytest.raises(ProviderError) as info:
        fal.cancel(REQ, job_data=JOB)
    assert info.value.code == "bad_response"


# --- download -----------------------------------------------------------------------------------------

CDN = "https://v3b.fal.media/files/b/0a8d04e2/out.mp4"


@responses.activate
def test_download_streams_the_cdn_url(fal, public_dns):
    responses.get(CDN, body=b"mp4-bytes", content_type="video/mp4")
    with fal.download(REQ, url=CDN, job_data=JOB) as download:
        assert b"".join(download.chunks) == b"mp4-bytes"
    assert download.content_type == "video/mp4"
    assert "Authorization" not in responses.calls[0].request.headers  # the CDN URL is public


@responses.activate
def test_download_without_a_url_reads_the_result(fal, public_dns):
    responses.get(JOB["status_url"], json={"status": "COMPLETED"})
    responses.get(JOB["response_url"], json={"video": {"url": CDN}})
    responses.get(CDN, body=b"fresh")
    with fal.download(REQ, job_data=JOB) as download:
        assert b"".join(download.chunks) == b"fresh"


@responses.activate
def test_download_of_an_unfinished_request_is_not_ready(fal):
    responses.get(JOB["status_url"], status=202, json={"status": "IN_PROGRESS"})
    with pytest.raises(ProviderError) as info:
        fal.download(REQ, job_data=JOB)
    assert info.value.code == "not_ready" and not info.value.permanent


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [
        (404, "output_expired", True),
        (410, "output_expired", True),
        (503, "download_failed", False),
        (403, "download_failed", True),
    ],
)
@responses.activate
def test_download_errors(fal, public_dns, status, code, permanent):
    responses.get(CDN, status=status, body=b"gone")
    with pytest.raises(ProviderError) as info:
        fal.download(REQ, url=CDN, job_data=JOB)
    assert (info.value.code, info.value.permanent, info.value.status_code) == (code, permanent, status)


def test_download_refuses_private_hosts_and_thumbnails(fal, monkeypatch):
    monkeypatch.setattr(http, "_resolve", lambda host, port: ["10.0.0.7"])
    with pytest.raises(ProviderError) as info:
        fal.download(REQ, url="https://cdn.internal.example/x.mp4", job_data=JOB)
    assert info.value.code == "unsafe_url"
    with pytest.raises(ProviderError) as info:
        fal.download(REQ, variant="thumbnail", job_data=JOB)
    assert info.value.code == "unsupported"


# --- webhook signatures ------------------------------------------------------------------------------


class Signer:
    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()

    def jwk(self, kid: str = "k1") -> dict:
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), "kid": kid}

    def headers(self, body: bytes, *, request_id: str = REQ, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        message = f"{request_id}\nuser-1\n{stamp}\n{hashlib.sha256(body).hexdigest()}".encode()
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": "user-1",
            "X-Fal-Webhook-Timestamp": stamp,
            "X-Fal-Webhook-Signature": self.key.sign(message).hex(),
        }


BODY = json.dumps({"request_id": REQ, "status": "OK", "payload": {"video": {"url": CDN}}, "error": None}).encode()


@pytest.fixture
def signer():
    return Signer()


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(fal_adapter.JWKS, "clock", lambda: now[0])
    return now


@responses.activate
def test_a_genuine_webhook_names_its_request_and_the_keys_are_cached(fal, signer, clock):
    stale = Signer()
    responses.get(JWKS_URL, json={"keys": [stale.jwk("old"), {"kty": "RSA", "n": "x"}, signer.jwk()]})
    assert fal.verify_callback(headers=signer.headers(BODY), body=BODY) == CallbackDelivery(job_id=REQ)
    lowered = {k.lower(): v for k, v in signer.headers(BODY).items()}  # header names are case-insensitive
    assert fal.verify_callback(headers=lowered, body=BODY).job_id == REQ
    assert len(responses.calls) == 1  # one fetch of the key set
    clock[0] += 24 * 3600 + 1
    fal.verify_callback(headers=signer.headers(BODY), body=BODY)
    assert len(responses.calls) == 2  # older than 24 h: fetched again
    assert "Authorization" not in responses.calls[0].request.headers


@pytest.mark.parametrize(
    "spoil",
    ["forged", "tampered body", "stale", "future", "missing header", "not hex", "short", "other request", "not json"],
)
@responses.activate
def test_webhooks_that_are_not_genuine_are_rejected(fal, signer, clock, spoil):
    responses.get(JWKS_URL, json={"keys": [signer.jwk()]})
    body = BODY
    headers = signer.headers(body)
    if spoil == "forged":
        headers = Signer().headers(body)
    elif spoil == "tampered body":
        body = BODY.replace(b'"OK"', b'"ERROR"')
    elif spoil == "stale":
        headers = signer.headers(body, timestamp=int(time.time()) - 301)
    elif spoil == "future":
        headers = signer.headers(body, timestamp=int(time.time()) + 301)
    elif spoil == "missing header":
        del headers["X-Fal-Webhook-User-Id"]
    elif spoil == "not hex":
        headers["X-Fal-Webhook-Signature"] = "zz" * 64
    elif spoil == "short":
        headers["X-Fal-Webhook-Signature"] = headers["X-Fal-Webhook-Signature"][:64]
    elif spoil == "other request":
        body = json.dumps({"request_id": "another", "status": "OK"}).encode()
        headers = signer.headers(body)
    elif spoil == "not json":
        body = b"<xml/>"
        headers = signer.headers(body)
    with pytest.raises(CallbackRejected):
        fal.verify_callback(headers=headers, body=body)


@responses.activate
def test_a_rotated_key_is_fetched_once_but_not_more_than_once_a_minute(fal, clock):
    old, new = Signer(), Signer()
    responses.get(JWKS_URL, json={"keys": [old.jwk("k1")]})
    assert fal.verify_callback(headers=old.headers(BODY), body=BODY).job_id == REQ
    responses.replace(responses.GET, JWKS_URL, json={"keys": [new.jwk("k2"), old.jwk("k1")]})
    # within a minute of the last fetch: an unknown key is rejected without hammering the key set
    clock[0] += 30
    with pytest.raises(CallbackRejected):
        fal.verify_callback(headers=new.headers(BODY), body=BODY)
    assert len(responses.calls) == 1
    clock[0] += 31
    assert fal.verify_callback(headers=new.headers(BODY), body=BODY).job_id == REQ  # refetched once
    assert len(responses.calls) == 2
    with pytest.raises(CallbackRejected):  # a key nobody published: one refetch at most, then no
        fal.verify_callback(headers=Signer().headers(BODY), body=BODY)
    assert len(responses.calls) == 2


@responses.activate
def test_several_key_set_urls_are_merged_and_one_may_fail(clock, signer):
    fal = make({"API_BASE_URL": API, "JWKS_URL": f"{JWKS_URL}, {ALPHA_JWKS_URL}"})
    responses.get(JWKS_URL, status=503, body="down")
    responses.get(ALPHA_JWKS_URL, json={"keys": [signer.jwk()]})
    assert fal.verify_callback(headers=signer.headers(BODY), body=BODY).job_id == REQ


@responses.activate
def test_no_reachable_key_set_rejects(fal, signer, clock):
    responses.get(JWKS_URL, body=requests.ConnectionError("refused"))
    with pytest.raises(CallbackRejected, match="could not be fetched"):
        fal.verify_callback(headers=signer.headers(BODY), body=BODY)


# --- prices -----------------------------------------------------------------------------------------


def test_prices_follow_the_contract():
    by_id = {m.id: m for m in fal_catalog.MODELS}
    veo = by_id["veo-3.1"]
    assert veo.cost(seconds=8, size="1280x720") == Decimal("3.2000")  # audio by default: $0.40/s
    assert veo.cost(seconds=8, size="1280x720", audio=False) == Decimal("1.6000")
    assert veo.cost(seconds=4, size="3840x2160", audio=True) == Decimal("2.4000")
    assert by_id["veo-3.1-fast"].cost(seconds=6, size="1920x1080", audio=False) == Decimal("0.6000")
    kling = by_id["kling-v3"]
    assert kling.cost(seconds=5, size="1280x720", audio=False) == Decimal("0.4200")
    assert kling.cost(seconds=10, size="1080x1920") == Decimal("1.6800")
    seedance = by_id["seedance-2.0"]
    assert fal_catalog.seedance_price_per_second("1280x720") == Decimal("0.3024")  # 21,600 tokens/s
    assert seedance.cost(seconds=5, size="1920x1080") == Decimal("3.4020")
    assert seedance.cost(seconds=5, size="1280x720", audio=False) == seedance.cost(seconds=5, size="1280x720")
    hailuo = by_id["hailuo-2.3"]
    assert [hailuo.cost(seconds=s, size=z) for s, z in ((6, "1366x768"), (10, "1366x768"), (6, "1920x1080"))] == [
        Decimal("0.2800"), Decimal("0.5600"), Decimal("0.4900"),
    ]  # fmt: skip
    assert by_id["minimax-h3"].cost(seconds=10, size="2560x1440") == Decimal("2.6000")  # conservative $0.26/s
    wan = by_id["wan-2.7"]
    assert (wan.cost(seconds=5, size="1280x720"), wan.cost(seconds=5, size="1920x1080")) == (
        Decimal("0.5000"), Decimal("0.7500"),
    )  # fmt: skip
    luma = by_id["luma-ray-3.2"]
    assert [luma.cost(seconds=s, size="1280x720") for s in (5, 10)] == [Decimal("1.0000"), Decimal("2.0000")]
    assert luma.cost(seconds=10, size="1080x1080") == Decimal("4.0000")
    assert luma.cost(seconds=5, size="540x960") == Decimal("0.5000")
    assert all(m.price_source_date.isoformat() == "2026-12-01" for m in fal_catalog.MODELS)
