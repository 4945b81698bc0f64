"""MiniMax adapter with ``responses`` (no emulator): both generations' bodies, every status and
every ``base_resp`` code, the v2 envelope, the three-step download, regions and callbacks."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.providers import registry
from apps.providers.base import CallbackRejected, Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.catalog import supplier_model
from apps.providers.minimax.adapter import CN_HOST, CODES, GLOBAL_HOST, MinimaxProvider, problem_of, state_of

BASE = GLOBAL_HOST
KEY = "mm-fake-key-test-unit-minimax-0000"
PNG = InputImage(data=b"\x89PNG fake", content_type="image/png")
V1 = {"api": "v1", "created_at": 0}


@pytest.fixture
def mm(settings, monkeypatch):
    monkeypatch.delenv("MINIMAX_BASE_URL", raising=False)
    if hasattr(settings, "MINIMAX_BASE_URL"):
        del settings.MINIMAX_BASE_URL
    return MinimaxProvider(Credentials(api_key=KEY), BASE)


def spec(**kwargs):
    values = {"model": "hailuo-2.3", "prompt": "a lighthouse at dusk [Push in]", "seconds": 6, "size": "1366x768"}
    return GenerationSpec(**{**values, **kwargs})


def ok(**extra):
    return {**extra, "base_resp": {"status_code": 0, "status_msg": "success"}}


def code_body(code, msg="upstream says no"):
    return {"base_resp": {"status_code": code, "status_msg": msg}}


def sent(index=0):
    return json.loads(responses.calls[index].request.body)


# --- request bodies ---------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {"model": "MiniMax-Hailuo-2.3", "duration": 6, "resolution": "768P"}),
        ({"seconds": 10}, {"model": "MiniMax-Hailuo-2.3", "duration": 10, "resolution": "768P"}),
        ({"size": "1920x1080"}, {"model": "MiniMax-Hailuo-2.3", "duration": 6, "resolution": "1080P"}),
        ({"model": "hailuo-2.3-fast", "image": PNG}, {"model": "MiniMax-Hailuo-2.3-Fast", "resolution": "768P"}),
    ],
)
def test_v1_body_per_model(mm, kwargs, expected):
    responses.post(f"{BASE}/v1/video_generation", json=ok(task_id="106916112212032"))
    job = mm.submit(spec(callback_url="https://mr.example/hooks/minimax/g/t", **kwargs))
    assert job.job_id == "106916112212032" and job.data["api"] == "v1"
    assert abs(job.data["created_at"] - time.time()) < 60
    body = sent()
    assert {k: body[k] for k in expected} == expected
    assert body["prompt"] == "a lighthouse at dusk [Push in]" and body["prompt_optimizer"] is False
    assert body["callback_url"] == "https://mr.example/hooks/minimax/g/t"
    assert isinstance(body["duration"], int)
    if "image" in kwargs:
        assert body["first_frame_image"].startswith("data:image/png;base64,")
    else:
        assert "first_frame_image" not in body
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


@responses.activate
@pytest.mark.parametrize(
    ("size", "image", "resolution", "ratio"),
    [
        ("1366x768", None, "768P", "16:9"),
        ("2560x1440", None, "2K", "16:9"),
        ("768x1366", None, "768P", "9:16"),
        ("3360x1440", None, "2K", "21:9"),
        ("1440x1440", InputImage(url="https://img.example/first.png"), "2K", "1:1"),
    ],
)
def test_v2_body(mm, size, image, resolution, ratio):
    responses.post(f"{BASE}/v2/video_generation", json={"task_id": "3069"})
    job = mm.submit(spec(model="minimax-h3", seconds=12, size=size, image=image))
    assert job.job_id == "3069" and job.data["api"] == "v2"
    body = sent()
    assert body["model"] == "MiniMax-H3" and body["duration"] == 12
    assert (body["resolution"], body["ratio"], body["aigc_watermark"]) == (resolution, ratio, False)
    assert body["content"][0] == {"type": "text", "text": "a lighthouse at dusk [Push in]"}
    if image:
        assert body["content"][1] == {
            "type": "image_url", "image_url": {"url": "https://img.example/first.png"}, "role": "first_frame",
        }  # fmt: skip
    else:
        assert len(body["content"]) == 1
    assert "callback_url" not in body


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"size": "1920x1080", "seconds": 10}, "1080P videos of 6 seconds only"),
        ({"model": "hailuo-2.3-fast"}, "from an image only"),
        ({"seed": 3}, "seed"),
        ({"negative_prompt": "blur"}, "negative prompt"),
        ({"audio": True}, "silent"),
        ({"model": "minimax-h3", "seconds": 5, "audio": False}, "cannot be switched off"),
        ({"prompt": "x" * 2001}, "2000 characters"),
        ({"prompt": "  "}, "needs a prompt"),
        ({"size": "1280x720"}, "supports sizes"),
        ({"image": InputImage(url="http://insecure.example/a.png")}, "https image URL"),
        ({"image": InputImage(data=b"GIF89a", content_type="image/gif")}, "not image/gif"),
        ({"model": "no-such-model"}, "no catalog entry"),
    ],
)
@responses.activate
def test_what_a_model_cannot_do_is_refused_before_submitting(mm, kwargs, words):
    with pytest.raises(ProviderError) as info:
        mm.submit(spec(**kwargs))
    assert info.value.permanent and words in info.value.message
    assert not responses.calls


# --- statuses ---------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("Preparing", JobState.QUEUED),
        ("Queueing", JobState.QUEUED),
        ("Processing", JobState.IN_PROGRESS),
        ("Success", JobState.COMPLETED),
        ("SUCCESS", JobState.COMPLETED),
        ("Fail", JobState.FAILED),
        ("Rendering", JobState.IN_PROGRESS),  # unknown: keep polling
    ],
)
def test_v1_status_mapping(mm, raw, state):
    done = state is JobState.COMPLETED
    extra = {"file_id": "176844028768320", "video_width": 1366, "video_height": 768} if done else {}
    body = {"task_id": "1", "status": raw, **extra, "base_resp": {"status_code": 1026 if raw == "Fail" else 0}}
    responses.get(f"{BASE}/v1/query/video_generation", json=body)
    job = mm.status("1", job_data=V1)
    assert job.state is state and job.raw_status == raw
    assert responses.calls[0].request.params == {"task_id": "1"}
    if state is JobState.COMPLETED:
        assert job.progress == 100 and job.usage["file_id"] == "176844028768320" and job.output_urls == ()
    if raw == "Fail":
        assert job.error_code == "content_policy" and "(1026)" in job.error_message


@responses.activate
@pytest.mark.parametrize(
    ("raw", "state", "code"),
    [
        ("queued", JobState.QUEUED, None),
        ("running", JobState.IN_PROGRESS, None),
        ("succeeded", JobState.COMPLETED, None),
        ("failed", JobState.FAILED, "content_policy"),
        ("cancelled", JobState.CANCELED, None),
        ("expired", JobState.FAILED, "output_expired"),
        ("thinking", JobState.IN_PROGRESS, None),
    ],
)
def test_v2_status_mapping(mm, raw, state, code):
    task = {"id": "9", "status": raw, "content": {"url": "https://cdn.example/v.mp4?sig=1"}, "usage": {"s": 5}}
    if raw == "failed":
        task.update(content=None, error={"code": 1027, "message": "output new_sensitive"})
    responses.get(f"{BASE}/v2/query/video_generation/9", json={"task": task})
    job = mm.status("9", job_data={"api": "v2", "created_at": time.time()})
    assert (job.state, job.error_code) == (state, code)
    if state is JobState.COMPLETED:
        assert job.output_urls == ("https://cdn.example/v.mp4?sig=1",) and job.usage == {"s": 5}


@responses.activate
def test_success_without_output_fails(mm):
    responses.get(f"{BASE}/v1/query/video_generation", json=ok(task_id="1", status="Success", file_id=""))
    assert mm.status("1", job_data=V1).error_code == "no_output"
    responses.get(f"{BASE}/v2/query/video_generation/2", json={"task": {"status": "succeeded", "content": {}}})
    assert mm.status("2", job_data={"api": "v2"}).error_code == "no_output"


@responses.activate
def test_v2_tasks_older_than_seven_days_fail_cleanly(mm):
    old = {"api": "v2", "created_at": time.time() - 8 * 86400}
    job = mm.status("5", job_data=old)
    assert job.state is JobState.FAILED and job.error_code == "output_expired" and not responses.calls
    body = {"type": "error", "error": {"type": "bad_request_error", "message": "invalid task_id (2013)"}}
    responses.get(f"{BASE}/v2/query/video_generation/6", json=body, status=404)
    assert mm.status("6", job_data={"api": "v2"}).error_code == "output_expired"  # undated: gone
    with pytest.raises(ProviderError) as info:  # a young task that is unknown is a real error
        mm.status("6", job_data={"api": "v2", "created_at": time.time()})
    assert info.value.permanent


def test_state_of_any_spelling():
    assert state_of("success") is state_of("Success") is state_of(" SUCCEEDED ") is JobState.COMPLETED
    assert state_of(None) is state_of(42) is JobState.IN_PROGRESS


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(CODES))
@responses.activate
def test_every_base_resp_code_under_http_200(mm, code):
    responses.post(f"{BASE}/v1/video_generation", json=code_body(code, f"upstream says no; key {KEY}"))
    with pytest.raises(ProviderError) as info:
        mm.submit(spec())
    error = info.value
    ours, permanent, _what = CODES[code]
    assert (error.code, error.permanent, error.status_code) == (ours, permanent, 200)
    assert f"({code})" in error.message and "upstream says no" in error.message and KEY not in error.message
    assert not error.uncertain  # a business error creates no task
    assert (error.retry_after is not None) == (ours == "rate_limited")


@pytest.mark.parametrize(
    ("code", "ours", "auth"),
    [(1004, "invalid_api_key", True), (1002, "rate_limited", False), (1008, "insufficient_balance", False),
     (1026, "content_policy", False), (1027, "content_policy", False), (2013, "invalid_request", False),
     (2061, "model_not_available", False)],
)  # fmt: skip
@responses.activate
def test_the_contracts_classes(mm, code, ours, auth):
    responses.get(f"{BASE}/v1/files", json=code_body(code))
    with pytest.raises(ProviderError) as info:
        mm.validate_key()
    assert info.value.code == ours and info.value.is_auth_error is auth


@responses.activate
def test_2061_says_the_plan_cannot_reach_the_model(mm):
    responses.post(f"{BASE}/v1/video_generation", json=code_body(2061, "your current token plan not support model"))
    with pytest.raises(ProviderError) as info:
        mm.submit(spec(size="1920x1080"))
    assert info.value.permanent and "plan cannot reach this model" in info.value.message
    assert "pay-as-you-go" in info.value.message


@responses.activate
def test_an_unknown_code_is_a_permanent_provider_error(mm):
    responses.get(f"{BASE}/v1/files", json=code_body(4242))
    with pytest.raises(ProviderError) as info:
        mm.validate_key()
    assert info.value.code == "provider_error" and info.value.permanent and "4242" in info.value.message


def v2_error(kind, message, http_code):
    error = {"type": kind, "message": message, "http_code": str(http_code)}
    return {"type": "error", "error": error, "request_id": "r"}


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "code", "permanent"),
    [
        (400, v2_error("bad_request_error", "duration must be 5-15 (2013)", 400), "invalid_request", True),
        (401, v2_error("authorized_error", "login fail (1004)", 401), "invalid_api_key", True),
        (402, v2_error("insufficient_balance_error", "insufficient balance (1008)", 402), "insufficient_balance", True),
        (422, v2_error("unprocessable_entity_error", "cannot (9999)", 422), "invalid_request", True),
        (429, v2_error("rate_limit_error", "rate limit exceeded (1002)", 429), "rate_limited", False),
        (400, v2_error("bad_request_error", "plan not support (2061)", 400), "model_not_available", True),
        (500, v2_error("server_error", "internal", 500), "server_error", False),
        (503, "<html>bad gateway</html>", "server_error", False),
    ],
)
def test_v2_errors(mm, status, body, code, permanent):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.post(f"{BASE}/v2/video_generation", status=status, **kwargs)
    with pytest.raises(ProviderError) as info:
        mm.submit(spec(model="minimax-h3", seconds=5))
    assert (info.value.code, info.value.permanent, info.value.status_code) == (code, permanent, status)
    assert info.value.uncertain is (status >= 500)  # a 5xx create may have made the task
    if status == 429:
        assert info.value.retry_after == 10.0


@responses.activate
def test_a_create_without_task_id_or_json_is_uncertain(mm):
    responses.post(f"{BASE}/v1/video_generation", json=ok())
    with pytest.raises(ProviderError) as info:
        mm.submit(spec())
    assert info.value.uncertain and info.value.code == "bad_response"
    responses.replace(responses.POST, f"{BASE}/v1/video_generation", body="<html>")
    with pytest.raises(ProviderError) as info:
        mm.submit(spec())
    assert info.value.uncertain


@responses.activate
def test_a_read_timeout_on_create_is_uncertain(mm):
    responses.post(f"{BASE}/v1/video_generation", body=requests.ReadTimeout("slow"))
    with pytest.raises(ProviderError) as info:
        mm.submit(spec())
    assert info.value.uncertain and not info.value.permanent


ODD = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["base_resp", "status_code", "status_msg", "error", "message", "code", "type", "task", "status",
         "task_id", "file_id", "content", "url", "challenge", "id"]), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=ODD, status=st.sampled_from([200, 400, 401, 404, 429, 500]))
def test_any_body_maps_to_a_status_or_a_provider_error(mm, body, status):
    problem_of(body)
    for api, url in (("v1", f"{BASE}/v1/query/video_generation"), ("v2", f"{BASE}/v2/query/video_generation/7")):
        with responses.RequestsMock() as mock:
            mock.get(url, json=body, status=status)
            try:
                mm.status("7", job_data={"api": api})
            except ProviderError as exc:
                assert KEY not in exc.message
        try:
            mm.verify_callback(headers={}, body=json.dumps(body).encode())
        except CallbackRejected:
            pass


@pytest.mark.parametrize("body", ["", "not json", "[1,2]", '"text"', "null"])
@responses.activate
def test_non_json_bodies_are_errors_not_crashes(mm, body):
    responses.get(f"{BASE}/v1/files", body=body)
    with pytest.raises(ProviderError) as info:
        mm.validate_key()
    assert info.value.code == "bad_response"


# --- the three-step download ------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize("file_id", ["176844028768320", 176844028768320])
def test_v1_download_runs_the_three_steps(mm, public_dns, file_id):
    responses.get(f"{BASE}/v1/query/video_generation", json=ok(task_id="1", status="Success", file_id=file_id))
    cdn = "https://video-product.cdn.minimax.io/out.mp4?Expires=1&Signature=s"
    responses.get(
        f"{BASE}/v1/files/retrieve",
        json=ok(file={"file_id": 176844028768320, "download_url": cdn, "filename": "output.mp4"}),
    )
    responses.get(cdn, body=b"MP4BYTES", content_type="video/mp4")
    with mm.download("1", url=None, job_data=V1) as dl:
        assert b"".join(dl.chunks) == b"MP4BYTES"
    query, retrieve, fetch = responses.calls
    assert query.request.params == {"task_id": "1"}
    assert retrieve.request.params == {"file_id": "176844028768320"}
    assert "Authorization" not in fetch.request.headers  # the URL is pre-signed


@responses.activate
def test_v1_download_falls_back_to_the_backup_url_and_refuses_an_unfinished_task(mm, public_dns):
    responses.get(f"{BASE}/v1/files/retrieve", json=ok(file={"backup_download_url": "https://cdn.hailuoai.com/b.mp4"}))
    assert mm.retrieve_url("5") == "https://cdn.hailuoai.com/b.mp4"
    responses.replace(responses.GET, f"{BASE}/v1/files/retrieve", json=ok(file={}))
    with pytest.raises(ProviderError, match="no download_url"):
        mm.retrieve_url("5")
    responses.get(f"{BASE}/v1/query/video_generation", json=ok(task_id="1", status="Processing"))
    with pytest.raises(ProviderError) as info:
        mm.download("1", job_data=V1)
    assert info.value.code == "not_ready" and not info.value.permanent


@responses.activate
@pytest.mark.parametrize(("status", "permanent"), [(403, False), (410, False), (500, False), (400, True)])
def test_download_errors(mm, public_dns, status, permanent):
    url = "https://cdn.example/v.mp4?sig=1"
    responses.get(url, status=status)
    with pytest.raises(ProviderError) as info:
        mm.download("9", url=url, job_data={"api": "v2"})
    assert info.value.permanent is permanent and info.value.code == "download_failed"


@responses.activate
def test_v2_download_reads_a_fresh_url(mm, public_dns):
    responses.get(
        f"{BASE}/v2/query/video_generation/9",
        json={"task": {"status": "succeeded", "content": {"url": "https://cdn.example/f"}}},
    )
    responses.get("https://cdn.example/f", body=b"V2")
    with mm.download("9", job_data={"api": "v2", "created_at": time.time()}) as dl:
        assert b"".join(dl.chunks) == b"V2"
    with pytest.raises(ProviderError) as info:
        mm.download("9", job_data={"api": "v2", "created_at": time.time() - 8 * 86400})
    assert info.value.code == "output_expired"
    with pytest.raises(ProviderError):
        mm.download("9", variant="thumbnail", job_data={"api": "v2"})


# --- regions, keys, flags ---------------------------------------------------------------------


def test_the_region_picks_the_host_unless_the_operator_set_one(settings, monkeypatch):
    monkeypatch.delenv("MINIMAX_BASE_URL", raising=False)
    if hasattr(settings, "MINIMAX_BASE_URL"):
        del settings.MINIMAX_BASE_URL
    assert registry.build("minimax", Credentials(api_key=KEY)).base_url == GLOBAL_HOST
    assert registry.build("minimax", Credentials(api_key=KEY, region=CN_HOST)).base_url == CN_HOST
    assert registry.build("minimax", Credentials(api_key=KEY, region=GLOBAL_HOST)).base_url == GLOBAL_HOST
    # not an allowed value: ignored here (and refused when the key is stored)
    assert registry.build("minimax", Credentials(api_key=KEY, region="https://evil.example")).base_url == GLOBAL_HOST
    settings.MINIMAX_BASE_URL = "http://127.0.0.1:9108"
    assert registry.build("minimax", Credentials(api_key=KEY, region=CN_HOST)).base_url == "http://127.0.0.1:9108"


def test_check_credentials_allows_the_two_hosts_only():
    assert MinimaxProvider.check_credentials(Credentials(api_key=KEY, region=CN_HOST)) == {}
    assert MinimaxProvider.check_credentials(Credentials(api_key=KEY)) == {}
    assert "region" in MinimaxProvider.check_credentials(Credentials(api_key=KEY, region="https://api.minimax.chat"))
    field = MinimaxProvider.key_field("region")
    assert field.kind == "choice" and not field.secret and {v for v, _ in field.choices} == {GLOBAL_HOST, CN_HOST}


def test_flags():
    assert (MinimaxProvider.supports_cancel, MinimaxProvider.supports_callbacks) == (False, True)
    assert MinimaxProvider.callback_verification == "token" and MinimaxProvider.supplier_kind == "direct"
    with pytest.raises(ProviderError) as info:
        MinimaxProvider(Credentials(api_key=KEY), BASE).cancel("1")
    assert info.value.code == "unsupported"


# --- callbacks --------------------------------------------------------------------------------


def test_the_challenge_is_echoed_and_pushes_name_their_task(mm):
    assert mm.verify_callback(headers={}, body=b'{"challenge":"abc123"}').reply == {"challenge": "abc123"}
    push = json.dumps({"task_id": "106916112212032", "status": "success", "file_id": 5, "base_resp": {}}).encode()
    assert mm.verify_callback(headers={}, body=push).job_id == "106916112212032"
    assert mm.verify_callback(headers={}, body=b'{"task_id": 42}').job_id == "42"
    assert mm.verify_callback(headers={}, body=b'{"task": {"id": "77", "status": "success"}}').job_id == "77"
    for bad in (b"", b"nope", b"[]", b'{"status": "success"}', b'{"challenge": null, "x": 1}', b'{"challenge": [1]}'):
        with pytest.raises(CallbackRejected):
            mm.verify_callback(headers={}, body=bad)


# --- catalog ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "seconds", "size", "price"),
    [
        ("hailuo-2.3", 6, "1366x768", "0.2800"),
        ("hailuo-2.3", 10, "1366x768", "0.5600"),
        ("hailuo-2.3", 6, "1920x1080", "0.4900"),
        ("hailuo-2.3-fast", 6, "1366x768", "0.1900"),
        ("hailuo-2.3-fast", 10, "1366x768", "0.3200"),
        ("minimax-h3", 5, "1366x768", "0.4000"),
        ("minimax-h3", 10, "2560x1440", "1.3000"),
        ("minimax-h3", 15, "768x768", "1.2000"),
    ],
)
def test_catalog_prices(model, seconds, size, price):
    entry = supplier_model("minimax", model)
    assert entry.cost(seconds=seconds, size=size) == Decimal(price)
    assert entry.extra["api"] == ("v2" if model == "minimax-h3" else "v1")
