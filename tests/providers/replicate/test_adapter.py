"""Replicate adapter: wire format, per-model input mappings, statuses, errors and webhook
verification, with ``responses`` (no emulator)."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from apps.providers import registry
from apps.providers.base import (
    CallbackRejected,
    Credentials,
    GenerationSpec,
    InputImage,
    JobState,
    ProviderError,
)
from apps.providers.catalog import get_model
from apps.providers.replicate import adapter as replicate
from apps.providers.replicate.adapter import ReplicateProvider, output_urls, problem_text

BASE = "https://api.replicate.example.com"
KEY = "r8_fake-key-test-unit-replicate"
PREDICTIONS = f"{BASE}/v1/models/{{}}/predictions"
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789").decode()


@pytest.fixture
def rep():
    return ReplicateProvider(Credentials(api_key=KEY), BASE)


def spec(**kwargs):
    values = {"model": "seedance-2.0", "prompt": "a lighthouse at dusk", "seconds": 5, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def prediction(status="starting", **extra):
    return {
        "id": "m420tb253nrm60cj09c8hwfgxw",
        "model": "bytedance/seedance-2.0",
        "version": "hidden",
        "status": status,
        "input": {"prompt": "x"},
        "output": None,
        "error": None,
        "logs": "",
        "metrics": {},
        "data_removed": False,
        "created_at": "2026-12-01T12:00:00.000Z",
        "urls": {"get": f"{BASE}/v1/predictions/m420", "cancel": f"{BASE}/v1/predictions/m420/cancel"},
        **extra,
    }


def sent(call_index=0):
    return json.loads(responses.calls[call_index].request.body)


# --- create: the per-model input mappings ----------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("model", "size", "seconds", "path", "expected"),
    [
        (
            "veo-3.1",
            "1920x1080",
            8,
            "google/veo-3.1",
            {"aspect_ratio": "16:9", "resolution": "1080p", "duration": 8, "generate_audio": True},
        ),
        (
            "veo-3.1-fast",
            "720x1280",
            4,
            "google/veo-3.1-fast",
            {"aspect_ratio": "9:16", "resolution": "720p", "duration": 4, "generate_audio": True},
        ),
        (
            "kling-v3",
            "1080x1080",
            12,
            "kwaivgi/kling-v3-video",
            {"aspect_ratio": "1:1", "mode": "pro", "duration": 12, "generate_audio": True},
        ),
        (
            "kling-v3",
            "3840x2160",
            3,
            "kwaivgi/kling-v3-video",
            {"aspect_ratio": "16:9", "mode": "4k", "duration": 3, "generate_audio": True},
        ),
        (
            "seedance-2.0",
            "854x480",
            1,
            "bytedance/seedance-2.0",
            {"aspect_ratio": "16:9", "resolution": "480p", "duration": 1, "generate_audio": True},
        ),
        (
            "seedance-2.0",
            "1080x2520",
            15,
            "bytedance/seedance-2.0",
            {"aspect_ratio": "9:21", "resolution": "1080p", "duration": 15, "generate_audio": True},
        ),
        ("wan-3", "480x480", 30, "alibaba/wan-3", {"aspect_ratio": "1:1", "resolution": "480p", "duration": 30}),
    ],
)
def test_text_to_video_input_per_model(rep, model, size, seconds, path, expected):
    responses.post(PREDICTIONS.format(path), status=201, json=prediction())
    assert rep.submit(spec(model=model, size=size, seconds=seconds)) == "m420tb253nrm60cj09c8hwfgxw"
    request = responses.calls[0].request
    assert sent() == {"input": {"prompt": "a lighthouse at dusk", **expected}}
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert "Prefer" not in request.headers  # never hold a worker with Prefer: wait
    assert "Cancel-After" not in request.headers


@responses.activate
def test_seed_and_negative_prompt_are_sent_where_the_model_takes_them(rep):
    responses.post(PREDICTIONS.format("google/veo-3.1"), status=201, json=prediction())
    responses.post(PREDICTIONS.format("alibaba/wan-3"), status=201, json=prediction())
    responses.post(PREDICTIONS.format("bytedance/seedance-2.0"), status=201, json=prediction())
    rep.submit(spec(model="veo-3.1", seconds=6, seed=42, negative_prompt="blur"))
    rep.submit(spec(model="wan-3", seed=0, negative_prompt="text, watermark"))
    rep.submit(spec(seed=7))
    veo, wan, seedance = sent(0)["input"], sent(1)["input"], sent(2)["input"]
    assert (veo["seed"], veo["negative_prompt"]) == (42, "blur")
    assert (wan["seed"], wan["negative_prompt"]) == (0, "text, watermark")
    assert seedance["seed"] == 7 and "negative_prompt" not in seedance


@responses.activate
@pytest.mark.parametrize(("requested", "sent_value"), [(None, True), (True, True), (False, False)])
def test_audio_switch_is_always_explicit(rep, requested, sent_value):
    responses.post(PREDICTIONS.format("google/veo-3.1"), status=201, json=prediction())
    rep.submit(spec(model="veo-3.1", seconds=8, audio=requested))
    assert sent()["input"]["generate_audio"] is sent_value


def test_silent_veo_is_priced_silent_and_audio_at_the_audio_price():
    veo = get_model("replicate/veo-3.1")
    assert veo.cost(seconds=8, size="1280x720", audio=False) == Decimal("1.6000")
    assert veo.cost(seconds=8, size="1280x720", audio=None) == Decimal("3.2000")
    fast = get_model("replicate/veo-3.1-fast")
    assert fast.cost(seconds=4, size="1920x1080", audio=False) == Decimal("0.4000")
    assert fast.cost(seconds=4, size="1920x1080", audio=True) == Decimal("0.6000")


@pytest.mark.parametrize(
    ("model", "seconds", "size", "expected"),
    [
        ("seedance-2.0", 5, "1280x720", "0.9000"),
        ("seedance-2.0", 10, "854x480", "0.8000"),
        ("seedance-2.0", 4, "1920x1080", "1.8000"),
        ("kling-v3", 5, "1280x720", "0.8400"),
        ("kling-v3", 10, "1080x1920", "2.2400"),
        ("kling-v3", 5, "2160x2160", "2.1000"),
        ("wan-3", 10, "1280x720", "1.0000"),
        ("wan-3", 30, "1920x1080", "6.0000"),
        ("wan-3", 2, "480x854", "0.1000"),
    ],
)
def test_catalog_prices(model, seconds, size, expected):
    entry = get_model(f"replicate/{model}")
    assert entry.cost(seconds=seconds, size=size) == Decimal(expected)
    assert entry.price_version and entry.price_source_date


@responses.activate
def test_audio_is_never_sent_to_a_silent_model_and_cannot_be_asked_of_it(rep):
    responses.post(PREDICTIONS.format("alibaba/wan-3"), status=201, json=prediction())
    rep.submit(spec(model="wan-3", audio=False))
    assert "generate_audio" not in sent()["input"]
    with pytest.raises(ProviderError) as info:
        rep.submit(spec(model="wan-3", audio=True))
    assert info.value.code == "invalid_request" and info.value.permanent and "silent" in info.value.message
    assert len(responses.calls) == 1


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@responses.activate
@pytest.mark.parametrize(
    ("model", "size", "seconds", "path", "field", "without"),
    [
        ("veo-3.1", "1280x720", 8, "google/veo-3.1", "image", None),
        ("veo-3.1-fast", "720x1280", 6, "google/veo-3.1-fast", "image", None),
        ("kling-v3", "1920x1080", 5, "kwaivgi/kling-v3-video", "start_image", "aspect_ratio"),
        ("seedance-2.0", "960x720", 5, "bytedance/seedance-2.0", "image", None),
    ],
)
def test_image_to_video_sends_a_data_uri_in_the_models_field(rep, model, size, seconds, path, field, without):
    responses.post(PREDICTIONS.format(path), status=201, json=prediction())
    rep.submit(spec(model=model, size=size, seconds=seconds, image=InputImage(data=PNG, content_type="image/png")))
    inp = sent()["input"]
    assert inp[field] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    if without:
        assert without not in inp  # the start image sets Kling's aspect ratio
    else:
        assert "aspect_ratio" in inp
    assert "image" not in inp or field == "image"


@responses.activate
def test_an_image_url_is_passed_through(rep):
    responses.post(PREDICTIONS.format("kwaivgi/kling-v3-video"), status=201, json=prediction())
    rep.submit(spec(model="kling-v3", image=InputImage(url="https://img.example.com/frame.jpg")))
    assert sent()["input"]["start_image"] == "https://img.example.com/frame.jpg"


@responses.activate
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"model": "wan-3", "image": InputImage(data=PNG, content_type="image/png")}, "text to video only"),
        ({"image": InputImage(url="http://img.example.com/a.png")}, "https image URL"),
        ({"image": InputImage(data=b"GIF89a", content_type="image/gif")}, "JPEG, PNG or WebP"),
        ({"image": InputImage(data=b"", content_type="image/png")}, "empty"),
        ({"image": InputImage(data=PNG * 4000, content_type="image/png")}, "public https image URL"),
        ({"size": "1000x1000"}, "supports sizes"),
        ({"seconds": 16}, "durations"),
        ({"model": "veo-3.1", "size": "1920x1080", "seconds": 4}, "1080p videos of 8 seconds only"),
        ({"model": "veo-3.1", "size": "854x480", "seconds": 8}, "supports sizes"),
        ({"negative_prompt": "blur"}, "negative prompt"),
        ({"prompt": "   "}, "needs a prompt"),
        ({"model": "no-such-model"}, "no catalog entry"),
    ],
)
def test_what_a_model_cannot_do_is_refused_before_submitting(rep, kwargs, words):
    with pytest.raises(ProviderError) as info:
        rep.submit(spec(**kwargs))
    assert info.value.permanent and words in info.value.message
    assert info.value.code in ("invalid_request", "model_not_available")
    assert len(responses.calls) == 0


@responses.activate
def test_the_data_uri_limit_is_an_operator_setting(rep):
    responses.post(PREDICTIONS.format("bytedance/seedance-2.0"), status=201, json=prediction())
    big = InputImage(data=PNG * 4000, content_type="image/png")  # 288 KB, over the 256 KB default
    roomy = ReplicateProvider(Credentials(api_key=KEY), BASE, options={"DATA_URI_MAX_BYTES": str(1024**2)})
    roomy.submit(spec(image=big))
    assert sent()["input"]["image"].startswith("data:image/png;base64,")
    with pytest.raises(ProviderError, match="262144 bytes"):
        rep.submit(spec(image=big))


@responses.activate
def test_callback_url_requests_a_completed_webhook(rep):
    responses.post(PREDICTIONS.format("bytedance/seedance-2.0"), status=201, json=prediction())
    rep.submit(spec(callback_url="https://mr.example/hooks/replicate/gen_1/tok"))
    rep.submit(spec())
    assert sent(0)["webhook"] == "https://mr.example/hooks/replicate/gen_1/tok"
    assert sent(0)["webhook_events_filter"] == ["completed"]
    assert "webhook" not in sent(1) and "webhook_events_filter" not in sent(1)


@responses.activate
def test_a_base_url_with_the_sdks_v1_suffix_works():
    responses.get(f"{BASE}/v1/account", json={"type": "user", "username": "me"})
    ReplicateProvider(Credentials(api_key=KEY), f"{BASE}/v1/").validate_key()
    assert responses.calls[0].request.url == f"{BASE}/v1/account"


def test_base_url_follows_the_generic_setting(settings):
    if hasattr(settings, "REPLICATE_BASE_URL"):
        del settings.REPLICATE_BASE_URL
    assert registry.base_url_for("replicate") == "https://api.replicate.com"
    settings.REPLICATE_BASE_URL = "http://127.0.0.1:9105/"
    assert registry.build("replicate", Credentials(api_key=KEY)).base_url == "http://127.0.0.1:9105"
    settings.REPLICATE_CREATES_PER_MINUTE = "6"
    assert registry.build("replicate", Credentials(api_key=KEY)).creates_per_minute == 6


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("r8_fake-key-test-unit-replicate", True),
        ("fake-key-test-no-prefix-000000", False),
        ("whsec_c2VjcmV0c2VjcmV0c2VjcmV0", False),
        ("r8_fake key with spaces", False),
    ],
)
def test_check_credentials_refuses_what_is_not_a_replicate_token(token, ok):
    problems = ReplicateProvider.check_credentials(Credentials(api_key=token))
    assert (problems == {}) is ok
    if not ok:
        assert set(problems) == {"api_key"} and token not in problems["api_key"]


# --- pacing and uncertain creates ------------------------------------------------------------


@responses.activate
def test_creates_are_paced_per_key_with_a_retry_after(rep, monkeypatch):
    responses.post(PREDICTIONS.format("bytedance/seedance-2.0"), status=201, json=prediction())
    clock = [1000.0]
    monkeypatch.setattr(replicate.time, "monotonic", lambda: clock[0])
    paced = ReplicateProvider(Credentials(api_key=KEY), BASE, options={"CREATES_PER_MINUTE": "2"})
    paced.submit(spec())
    clock[0] += 10
    paced.submit(spec())
    with pytest.raises(ProviderError) as info:
        paced.submit(spec())
    assert info.value.code == "rate_limited" and not info.value.permanent and not info.value.uncertain
    assert info.value.retry_after == pytest.approx(50.0)
    assert len(responses.calls) == 2  # refused before sending
    other = ReplicateProvider(Credentials(api_key=KEY + "-other"), BASE, options={"CREATES_PER_MINUTE": "2"})
    other.submit(spec())  # another key has its own minute
    clock[0] += 50.5
    paced.submit(spec())  # the first slot freed
    assert len(responses.calls) == 4


@responses.activate
@pytest.mark.parametrize(
    "failure",
    [
        {"body": requests.ReadTimeout("slow")},
        {"status": 201, "body": "<html>ok</html>"},
        {"status": 201, "json": {"status": "starting"}},
        {"status": 500, "json": {"title": "Internal Server Error", "detail": "oops", "status": 500}},
        {"status": 502, "body": "<html>bad gateway</html>"},
    ],
)
def test_a_create_whose_outcome_is_unknown_is_uncertain(rep, failure):
    responses.post(PREDICTIONS.format("bytedance/seedance-2.0"), **failure)
    with pytest.raises(ProviderError) as info:
        rep.submit(spec())
    assert info.value.uncertain and not info.value.permanent
    assert not rep.supports_lookup  # no way to find a prediction by our reference: the engine fails it, unpaid


# --- status ----------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("raw", "state", "code"),
    [
        ("starting", JobState.QUEUED, None),
        ("processing", JobState.IN_PROGRESS, None),
        ("succeeded", JobState.COMPLETED, None),
        ("failed", JobState.FAILED, "generation_failed"),
        ("canceled", JobState.CANCELED, None),
        ("aborted", JobState.FAILED, "aborted"),
        ("booting", JobState.IN_PROGRESS, None),  # unknown: keep polling
    ],
)
def test_status_mapping(rep, raw, state, code):
    responses.get(
        f"{BASE}/v1/predictions/p1",
        json=prediction(raw, output="https://replicate.delivery/xezq/abc/output.mp4", error="boom"),
    )
    job = rep.status("p1")
    assert (job.state, job.raw_status, job.error_code) == (state, raw, code)
    assert job.progress == (100 if state is JobState.COMPLETED else None)
    if state is JobState.COMPLETED:
        assert job.output_urls == ("https://replicate.delivery/xezq/abc/output.mp4",)
    if raw == "aborted":
        assert "not billed" in job.error_message


@responses.activate
def test_usage_records_the_metrics(rep):
    metrics = {"predict_time": 41.25, "total_time": 52.5, "video_seconds": 5, "flag": True, "note": "x"}
    responses.get(
        f"{BASE}/v1/predictions/p1", json=prediction("succeeded", output="https://r.example/o.mp4", metrics=metrics)
    )
    assert rep.status("p1").usage == {"predict_time": 41.25, "total_time": 52.5, "video_seconds": 5}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("https://replicate.delivery/a/output.mp4", ("https://replicate.delivery/a/output.mp4",)),
        (["https://replicate.delivery/a/o.mp4"], ("https://replicate.delivery/a/o.mp4",)),
        (
            ["https://replicate.delivery/a/poster.jpg", "https://replicate.delivery/a/o.mp4?x=1"],
            ("https://replicate.delivery/a/o.mp4?x=1", "https://replicate.delivery/a/poster.jpg"),
        ),
        ({"video": "https://replicate.delivery/a/o.mp4", "seed": 3}, ("https://replicate.delivery/a/o.mp4",)),
        ([None, 3, "data:video/mp4;base64,AAAA", "ftp://x/y"], ()),
        (None, ()),
        (42, ()),
    ],
)
def test_output_is_normalised(output, expected):
    assert output_urls(output) == expected


@responses.activate
def test_success_without_output_fails_and_purged_data_is_output_expired(rep):
    responses.get(f"{BASE}/v1/predictions/none", json=prediction("succeeded"))
    responses.get(f"{BASE}/v1/predictions/gone", json=prediction("succeeded", data_removed=True, input=None))
    none = rep.status("none")
    assert none.state is JobState.FAILED and none.error_code == "no_output"
    gone = rep.status("gone")
    assert gone.state is JobState.FAILED and gone.error_code == "output_expired" and "No charge" in gone.error_message


@responses.activate
@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            "The input or output was flagged as sensitive. Please try again with different inputs. (E005)",
            "content_policy",
        ),
        ("NSFW content detected", "content_policy"),
        ("Prediction timed out", "timeout"),
        ("CUDA out of memory", "generation_failed"),
        (None, "generation_failed"),
        ({"message": "nested"}, "generation_failed"),
    ],
)
def test_failures_are_classified_by_their_text(rep, error, code):
    responses.get(f"{BASE}/v1/predictions/p1", json=prediction("failed", error=error))
    job = rep.status("p1")
    assert job.state is JobState.FAILED and job.error_code == code and job.error_message


@responses.activate
def test_a_failure_text_never_shows_the_key(rep):
    responses.get(f"{BASE}/v1/predictions/p1", json=prediction("failed", error=f"token {KEY} refused"))
    assert KEY not in rep.status("p1").error_message


# --- errors ----------------------------------------------------------------------------------


def problem(status, detail, title=None):
    return {"title": title or "Error", "detail": detail, "status": status}


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "headers", "code", "permanent", "retry_after"),
    [
        (400, problem(400, "bad json"), {}, "invalid_request", True, None),
        (401, problem(401, "You did not pass a valid authentication token"), {}, "invalid_api_key", True, None),
        (402, problem(402, "Payment required"), {}, "insufficient_balance", True, None),
        (403, problem(403, "Forbidden"), {}, "permission_denied", True, None),
        (404, problem(404, "not found"), {}, "not_found", True, None),
        (409, problem(409, "conflict"), {}, "invalid_request", True, None),
        (422, problem(422, "You have insufficient credit to run this model."), {}, "insufficient_balance", True, None),
        (
            422,
            {
                "title": "Input validation failed",
                "status": 422,
                "detail": [{"loc": ["input", "duration"], "msg": "bad"}],
            },
            {},
            "invalid_request",
            True,
            None,
        ),
        (
            429,
            {"detail": "Request was throttled. Your rate limit resets in ~30s."},
            {"Retry-After": "7"},
            "rate_limited",
            False,
            7.0,
        ),
        (429, {"detail": "Request was throttled. Your rate limit resets in ~30s."}, {}, "rate_limited", False, 30.0),
        (429, "slow down", {}, "rate_limited", False, replicate.DEFAULT_RATE_LIMIT_WAIT),
        (
            429,
            problem(429, "Throttled: limits are lower with insufficient credit."),
            {"Retry-After": "60"},
            "rate_limited",
            False,
            60.0,
        ),
        (500, problem(500, "oops"), {}, "server_error", False, None),
        (503, "<html>unavailable</html>", {"Retry-After": "4"}, "server_error", False, 4.0),
    ],
)
def test_errors_are_mapped(rep, status, body, headers, code, permanent, retry_after):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.get(f"{BASE}/v1/predictions/p1", status=status, headers=headers, **kwargs)
    with pytest.raises(ProviderError) as info:
        rep.status("p1")
    error = info.value
    assert (error.code, error.permanent, error.retry_after, error.status_code) == (code, permanent, retry_after, status)
    assert not error.uncertain  # a poll is safe to repeat
    assert error.is_auth_error is (status in (401, 403))
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        assert body["detail"] in error.message


@responses.activate
def test_validation_detail_names_the_field(rep):
    detail = [{"loc": ["input", "duration"], "msg": "Input should be 4, 6 or 8"}]
    responses.get(f"{BASE}/v1/predictions/p1", status=422, json={"title": "Invalid", "detail": detail, "status": 422})
    with pytest.raises(ProviderError, match=r"input\.duration: Input should be 4, 6 or 8"):
        rep.status("p1")


@responses.activate
def test_an_unknown_model_on_create_is_model_not_available(rep):
    responses.post(PREDICTIONS.format("bytedance/seedance-2.0"), status=404, json=problem(404, "Not found"))
    with pytest.raises(ProviderError) as info:
        rep.submit(spec())
    assert info.value.code == "model_not_available" and info.value.permanent and not info.value.uncertain


@responses.activate
def test_429_on_create_is_transient_not_uncertain(rep):
    responses.post(
        PREDICTIONS.format("bytedance/seedance-2.0"),
        status=429,
        json={"detail": "Request was throttled. Your rate limit resets in ~12s.", "status": 429},
    )
    with pytest.raises(ProviderError) as info:
        rep.submit(spec())
    assert info.value.code == "rate_limited" and info.value.retry_after == 12.0 and not info.value.uncertain


@responses.activate
def test_auth_errors_never_show_the_key(rep):
    responses.get(f"{BASE}/v1/account", status=401, json=problem(401, f"Invalid token {KEY}", "Unauthenticated"))
    with pytest.raises(ProviderError) as info:
        rep.validate_key()
    assert info.value.is_auth_error and KEY not in str(info.value) and KEY not in repr(info.value)
    assert responses.calls[0].request.url == f"{BASE}/v1/account"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_bodies = _json.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=200)
_keyed = st.dictionaries(st.sampled_from(["title", "detail", "status", "error", "msg", "loc"]), _json, max_size=5)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=_bodies | _keyed.map(lambda v: json.dumps(v).encode()), status=st.sampled_from([400, 401, 404, 422, 429, 500])
)
def test_error_parsing_survives_any_body(body, status):
    provider = ReplicateProvider(Credentials(api_key=KEY), BASE)
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/v1/predictions/p1", status=status, body=body)
        with pytest.raises(ProviderError) as info:
            provider.status("p1")
    assert isinstance(info.value.message, str) and info.value.status_code == status
    assert len(info.value.message) < 700


@settings(max_examples=100, deadline=None, database=None)
@given(body=_json)
def test_problem_text_of_any_json_is_a_string(body):
    assert isinstance(problem_text(body), str)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_json)
def test_any_prediction_body_maps_to_a_status_or_a_provider_error(body):
    provider = ReplicateProvider(Credentials(api_key=KEY), BASE)
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/v1/predictions/p1", json=body)
        try:
            job = provider.status("p1")
        except ProviderError as exc:
            assert exc.code == "bad_response"
        else:
            assert isinstance(job.state, JobState)


# --- cancel, download, secret ----------------------------------------------------------------


@responses.activate
def test_cancel(rep):
    responses.post(f"{BASE}/v1/predictions/p1/cancel", json=prediction("canceled"))
    responses.post(f"{BASE}/v1/predictions/gone/cancel", status=404, json=problem(404, "Not found"))
    responses.post(f"{BASE}/v1/predictions/busy/cancel", status=503, json=problem(503, "busy"))
    rep.cancel("p1")
    rep.cancel("gone")  # nothing to cancel
    with pytest.raises(ProviderError) as info:
        rep.cancel("busy")
    assert not info.value.permanent
    assert rep.supports_cancel and responses.calls[0].request.method == "POST"


@responses.activate
@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [
        (404, "output_expired", True),
        (410, "output_expired", True),
        (403, "download_failed", True),
        (503, "download_failed", False),
    ],
)
def test_download_errors(rep, public_dns, status, code, permanent):
    responses.get("https://replicate.delivery/xezq/a/output.mp4", status=status, body=b"Not Found")
    with pytest.raises(ProviderError) as info:
        rep.download("p1", url="https://replicate.delivery/xezq/a/output.mp4")
    assert (info.value.code, info.value.permanent) == (code, permanent)


@responses.activate
def test_download_without_a_url_reads_the_prediction(rep, public_dns):
    url = "https://replicate.delivery/xezq/a/output.mp4"
    responses.get(f"{BASE}/v1/predictions/p1", json=prediction("succeeded", output=[url]))
    responses.get(f"{BASE}/v1/predictions/p2", json=prediction("succeeded", data_removed=True))
    responses.get(f"{BASE}/v1/predictions/p3", json=prediction("processing"))
    responses.get(url, body=b"\0\0\0\x18ftypmp42", content_type="video/mp4")
    with rep.download("p1") as download:
        assert b"".join(download.chunks) == b"\0\0\0\x18ftypmp42"
    assert "Authorization" not in responses.calls[1].request.headers  # the key stays with the API
    with pytest.raises(ProviderError) as info:
        rep.download("p2")
    assert info.value.code == "output_expired" and info.value.permanent
    with pytest.raises(ProviderError) as info:
        rep.download("p3")
    assert info.value.code == "not_ready" and not info.value.permanent
    with pytest.raises(ProviderError) as info:
        rep.download("p1", variant="thumbnail")
    assert info.value.code == "unsupported"


@responses.activate
def test_callback_secret(rep):
    responses.get(f"{BASE}/v1/webhooks/default/secret", json={"key": SECRET})
    assert rep.callback_secret() == SECRET
    responses.replace(responses.GET, f"{BASE}/v1/webhooks/default/secret", json={"key": None})
    with pytest.raises(ProviderError) as info:
        rep.callback_secret()
    assert info.value.code == "bad_response"


# --- webhook verification (Standard Webhooks, through the standardwebhooks package) ----------------


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None, msg_id: str = "msg_1") -> dict[str, str]:
    when = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(int(when.timestamp())),
        "Webhook-Signature": Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode()),
    }


BODY = json.dumps(prediction("succeeded", output="https://replicate.delivery/a/o.mp4")).encode()


def test_a_genuine_delivery_names_its_prediction(rep):
    delivery = rep.verify_callback(headers=signed(BODY), body=BODY, secret=SECRET)
    assert delivery.job_id == "m420tb253nrm60cj09c8hwfgxw" and delivery.reply is None
    lower = {k.lower(): v for k, v in signed(BODY).items()}
    assert rep.verify_callback(headers=lower, body=BODY, secret=SECRET).job_id == delivery.job_id
    # several signatures (a secret rotation): one that matches is enough
    headers = signed(BODY)
    headers["Webhook-Signature"] = "v1,AAAA " + headers["Webhook-Signature"]
    assert rep.verify_callback(headers=headers, body=BODY, secret=SECRET).job_id == delivery.job_id


def test_a_retry_of_the_same_delivery_is_accepted(rep):
    """Replicate retries a failed delivery with the same id; the engine re-reads the prediction, so
    accepting it twice is harmless (idempotent on the prediction)."""
    headers = signed(BODY)
    first = rep.verify_callback(headers=headers, body=BODY, secret=SECRET)
    again = rep.verify_callback(headers=dict(headers), body=BODY, secret=SECRET)
    assert first == again


OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-another-secret").decode()


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: (signed(BODY, secret=OTHER_SECRET), BODY), "forged: signed with another secret"),
        (lambda: (signed(BODY, at=time.time() - 301), BODY), "stale: more than 5 minutes old"),
        (lambda: (signed(BODY, at=time.time() + 400), BODY), "from the future"),
        (lambda: (signed(BODY), BODY.replace(b"succeeded", b"failed")), "body changed under the signature"),
        (
            lambda: ({**signed(b'{"id": "other"}'), "Webhook-Id": "msg_1"}, BODY),
            "a signature of another body replayed",
        ),
        (lambda: ({**signed(BODY), "Webhook-Id": "msg_2"}, BODY), "id changed"),
        (
            lambda: ({**signed(BODY), "Webhook-Timestamp": str(int(time.time()) + 1)}, BODY),
            "timestamp refreshed on a replay",
        ),
        (lambda: ({k: v for k, v in signed(BODY).items() if k != "Webhook-Signature"}, BODY), "no signature"),
        (lambda: ({**signed(BODY), "Webhook-Signature": "garbage"}, BODY), "malformed signature"),
        (lambda: ({**signed(BODY), "Webhook-Signature": "v1,not base64!"}, BODY), "bad base64"),
        (lambda: ({**signed(BODY), "Webhook-Timestamp": "yesterday"}, BODY), "bad timestamp"),
        (lambda: (signed(b"[1, 2]"), b"[1, 2]"), "signed body names no prediction"),
        (lambda: (signed(b"not json"), b"not json"), "signed body is not JSON"),
        (lambda: ({**signed(BODY), "Webhook-Signature": "v2,abc"}, BODY), "unknown signature version"),
    ],
)
def test_deliveries_that_are_not_genuine_are_rejected(rep, make, why):
    headers, body = make()
    with pytest.raises(CallbackRejected):
        rep.verify_callback(headers=headers, body=body, secret=SECRET)


def test_non_utf8_bodies_and_missing_or_bad_secrets_are_rejected(rep):
    with pytest.raises(CallbackRejected):
        rep.verify_callback(headers=signed(BODY), body=b"\xff\xfe" + BODY, secret=SECRET)
    for secret in (None, "", "whsec_", "whsec_***not-base64***"):
        with pytest.raises(CallbackRejected):
            rep.verify_callback(headers=signed(BODY), body=BODY, secret=secret)


def test_callback_flags():
    assert ReplicateProvider.supports_callbacks and ReplicateProvider.callback_verification == "signature"
    assert ReplicateProvider.supplier_kind == "aggregator" and not ReplicateProvider.supports_lookup
    assert re.fullmatch(r"https://api\.replicate\.com", ReplicateProvider.default_base_url)
