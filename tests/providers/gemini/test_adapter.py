"""Gemini API adapter with ``responses`` (no emulator): the Veo and Omni bodies per model, the
key's model listing and the retired-model refusal, every operation and interaction shape, Google's
error envelope, keyed downloads and the catalog's prices."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.providers import registry
from apps.providers.base import Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.catalog import supplier_model
from apps.providers.gemini import adapter as gemini_adapter
from apps.providers.gemini.adapter import GOOGLE_HOST, GeminiProvider, problem_of, seconds_of

BASE = GOOGLE_HOST
KEY = "AIzaFakeKey-test-unit-gemini-000000"
PNG = InputImage(data=b"\x89PNG fake", content_type="image/png")
OP = "models/veo-3.1-generate-001/operations/abc123"
VEO = {"api": "veo", "model": "veo-3.1-generate-001"}
OMNI = {"api": "omni", "model": "gemini-omni-1.1-flash"}
FILE = f"{BASE}/v1beta/files/f1:download?alt=media"


@pytest.fixture
def g():
    return GeminiProvider(Credentials(api_key=KEY), BASE, options={"API_REVISION": "2026-05-20"})


def spec(**kwargs):
    values = {"model": "veo-3.1", "prompt": "a lighthouse at dusk", "seconds": 8, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def listing(*ids, token=None):
    models = [{"name": f"models/{i}", "supportedGenerationMethods": ["predictLongRunning"]} for i in ids]
    models.append({"name": "models/gemini-3-flash", "supportedGenerationMethods": ["generateContent"]})
    body = {"models": models}
    if token:
        body["nextPageToken"] = token
    return body


def list_models(*ids):
    responses.get(f"{BASE}/v1beta/models", json=listing(*ids))


def google_error(status, grpc, message="upstream says no", details=None):
    error = {"code": status, "message": message, "status": grpc}
    if details is not None:
        error["details"] = details
    return {"error": error}


def sent(index=-1):
    return json.loads(responses.calls[index].request.body)


def done(result):
    return {"name": OP, "done": True, "response": {"generateVideoResponse": result}}


# --- request bodies ---------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("kwargs", "upstream", "parameters"),
    [
        ({}, "veo-3.1-generate-001", {"durationSeconds": 8, "aspectRatio": "16:9", "resolution": "720p"}),
        ({"seconds": 4, "size": "720x1280"}, "veo-3.1-generate-001", {"durationSeconds": 4, "aspectRatio": "9:16"}),
        ({"size": "1920x1080"}, "veo-3.1-generate-001", {"resolution": "1080p", "durationSeconds": 8}),
        ({"size": "2160x3840"}, "veo-3.1-generate-001", {"resolution": "4k", "aspectRatio": "9:16"}),
        ({"model": "veo-3.1-fast", "seconds": 6}, "veo-3.1-fast-generate-001", {"durationSeconds": 6}),
        ({"negative_prompt": "blur"}, "veo-3.1-generate-001", {"negativePrompt": "blur"}),
    ],
)
def test_veo_body_per_model(g, kwargs, upstream, parameters):
    list_models("veo-3.1-generate-001", "veo-3.1-fast-generate-001")
    name = f"models/{upstream}/operations/op1"
    responses.post(f"{BASE}/v1beta/models/{upstream}:predictLongRunning", json={"name": name, "done": False})
    job = g.submit(spec(**kwargs))
    assert job.job_id == name and job.data == {"api": "veo", "model": upstream}
    body = sent()
    assert body["instances"] == [{"prompt": "a lighthouse at dusk"}]
    assert {k: body["parameters"][k] for k in parameters} == parameters
    assert body["parameters"]["sampleCount"] == 1
    # Vertex-only fields (and ones the SDK refuses on this surface) are never sent (quirk 5)
    for name_ in ("generateAudio", "seed", "storageUri", "enhancePrompt", "labels"):
        assert name_ not in body["parameters"] and name_ not in body
    for call in responses.calls:
        assert call.request.headers["x-goog-api-key"] == KEY
        assert KEY not in call.request.url and "key=" not in call.request.url


@responses.activate
def test_veo_image_goes_inline_as_base64(g):
    list_models("veo-3.1-generate-001")
    responses.post(f"{BASE}/v1beta/models/veo-3.1-generate-001:predictLongRunning", json={"name": OP})
    g.submit(spec(image=PNG))
    image = sent()["instances"][0]["image"]
    assert image == {"bytesBase64Encoded": base64.b64encode(PNG.data).decode(), "mimeType": "image/png"}


@responses.activate
def test_veo_image_given_by_url_is_fetched_without_the_key(g, public_dns):
    list_models("veo-3.1-generate-001")
    responses.get("https://img.example/first.webp", body=b"RIFFwebp", content_type="image/webp")
    responses.post(f"{BASE}/v1beta/models/veo-3.1-generate-001:predictLongRunning", json={"name": OP})
    g.submit(spec(image=InputImage(url="https://img.example/first.webp")))
    fetch = next(c for c in responses.calls if c.request.url.startswith("https://img.example"))
    assert "x-goog-api-key" not in fetch.request.headers
    assert sent()["instances"][0]["image"]["mimeType"] == "image/webp"


@responses.activate
@pytest.mark.parametrize(
    ("image", "block"),
    [
        (None, None),
        (
            InputImage(url="https://img.example/a.png", content_type="image/png"),
            {"type": "image", "uri": "https://img.example/a.png", "mime_type": "image/png"},
        ),
        (PNG, {"type": "image", "data": base64.b64encode(PNG.data).decode(), "mime_type": "image/png"}),
    ],
)
def test_omni_body(g, image, block):
    responses.post(f"{BASE}/v1beta/interactions", json={"id": "v1_int1", "status": "queued"})
    job = g.submit(spec(model="gemini-omni-1.1-flash", seconds=10, size="720x1280", image=image))
    assert job.job_id == "v1_int1" and job.data == OMNI
    body = sent()
    assert body["model"] == "gemini-omni-1.1-flash" and body["background"] is True
    assert body["response_format"] == {"type": "video", "aspect_ratio": "9:16", "resolution": "720p", "delivery": "uri"}
    assert body["input"][0] == {"type": "text", "text": "a lighthouse at dusk"}
    assert body["input"][1:] == ([block] if block else [])
    assert "duration" not in body["response_format"]  # Omni 1.1 picks its own length
    headers = responses.calls[0].request.headers
    assert headers["Api-Revision"] == "2026-05-20" and headers["x-goog-api-key"] == KEY
    assert len(responses.calls) == 1  # no model listing for Omni


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"size": "1920x1080", "seconds": 4}, "1080p videos of 8 seconds only"),
        ({"size": "3840x2160", "seconds": 6}, "4k videos of 8 seconds only"),
        ({"model": "veo-3.1-fast", "size": "3840x2160"}, "supports sizes"),
        ({"seconds": 5}, "durations of 4, 6, 8"),
        ({"seed": 3}, "Vertex AI only"),
        ({"audio": False}, "cannot be switched off"),
        ({"prompt": "  "}, "needs a prompt"),
        ({"image": InputImage(data=b"GIF89a", content_type="image/gif")}, "not image/gif"),
        ({"model": "gemini-omni-1.1-flash", "seconds": 10, "negative_prompt": "x"}, "negative prompt"),
        ({"model": "gemini-omni-1.1-flash", "seconds": 8}, "durations of 10"),
        (
            {"model": "gemini-omni-1.1-flash", "seconds": 10, "image": InputImage(url="http://img.example/a.png")},
            "https image URL",
        ),
    ],
)
@responses.activate
def test_what_a_model_cannot_do_is_refused_before_any_call(g, kwargs, words):
    with pytest.raises(ProviderError) as info:
        g.submit(spec(**kwargs))
    assert info.value.code == "invalid_request" and info.value.permanent
    assert words in info.value.message
    assert len(responses.calls) == 0


# --- the key's model listing and retired models -------------------------------------------------


@responses.activate
def test_a_model_the_key_no_longer_lists_is_refused_permanently(g):
    list_models("veo-3.1-lite-generate-preview")  # neither id of veo-3.1
    with pytest.raises(ProviderError) as info:
        g.submit(spec())
    error = info.value
    assert error.code == "model_not_available" and error.permanent and not error.uncertain
    assert "is no longer offered to this key by the Gemini API (Google retires video models without notice)" in (
        error.message
    )
    assert "veo-3.1-generate-001" in error.message
    assert [c.request.method for c in responses.calls] == ["GET"]  # nothing was created


@responses.activate
def test_the_first_listed_candidate_is_used(g):
    list_models("veo-3.1-generate-preview")  # only the preview id is still listed
    preview = "models/veo-3.1-generate-preview/operations/p1"
    responses.post(f"{BASE}/v1beta/models/veo-3.1-generate-preview:predictLongRunning", json={"name": preview})
    job = g.submit(spec())
    assert job.job_id == preview and job.data["model"] == "veo-3.1-generate-preview"


@responses.activate
def test_the_listing_is_cached_per_key_for_ten_minutes(g, monkeypatch):
    list_models("veo-3.1-generate-001")
    responses.post(f"{BASE}/v1beta/models/veo-3.1-generate-001:predictLongRunning", json={"name": OP})
    g.submit(spec())
    g.submit(spec())
    assert g.available_models() == {"veo-3.1-generate-001"}
    assert sum(c.request.method == "GET" for c in responses.calls) == 1
    other = GeminiProvider(Credentials(api_key=KEY + "x"), BASE)
    other.available_models()  # another key: its own listing
    assert sum(c.request.method == "GET" for c in responses.calls) == 2
    now = gemini_adapter.time.monotonic()
    monkeypatch.setattr(gemini_adapter.time, "monotonic", lambda: now + 601)
    g.available_models()
    assert sum(c.request.method == "GET" for c in responses.calls) == 3


@responses.activate
def test_a_404_on_create_means_retired_and_drops_the_cached_listing(g):
    list_models("veo-3.1-generate-001")
    responses.post(
        f"{BASE}/v1beta/models/veo-3.1-generate-001:predictLongRunning",
        status=404,
        json=google_error(404, "NOT_FOUND", "models/veo-3.1-generate-001 is no longer available."),
    )
    with pytest.raises(ProviderError) as info:
        g.submit(spec())
    error = info.value
    assert error.code == "model_not_available" and error.permanent and error.status_code == 404
    assert (
        "veo-3.1-generate-001 is no longer offered to this key" in error.message
        and "is no longer available" in error.message
    )
    responses.replace(responses.GET, f"{BASE}/v1beta/models", json=listing())
    with pytest.raises(ProviderError, match="no longer offered to this key"):
        g.submit(spec())
    assert sum(c.request.method == "GET" for c in responses.calls) == 2  # listed afresh


@responses.activate
def test_validate_key_reads_every_page_of_the_listing(g):
    responses.get(
        f"{BASE}/v1beta/models",
        json=listing("veo-3.1-generate-001", token="p2"),
        match=[responses.matchers.query_param_matcher({"pageSize": "1000"})],
    )
    responses.get(
        f"{BASE}/v1beta/models",
        json=listing("veo-3.1-fast-generate-001"),
        match=[responses.matchers.query_param_matcher({"pageSize": "1000", "pageToken": "p2"})],
    )
    assert g.validate_key() is None
    assert g.available_models() == {"veo-3.1-generate-001", "veo-3.1-fast-generate-001"}
    assert len(responses.calls) == 2  # validate_key filled the cache


def test_long_running_ids_survive_odd_entries():
    ids = GeminiProvider.long_running_ids(
        [
            {"name": "models/veo-a", "supportedGenerationMethods": ["predictLongRunning", "x"]},
            {"name": "veo-b", "supportedGenerationMethods": ["predictLongRunning"]},
            {"name": "models/text", "supportedGenerationMethods": ["generateContent"]},
            {"name": 3, "supportedGenerationMethods": ["predictLongRunning"]},
            {"name": "models/odd", "supportedGenerationMethods": "predictLongRunning"},
            {},
        ]
    )
    assert ids == {"veo-a", "veo-b"}


# --- Veo operations ---------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("operation", "state", "code", "urls"),
    [
        ({"name": OP}, JobState.IN_PROGRESS, None, ()),
        ({"name": OP, "done": False, "metadata": {"progress": 3}}, JobState.IN_PROGRESS, None, ()),
        (done({"generatedSamples": [{"video": {"uri": FILE}}]}), JobState.COMPLETED, None, (FILE,)),
        (done({"generatedSamples": [{"video": {"encodedVideo": "AAAA"}}]}), JobState.COMPLETED, None, ()),
        (done({"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["Support codes: 1"]}), JobState.FAILED,
         "content_policy", ()),
        (done({"raiMediaFilteredCount": 1}), JobState.FAILED, "content_policy", ()),
        (done({}), JobState.FAILED, "no_output", ()),
        ({"name": OP, "done": True}, JobState.FAILED, "no_output", ()),
        ({"name": OP, "done": True, "error": {"code": 13, "message": "internal"}}, JobState.FAILED, "server_error", ()),
        ({"name": OP, "done": True, "error": {"code": 3, "message": "bad"}}, JobState.FAILED, "invalid_request", ()),
        ({"name": OP, "done": True, "error": {"code": 8}}, JobState.FAILED, "rate_limited", ()),
        ({"name": OP, "done": True, "error": {"code": 2, "message": "The prompt was blocked by safety filters"}},
         JobState.FAILED, "content_policy", ()),
        ({"name": OP, "done": True, "error": {"status": "INTERNAL"}}, JobState.FAILED, "server_error", ()),
        ({"name": OP, "done": True, "error": {"code": 99}}, JobState.FAILED, "generation_failed", ()),
    ],
)  # fmt: skip
def test_operation_shapes(g, operation, state, code, urls):
    responses.get(f"{BASE}/v1beta/{OP}", json=operation)
    status = g.status(OP, job_data=VEO)
    assert status.state is state and status.error_code == code and status.output_urls == urls
    if state is JobState.FAILED:
        assert status.error_message.endswith("No charge.")
    assert responses.calls[0].request.headers["x-goog-api-key"] == KEY


@responses.activate
def test_the_filtered_result_names_googles_reasons(g):
    reasons = ["We encountered an issue. Support codes: 58061214."]
    responses.get(f"{BASE}/v1beta/{OP}", json=done({"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": reasons}))
    status = g.status(OP, job_data=VEO)
    assert status.raw_status == "filtered" and "Support codes: 58061214" in status.error_message


def test_a_job_id_that_is_no_operation_name_is_refused(g):
    for bad in ("models/x/operations/../../files", "operations/abc", "models/a b/operations/c"):
        with pytest.raises(ProviderError) as info:
            g.status(bad, job_data=VEO)
        assert info.value.code == "not_found" and info.value.permanent


# --- Omni interactions ------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("body", "state", "code"),
    [
        ({"status": "queued"}, JobState.QUEUED, None),
        ({"status": "in_progress"}, JobState.IN_PROGRESS, None),
        ({"status": "completed", "output_video": {"uri": FILE, "mime_type": "video/mp4"}}, JobState.COMPLETED, None),
        ({"status": "completed", "output_video": {"data": "AAAA"}}, JobState.COMPLETED, None),
        ({"status": "completed"}, JobState.FAILED, "no_output"),
        ({"status": "failed", "errors": [{"code": "INTERNAL", "message": "boom"}]}, JobState.FAILED,
         "generation_failed"),
        ({"status": "failed", "errors": [{"code": "SAFETY", "message": "blocked"}]}, JobState.FAILED,
         "content_policy"),
        ({"status": "failed"}, JobState.FAILED, "generation_failed"),
        ({"status": "cancelled"}, JobState.CANCELED, None),
        ({"status": "incomplete"}, JobState.FAILED, "generation_failed"),
        ({"status": "budget_exceeded"}, JobState.FAILED, "budget_exceeded"),
        ({"status": "requires_action"}, JobState.FAILED, "requires_action"),
        ({"status": "something_new"}, JobState.IN_PROGRESS, None),
        ({}, JobState.IN_PROGRESS, None),
    ],
)  # fmt: skip
def test_interaction_statuses(g, body, state, code):
    responses.get(f"{BASE}/v1beta/interactions/v1_int1", json={"id": "v1_int1", **body})
    status = g.status("v1_int1", job_data=OMNI)
    assert status.state is state and status.error_code == code
    assert status.raw_status == body.get("status", "")
    assert responses.calls[0].request.headers["Api-Revision"] == "2026-05-20"


@responses.activate
def test_the_delivered_seconds_go_into_usage(g):
    video = {"uri": FILE, "duration": "7s"}
    responses.get(
        f"{BASE}/v1beta/interactions/v1_a", json={"status": "completed", "output_video": video, "usage": {"t": 1}}
    )
    assert g.status("v1_a", job_data=OMNI).usage == {"t": 1, "output_seconds": 7.0}


@responses.activate
def test_cancel(g):
    responses.post(f"{BASE}/v1beta/interactions/v1_a/cancel", json={"id": "v1_a", "status": "cancelled"})
    g.cancel("v1_a", job_data=OMNI)
    assert responses.calls[0].request.headers["x-goog-api-key"] == KEY
    with pytest.raises(ProviderError) as info:
        g.cancel(OP, job_data=VEO)  # Veo operations have no cancel (§2.5)
    assert info.value.code == "unsupported" and info.value.permanent


# --- errors -----------------------------------------------------------------------------------

RETRY = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"}]
KEY_INVALID = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "code", "permanent", "retry_after"),
    [
        (400, google_error(400, "INVALID_ARGUMENT"), "invalid_request", True, None),
        (400, google_error(400, "INVALID_ARGUMENT", "API key not valid.", KEY_INVALID), "invalid_api_key", True, None),
        (400, google_error(400, "FAILED_PRECONDITION", "User location is not supported"), "failed_precondition",
         True, None),
        (401, google_error(401, "UNAUTHENTICATED"), "invalid_api_key", True, None),
        (403, google_error(403, "PERMISSION_DENIED"), "permission_denied", True, None),
        (404, google_error(404, "NOT_FOUND"), "not_found", True, None),
        (429, google_error(429, "RESOURCE_EXHAUSTED", details=RETRY), "rate_limited", False, 38.0),
        (429, google_error(429, "RESOURCE_EXHAUSTED"), "rate_limited", False, 10.0),
        (500, google_error(500, "INTERNAL"), "server_error", False, None),
        (503, "<html>Service Unavailable</html>", "server_error", False, None),
        (418, [1, 2], "invalid_request", True, None),
    ],
)  # fmt: skip
def test_googles_error_envelope(g, status, body, code, permanent, retry_after):
    kwargs = {"json": body} if not isinstance(body, str) else {"body": body}
    responses.get(f"{BASE}/v1beta/{OP}", status=status, **kwargs)
    with pytest.raises(ProviderError) as info:
        g.status(OP, job_data=VEO)
    error = info.value
    assert (error.code, error.permanent, error.retry_after, error.status_code) == (code, permanent, retry_after, status)
    assert not error.uncertain  # a GET


@responses.activate
@pytest.mark.parametrize(("status", "uncertain"), [(500, True), (504, True), (503, False), (429, False)])
def test_a_create_that_may_have_started_a_job_is_uncertain(g, status, uncertain):
    responses.post(f"{BASE}/v1beta/interactions", status=status, json=google_error(status, "X"))
    with pytest.raises(ProviderError) as info:
        g.submit(spec(model="gemini-omni-1.1-flash", seconds=10))
    assert info.value.uncertain is uncertain and not info.value.permanent


@responses.activate
def test_retry_after_header_wins_over_retry_info(g):
    responses.get(f"{BASE}/v1beta/{OP}", status=429, json=google_error(429, "RESOURCE_EXHAUSTED", details=RETRY),
                  headers={"Retry-After": "3"})  # fmt: skip
    with pytest.raises(ProviderError) as info:
        g.status(OP, job_data=VEO)
    assert info.value.retry_after == 3.0


@responses.activate
def test_the_key_never_appears_in_an_error(g):
    responses.get(f"{BASE}/v1beta/models", status=400, json=google_error(400, "INVALID_ARGUMENT", f"bad key {KEY}"))
    with pytest.raises(ProviderError) as info:
        g.validate_key()
    assert KEY not in str(info.value) and KEY not in repr(info.value) and "bad key ***" in info.value.message


@responses.activate
def test_create_answers_without_an_id_or_json_are_uncertain(g):
    responses.post(f"{BASE}/v1beta/interactions", json={"status": "queued"})
    responses.post(f"{BASE}/v1beta/interactions", body="<html>ok</html>")
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            g.submit(spec(model="gemini-omni-1.1-flash", seconds=10))
        assert info.value.code == "bad_response" and info.value.uncertain
    list_models("veo-3.1-generate-001")
    responses.post(f"{BASE}/v1beta/models/veo-3.1-generate-001:predictLongRunning", json={"name": "nonsense"})
    with pytest.raises(ProviderError) as info:
        g.submit(spec())
    assert info.value.code == "bad_response" and info.value.uncertain


@responses.activate
def test_a_read_timeout_on_create_is_uncertain(g):
    list_models("veo-3.1-generate-001")
    responses.post(f"{BASE}/v1beta/models/veo-3.1-generate-001:predictLongRunning", body=requests.ReadTimeout("slow"))
    with pytest.raises(ProviderError) as info:
        g.submit(spec())
    assert info.value.uncertain and info.value.code == "timeout"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "error": st.fixed_dictionaries(
            {}, optional={"code": JSON_VALUES, "status": JSON_VALUES, "message": JSON_VALUES, "details": JSON_VALUES}
        )
        | JSON_VALUES,
        "done": JSON_VALUES,
        "response": JSON_VALUES,
        "status": st.sampled_from(["queued", "completed", "failed", "cancelled"]) | JSON_VALUES,
        "output_video": JSON_VALUES,
        "errors": JSON_VALUES,
        "usage": JSON_VALUES,
    },
)


@given(body=SHAPED | JSON_VALUES, status=st.sampled_from([200, 400, 401, 403, 404, 429, 500, 503]))
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_body_maps_to_a_status_or_a_provider_error(g, body, status):
    for job_id, data in ((OP, VEO), ("v1_x", OMNI)):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.get(f"{BASE}/v1beta/{OP}", status=status, json=body)
            mock.get(f"{BASE}/v1beta/interactions/v1_x", status=status, json=body)
            try:
                result = g.status(job_id, job_data=data)
            except ProviderError as exc:
                assert KEY not in str(exc)
            else:
                assert result.state in JobState


@given(value=JSON_VALUES)
@settings(database=None)  # no example database left behind
def test_problem_of_and_seconds_of_survive_any_value(value):
    status, message, reason, delay = problem_of(value)
    assert isinstance(status, str) and isinstance(message, str) and isinstance(reason, str)
    assert delay is None or delay >= 0
    parsed = seconds_of(value)
    assert parsed is None or parsed >= 0


def test_seconds_of():
    assert seconds_of("38s") == 38.0 and seconds_of("1.5s") == 1.5
    assert seconds_of({"seconds": 2, "nanos": 500_000_000}) == 2.5
    assert seconds_of(3) == 3.0 and seconds_of("soon") is None and seconds_of(True) is None


# --- downloads --------------------------------------------------------------------------------


@responses.activate
def test_a_google_file_is_downloaded_with_the_key(g, public_dns):
    responses.get(FILE, body=b"mp4 bytes", content_type="video/mp4")
    with g.download(OP, url=FILE, job_data=VEO) as dl:
        assert b"".join(dl.chunks) == b"mp4 bytes"
    assert responses.calls[0].request.headers["x-goog-api-key"] == KEY


@responses.activate
def test_the_key_goes_to_googles_host_only(g, public_dns):
    elsewhere = "https://storage.example.com/v.mp4?sig=1"
    responses.get(FILE, status=302, headers={"Location": elsewhere})
    responses.get("https://storage.example.com/v.mp4", body=b"redirected")
    with g.download(OP, url=FILE, job_data=VEO) as dl:
        assert b"".join(dl.chunks) == b"redirected"
    assert "x-goog-api-key" not in responses.calls[1].request.headers
    with g.download(OP, url=elsewhere, job_data=VEO) as dl:  # a foreign URL handed in: no key either
        assert b"".join(dl.chunks) == b"redirected"
    assert "x-goog-api-key" not in responses.calls[2].request.headers


@responses.activate
@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [(404, "output_expired", True), (410, "output_expired", True), (401, "invalid_api_key", True),
     (429, "rate_limited", False), (500, "server_error", False)],
)  # fmt: skip
def test_download_errors(g, public_dns, status, code, permanent):
    responses.get(FILE, status=status, json=google_error(status, "X"))
    with pytest.raises(ProviderError) as info:
        g.download(OP, url=FILE, job_data=VEO)
    assert info.value.code == code and info.value.permanent is permanent


@responses.activate
def test_inline_videos_are_decoded_from_a_fresh_poll(g):
    video = base64.b64encode(b"inline mp4").decode()
    responses.get(f"{BASE}/v1beta/{OP}", json=done({"generatedSamples": [{"video": {"encodedVideo": video}}]}))
    responses.get(f"{BASE}/v1beta/interactions/v1_a", json={"status": "completed", "output_video": {"data": video}})
    for job_id, data in ((OP, VEO), ("v1_a", OMNI)):
        with g.download(job_id, job_data=data) as dl:
            assert b"".join(dl.chunks) == b"inline mp4" and dl.content_type == "video/mp4"


@responses.activate
def test_download_of_an_unfinished_or_failed_job(g):
    responses.get(f"{BASE}/v1beta/{OP}", json={"name": OP})
    with pytest.raises(ProviderError) as info:
        g.download(OP, job_data=VEO)
    assert info.value.code == "not_ready" and not info.value.permanent
    responses.replace(responses.GET, f"{BASE}/v1beta/{OP}", json=done({"raiMediaFilteredCount": 1}))
    with pytest.raises(ProviderError) as info:
        g.download(OP, job_data=VEO)
    assert info.value.code == "not_ready" and info.value.permanent
    with pytest.raises(ProviderError) as info:
        g.download(OP, url=FILE, variant="thumbnail", job_data=VEO)
    assert info.value.code == "unsupported"


# --- flags, registry, catalog -------------------------------------------------------------------


def test_flags_and_registry(settings, monkeypatch):
    monkeypatch.delenv("GEMINI_BASE_URL", raising=False)
    if hasattr(settings, "GEMINI_BASE_URL"):
        del settings.GEMINI_BASE_URL
    cls = registry.get_provider_class("gemini")
    assert cls is GeminiProvider and cls.supplier_kind == "direct"
    assert cls.supports_callbacks is False and cls.supports_cancel and not cls.supports_remix
    assert registry.base_url_for("gemini") == "https://generativelanguage.googleapis.com"
    assert registry.build("gemini", Credentials(api_key=KEY)).options["API_REVISION"] == "2026-05-20"
    settings.GEMINI_API_REVISION = "2027-01-01"
    assert registry.build("gemini", Credentials(api_key=KEY)).options["API_REVISION"] == "2027-01-01"
    assert KEY not in repr(registry.build("gemini", Credentials(api_key=KEY)))


@pytest.mark.parametrize(
    ("model", "seconds", "size", "price"),
    [
        ("veo-3.1", 8, "1280x720", Decimal("3.2000")),
        ("veo-3.1", 4, "720x1280", Decimal("1.6000")),
        ("veo-3.1", 8, "1920x1080", Decimal("3.2000")),
        ("veo-3.1", 8, "3840x2160", Decimal("4.8000")),
        ("veo-3.1-fast", 6, "1280x720", Decimal("0.9000")),
        ("veo-3.1-fast", 8, "1080x1920", Decimal("1.2000")),
        ("gemini-omni-1.1-flash", 10, "640x360", Decimal("0.3000")),
        ("gemini-omni-1.1-flash", 10, "1280x720", Decimal("1.0000")),
        ("gemini-omni-1.1-flash", 10, "1920x1080", Decimal("1.5000")),
        ("gemini-omni-1.1-flash", 10, "2160x3840", Decimal("3.0000")),
    ],
)
def test_catalog_prices(model, seconds, size, price):
    entry = supplier_model("gemini", model)
    assert entry.cost(seconds=seconds, size=size) == price
    assert entry.cost(seconds=seconds, size=size, audio=True) == price  # audio is always on, one price


def test_catalog_records_the_retired_preview_ids():
    veo = supplier_model("gemini", "veo-3.1")
    assert veo.extra["upstream_ids"][0] == veo.provider_model == "veo-3.1-generate-001"
    assert str(veo.extra["retired_upstream_ids"]["veo-3.1-generate-preview"]) == "2026-10-22"
    assert not veo.audio_toggle and veo.has_audio and not veo.supports_seed
