"""BytePlus ModelArk adapter: the create body per model, statuses, Ark's error codes, the
queued-only cancel, unsigned callbacks and the token prices, with ``responses`` (no emulator)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
import requests
import responses

from apps.providers import registry
from apps.providers.base import CallbackRejected, Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.byteplus import catalog as bp_catalog
from apps.providers.byteplus.adapter import BytePlusProvider, classify, error_fields
from apps.providers.catalog import get_model

BASE = "https://ark.example.com/api/v3"
TASKS = f"{BASE}/contents/generations/tasks"
KEY = "ark-fake-key-test-unit-byteplus-0000"
TASK_ID = "cgt-20261201120000-ab12c"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def bp():
    return BytePlusProvider(Credentials(api_key=KEY), BASE)


def spec(**kwargs):
    values = {"model": "seedance-2.0", "prompt": "a lighthouse at dusk", "seconds": 5, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def task(status="queued", **extra):
    return {
        "id": TASK_ID,
        "model": "dreamina-seedance-2-0-260128",
        "status": status,
        "content": {},
        "seed": 10,
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
        "framespersecond": 24,
        "generate_audio": True,
        "usage": None,
        "error": None,
        "created_at": 1764590400,
        "updated_at": 1764590400,
        **extra,
    }


def ark_error(code, message="nope", param="", kind="BadRequest"):
    return {"error": {"code": code, "message": message, "param": param, "type": kind}}


def sent(index=0):
    return json.loads(responses.calls[index].request.body)


# --- the create body -------------------------------------------------------------------------


@responses.activate
def test_text_to_video_body_headers_and_job_data(bp):
    responses.post(TASKS, json={"id": TASK_ID})
    job = bp.submit(spec(client_reference="vid_123"))
    assert job.job_id == TASK_ID and dict(job.data) == {"model": "seedance-2.0", "audio": True}
    assert sent() == {
        "model": "dreamina-seedance-2-0-260128",
        "content": [{"type": "text", "text": "a lighthouse at dusk"}],
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
        "seed": -1,
        "watermark": False,
        "generate_audio": True,
    }
    request = responses.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["X-Client-Request-Id"] == "vid_123"


@responses.activate
@pytest.mark.parametrize(
    ("model", "size", "seconds", "provider_model", "resolution", "ratio"),
    [
        ("seedance-2.0", "854x480", 4, "dreamina-seedance-2-0-260128", "480p", "16:9"),
        ("seedance-2.0", "1080x2520", 15, "dreamina-seedance-2-0-260128", "1080p", "9:21"),
        ("seedance-2.0", "1440x1080", 10, "dreamina-seedance-2-0-260128", "1080p", "4:3"),
        ("seedance-2.0-fast", "720x1280", 8, "dreamina-seedance-2-0-fast-260128", "720p", "9:16"),
        ("seedance-2.5", "1680x720", 30, "dreamina-seedance-2-5-260628", "720p", "21:9"),
        ("seedance-1.5-pro", "1080x1080", 12, "seedance-1-5-pro-251215", "1080p", "1:1"),
        ("seedance-1.5-pro", "480x640", 4, "seedance-1-5-pro-251215", "480p", "3:4"),
    ],
)
def test_ratio_resolution_duration_and_dated_id_per_model(bp, model, size, seconds, provider_model, resolution, ratio):
    responses.post(TASKS, json={"id": TASK_ID})
    bp.submit(spec(model=model, size=size, seconds=seconds, seed=7))
    body = sent()
    assert (body["model"], body["resolution"], body["ratio"], body["duration"], body["seed"]) == (
        provider_model, resolution, ratio, seconds, 7,
    )  # fmt: skip
    assert isinstance(body["duration"], int) and "frames" not in body


@responses.activate
def test_image_to_video_sends_a_lower_case_data_uri_as_first_frame(bp):
    responses.post(TASKS, json={"id": TASK_ID})
    bp.submit(spec(image=InputImage(data=PNG, content_type="IMAGE/PNG")))
    content = sent()["content"]
    assert content[0] == {"type": "text", "text": "a lighthouse at dusk"}
    assert content[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        "role": "first_frame",
    }


@responses.activate
def test_image_url_is_passed_as_is(bp):
    responses.post(TASKS, json={"id": TASK_ID})
    bp.submit(spec(image=InputImage(url="https://cdn.example.com/first.jpg")))
    assert sent()["content"][1]["image_url"] == {"url": "https://cdn.example.com/first.jpg"}
    assert sent()["content"][1]["role"] == "first_frame"


@responses.activate
@pytest.mark.parametrize(("audio", "expected"), [(None, True), (True, True), (False, False)])
def test_generate_audio_is_always_explicit(bp, audio, expected):
    responses.post(TASKS, json={"id": TASK_ID})
    job = bp.submit(spec(model="seedance-1.5-pro", audio=audio))
    assert sent()["generate_audio"] is expected and job.data["audio"] is expected


@responses.activate
def test_callback_url_and_expiry_setting_are_sent_only_when_set():
    responses.post(TASKS, json={"id": TASK_ID})
    plain = BytePlusProvider(Credentials(api_key=KEY), BASE)
    plain.submit(spec())
    assert "callback_url" not in sent(0) and "execution_expires_after" not in sent(0)
    tuned = BytePlusProvider(Credentials(api_key=KEY), BASE, options={"EXECUTION_EXPIRES_AFTER": "60"})
    tuned.submit(spec(callback_url="https://mr.example.com/hooks/byteplus/tok123"))
    assert sent(1)["callback_url"] == "https://mr.example.com/hooks/byteplus/tok123"
    assert sent(1)["execution_expires_after"] == 3600  # clamped to Ark's 3600-259200


@responses.activate
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"size": "1000x1000"}, "supports sizes"),
        ({"model": "seedance-2.0-fast", "size": "1920x1080"}, "supports sizes"),  # Fast: no 1080p
        ({"model": "seedance-1.5-pro", "size": "1080x2520"}, "supports sizes"),  # 9:21 is 2.x only
        ({"seconds": 3}, "durations of 4-15"),
        ({"model": "seedance-1.5-pro", "seconds": 13}, "durations of 4-12"),
        ({"prompt": "  "}, "needs a prompt"),
        ({"negative_prompt": "blur"}, "negative prompt"),
        ({"image": InputImage(data=PNG, content_type="image/svg+xml")}, "not image/svg+xml"),
        ({"image": InputImage(data=b"", content_type="image/png")}, "empty"),
        ({"image": InputImage(url="ftp://x.example.com/a.png")}, "https URL"),
    ],
)
def test_refusals_happen_before_any_request(bp, kwargs, words):
    with pytest.raises(ProviderError) as info:
        bp.submit(spec(**kwargs))
    assert info.value.permanent and info.value.code == "invalid_request" and words in info.value.message
    assert not responses.calls


def test_an_unknown_model_is_refused(bp):
    with pytest.raises(ProviderError) as info:
        bp.submit(spec(model="seedance-9"))
    assert info.value.code == "model_not_available" and info.value.permanent


@responses.activate
def test_create_without_an_id_is_uncertain(bp):
    responses.post(TASKS, json={"ok": True})
    with pytest.raises(ProviderError) as info:
        bp.submit(spec())
    assert info.value.uncertain and info.value.code == "bad_response"


# --- statuses --------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("raw", "state", "code"),
    [
        ("queued", JobState.QUEUED, None),
        ("running", JobState.IN_PROGRESS, None),
        ("cancelled", JobState.CANCELED, None),
        ("expired", JobState.FAILED, "expired"),
        ("something_new", JobState.IN_PROGRESS, None),
    ],
)
def test_statuses(bp, raw, state, code):
    responses.get(f"{TASKS}/{TASK_ID}", json=task(raw))
    status = bp.status(TASK_ID)
    assert (status.state, status.raw_status, status.error_code, status.output_urls) == (state, raw, code, ())
    assert status.usage == {}
    if code == "expired":
        assert "No charge" in status.error_message


@responses.activate
def test_succeeded_reports_the_url_tokens_and_their_price(bp):
    url = "https://ark-content.tos-ap-southeast-1.bytepluses.com/v.mp4?X-Tos-Signature=abc"
    body = task("succeeded", content={"video_url": url}, usage={"completion_tokens": 108900, "total_tokens": 108900})
    responses.get(f"{TASKS}/{TASK_ID}", json=body)
    status = bp.status(TASK_ID, job_data={"model": "seedance-2.0", "audio": True})
    assert status.state is JobState.COMPLETED and status.progress == 100 and status.output_urls == (url,)
    assert status.usage["total_tokens"] == 108900
    assert Decimal(status.usage["cost_usd"]) == Decimal("1.089")  # 108,900 x $10 / M


@responses.activate
def test_usage_is_priced_from_the_echoed_model_and_audio_without_job_data(bp):
    body = task(
        "succeeded",
        model="seedance-1-5-pro-251215",
        generate_audio=False,
        content={"video_url": "https://cdn.example.com/v.mp4"},
        usage={"completion_tokens": 100000, "total_tokens": 100000},
    )
    responses.get(f"{TASKS}/{TASK_ID}", json=body)
    assert bp.status(TASK_ID).usage == {"total_tokens": 100000, "cost_usd": str(100000 * Decimal("0.0000012"))}
    assert Decimal(bp.status(TASK_ID).usage["cost_usd"]) == Decimal("0.12")


@responses.activate
def test_an_endpoint_id_gets_tokens_but_no_price(bp):
    body = task("succeeded", model="ep-20261201-abc", content={"video_url": "https://cdn.example.com/v.mp4"})
    body["usage"] = {"completion_tokens": 5, "total_tokens": 5}
    responses.get(f"{TASKS}/{TASK_ID}", json=body)
    assert bp.status(TASK_ID).usage == {"total_tokens": 5}


@responses.activate
def test_succeeded_after_the_url_was_cleared_is_output_expired(bp):
    responses.get(f"{TASKS}/{TASK_ID}", json=task("succeeded", content={}))
    status = bp.status(TASK_ID)
    assert status.state is JobState.FAILED and status.error_code == "output_expired"


@responses.activate
@pytest.mark.parametrize(
    ("upstream", "code"),
    [
        ("OutputVideoSensitiveContentDetected.PolicyViolation", "content_policy"),
        ("OutputVideoSensitiveContentDetected", "content_policy"),
        ("InputImageSensitiveContentDetected", "content_policy"),
        ("ModelNotOpen", "model_not_open"),
        ("InternalServiceError", "server_error"),
        ("SomethingElse", "generation_failed"),
    ],
)
def test_failed_task_codes(bp, upstream, code):
    responses.get(
        f"{TASKS}/{TASK_ID}", json=task("failed", error={"code": upstream, "message": f"upstream says {KEY}"})
    )
    status = bp.status(TASK_ID)
    assert status.state is JobState.FAILED and status.error_code == code
    assert upstream in status.error_message and KEY not in status.error_message
    if code == "model_not_open":
        assert "Activate the model in the BytePlus ModelArk console" in status.error_message


@responses.activate
def test_failed_task_without_an_error_object(bp):
    responses.get(f"{TASKS}/{TASK_ID}", json=task("failed", error="boom"))
    status = bp.status(TASK_ID)
    assert status.state is JobState.FAILED and status.error_message == "boom"


# --- errors ----------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("http", "upstream", "code", "permanent", "retry_after"),
    [
        (401, "AuthenticationError", "invalid_api_key", True, None),
        (403, "AccessDenied", "permission_denied", True, None),
        (403, "AccountOverdueError", "insufficient_balance", True, None),
        (404, "ModelNotOpen", "model_not_open", True, None),
        (400, "MissingParameter", "invalid_request", True, None),
        (400, "InvalidParameter", "invalid_request", True, None),
        (404, "InvalidEndpointOrModel.NotFound", "model_not_available", True, None),
        (404, "InvalidEndpoint.NotFound", "model_not_available", True, None),
        (400, "InputTextSensitiveContentDetected", "content_policy", True, None),
        (400, "InputImageSensitiveContentDetected", "content_policy", True, None),
        (429, "RateLimitExceeded.EndpointRPMExceeded", "rate_limited", False, 2.0),
        (429, "RateLimitExceeded.EndpointTPMExceeded", "rate_limited", False, 2.0),
        (429, "ModelAccountRpmRateLimitExceeded", "rate_limited", False, 2.0),
        (429, "ModelAccountTpmRateLimitExceeded", "rate_limited", False, 2.0),
        (429, "QuotaExceeded", "quota_exceeded", True, None),
        (429, "ModelLoadingError", "server_error", False, 2.0),
        (429, "ServerOverloaded", "server_error", False, 2.0),
        (500, "InternalServiceError", "server_error", False, 2.0),
    ],
)
def test_ark_error_codes_on_create(bp, http, upstream, code, permanent, retry_after):
    responses.post(
        TASKS, status=http, json=ark_error(upstream, f"no; your key {KEY}", "duration"), headers={"Retry-After": "2"}
    )
    with pytest.raises(ProviderError) as info:
        bp.submit(spec())
    error = info.value
    assert (error.code, error.permanent, error.retry_after, error.status_code) == (code, permanent, retry_after, http)
    assert upstream in error.message and "param duration" in error.message
    assert KEY not in str(error) and KEY not in repr(error)
    # no idempotency key and no lookup: only a server-side failure may have started a task
    assert error.uncertain is (code == "server_error")
    if code == "model_not_open":
        assert "Activate the model in the BytePlus ModelArk console" in error.message


@responses.activate
def test_a_rate_limit_without_retry_after_waits_a_default(bp):
    responses.post(TASKS, status=429, json=ark_error("RateLimitExceeded.EndpointRPMExceeded"))
    with pytest.raises(ProviderError) as info:
        bp.submit(spec())
    assert info.value.retry_after == 10.0 and not info.value.uncertain


@responses.activate
def test_a_poll_500_is_transient_and_not_uncertain(bp):
    responses.get(f"{TASKS}/{TASK_ID}", status=500, json=ark_error("InternalServiceError"))
    with pytest.raises(ProviderError) as info:
        bp.status(TASK_ID)
    assert not info.value.permanent and not info.value.uncertain


@responses.activate
def test_a_poll_timeout_is_transient(bp):
    responses.get(f"{TASKS}/{TASK_ID}", body=requests.ReadTimeout("slow"))
    with pytest.raises(ProviderError) as info:
        bp.status(TASK_ID)
    assert info.value.code == "timeout" and not info.value.permanent and not info.value.uncertain


@responses.activate
def test_a_create_timeout_is_uncertain(bp):
    responses.post(TASKS, body=requests.ReadTimeout("slow"))
    with pytest.raises(ProviderError) as info:
        bp.submit(spec())
    assert info.value.uncertain and not info.value.permanent


ODD_BODIES = [
    b"",
    b"not json",
    b"<html><body>502 Bad Gateway " + KEY.encode() + b"</body></html>",
    b"null",
    b"[]",
    b'"just a string"',
    b"42",
    b'{"error": null}',
    b'{"error": "flat"}',
    b'{"error": {"code": 5, "message": ["a"], "param": {}}}',
    b'{"error": {"code": null}}',
    b'{"code": "Whatever", "message": "top level"}',
    b'{"error": {"message": "' + KEY.encode() + b'"}}',
    b"\xff\xfe\x00garbage",
]


@responses.activate
@pytest.mark.parametrize("body", ODD_BODIES)
@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
def test_error_parsing_survives_any_body(bp, body, status):
    responses.get(TASKS, status=status, body=body)
    with pytest.raises(ProviderError) as info:
        bp.validate_key()
    assert info.value.status_code == status and KEY not in str(info.value)
    assert info.value.permanent is (status not in (429, 500, 503))


def test_error_fields_and_classify_by_prefix():
    assert error_fields({"error": {"code": "X", "message": "m", "param": "p"}}) == ("X", "m", "p")
    assert error_fields(None) == ("", "", "")
    assert classify("RateLimitExceeded.SomethingNew", 429) == ("rate_limited", False)
    assert classify("SomeSensitiveContentDetected.New", 400) == ("content_policy", True)
    assert classify("", 502) == ("server_error", False)
    assert classify("", 418) == ("invalid_request", True)


# --- validate_key, cancel, callbacks ---------------------------------------------------------


@responses.activate
def test_validate_key_lists_one_task(bp):
    responses.get(TASKS, json={"total": 0, "items": []})
    assert bp.validate_key() is None
    assert "page_size=1" in responses.calls[0].request.url and "page_num=1" in responses.calls[0].request.url


@responses.activate
def test_cancel_deletes_a_queued_task(bp):
    responses.get(f"{TASKS}/{TASK_ID}", json=task("queued"))
    responses.delete(f"{TASKS}/{TASK_ID}", body=b"")
    bp.cancel(TASK_ID)
    assert [c.request.method for c in responses.calls] == ["GET", "DELETE"]


@responses.activate
@pytest.mark.parametrize(("raw", "code"), [("running", "not_cancelable"), ("succeeded", "invalid_state"),
                                           ("failed", "invalid_state"), ("expired", "invalid_state")])  # fmt: skip
def test_cancel_never_deletes_a_running_or_finished_task(bp, raw, code):
    responses.get(f"{TASKS}/{TASK_ID}", json=task(raw))
    with pytest.raises(ProviderError) as info:
        bp.cancel(TASK_ID)
    assert info.value.code == code and info.value.permanent
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
@pytest.mark.parametrize("gone", [True, False])
def test_cancel_of_a_cancelled_or_vanished_task_is_a_no_op(bp, gone):
    if gone:
        responses.get(f"{TASKS}/{TASK_ID}", status=404, json=ark_error("ResourceNotFound", kind="NotFound"))
    else:
        responses.get(f"{TASKS}/{TASK_ID}", json=task("cancelled"))
    assert bp.cancel(TASK_ID) is None
    assert [c.request.method for c in responses.calls] == ["GET"]


def test_verify_callback_reads_the_task_id_only(bp):
    delivery = bp.verify_callback(headers={}, body=json.dumps(task("succeeded")).encode())
    assert delivery.job_id == TASK_ID
    for body in (b"", b"nope", b"[]", b'{"status": "succeeded"}', b'{"id": ""}', b'{"id": 5}', b"\xff"):
        with pytest.raises(CallbackRejected):
            bp.verify_callback(headers={}, body=body)


def test_flags_and_registry():
    cls = registry.get_provider_class("byteplus")
    assert cls is BytePlusProvider
    assert (cls.supplier_kind, cls.supports_callbacks, cls.callback_verification) == ("direct", True, "token")
    assert cls.supports_cancel and not cls.supports_delete
    assert cls.default_base_url == "https://ark.ap-southeast.bytepluses.com/api/v3"
    assert BytePlusProvider.check_credentials(Credentials(api_key="Bearer abc")) == {
        "api_key": "A ModelArk API key has no spaces (paste the key alone, without 'Bearer')."
    }
    assert BytePlusProvider.check_credentials(Credentials(api_key="abcdef0123")) == {}


def test_base_url_setting(settings):
    settings.BYTEPLUS_BASE_URL = "https://ark.eu-west.bytepluses.com/api/v3/"
    assert registry.build("byteplus", Credentials(api_key=KEY)).base_url == "https://ark.eu-west.bytepluses.com/api/v3"


# --- token prices ----------------------------------------------------------------------------


def test_token_formula_and_per_second_prices_are_exact():
    assert bp_catalog.tokens_per_second("1280x720") == Decimal(21600)  # §9: ≈ 21,600 tokens/s at 720p
    assert bp_catalog.tokens_per_second("1920x1080") == Decimal(48600)
    assert bp_catalog.tokens_per_second("854x480") == Decimal("9607.5")
    s20 = get_model("byteplus/seedance-2.0")
    assert s20.price_per_second["1280x720"] == Decimal("0.216")  # 21,600 x $10 / M
    assert s20.price_per_second["1920x1080"] == Decimal("0.486")
    assert s20.price_per_second["854x480"] == Decimal("0.096075")
    assert s20.cost(seconds=5, size="1280x720") == Decimal("1.0800")
    assert s20.cost(seconds=5, size="854x480") == Decimal("0.4804")  # 0.480375, half-up
    fast = get_model("byteplus/seedance-2.0-fast")
    assert fast.price_per_second["1280x720"] == Decimal("0.1728") and "1920x1080" not in fast.sizes
    pro = get_model("byteplus/seedance-1.5-pro")
    assert pro.cost(seconds=4, size="1280x720", audio=True) == Decimal("0.2074")  # 86,400 x $2.40 / M
    assert pro.cost(seconds=4, size="1280x720", audio=False) == Decimal("0.1037")  # 86,400 x $1.20 / M
    for model in bp_catalog.MODELS:
        per_token = Decimal(str(model.extra["usd_per_million_tokens"])) / 1_000_000
        for size, price in model.price_per_second.items():
            width, height = (int(x) for x in size.split("x"))
            assert price == Decimal(width * height * 24) / 1024 * per_token, (model.id, size)


def test_the_catalog_pins_dated_ids():
    pinned = {m.id: m.provider_model for m in bp_catalog.MODELS}
    assert pinned == {
        "seedance-2.0": "dreamina-seedance-2-0-260128",
        "seedance-2.0-fast": "dreamina-seedance-2-0-fast-260128",
        "seedance-2.5": "dreamina-seedance-2-5-260628",
        "seedance-1.5-pro": "seedance-1-5-pro-251215",
    }
    assert all(m.provider == "byteplus" and m.price_source_date for m in bp_catalog.MODELS)
