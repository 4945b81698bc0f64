"""The Vertex adapter with HTTP mocked by ``responses``: the key checks, the signed token exchange
and its cache, every request mapping, every operation shape, every error status, and the
streamed decoding of inline videos."""

from __future__ import annotations

import base64
import functools
import itertools
import json
from decimal import Decimal
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from apps.providers import catalog, registry
from apps.providers.base import Credentials, GenerationSpec, InputImage, JobState, ProviderError
from apps.providers.vertex import adapter as vertex_adapter
from apps.providers.vertex.adapter import VertexProvider, google_status
from apps.providers.vertex.inline import OperationReader, placeholder
from tests.emulators.vertex import CLIENT_EMAIL, PROJECT, new_private_key, pem, service_account

KEY = new_private_key()
PEM = pem(KEY)
KID = "0123456789abcdef0123456789abcdef01234567"
TOKEN_URL = "https://oauth2.googleapis.com/token"
HOST = "https://us-central1-aiplatform.googleapis.com"
MODELS = f"{HOST}/v1/projects/{PROJECT}/locations/us-central1/publishers/google/models"
CREATE = f"{MODELS}/veo-3.1-generate-001:predictLongRunning"
FETCH = f"{MODELS}/veo-3.1-generate-001:fetchPredictOperation"
OP = f"projects/{PROJECT}/locations/us-central1/publishers/google/models/veo-3.1-generate-001/operations/abc-123"
TOKEN = "ya29.unit-test-token-value"
VIDEO = bytes(range(256)) * 40 + b"tail"

# a PEM-shaped document whose body is not a key (built at run time, so no secret scanner takes it
# for one)
NOT_A_PEM = "-----BEGIN " + "PRIVATE KEY-----\nnope\n-----END " + "PRIVATE KEY-----\n"


def account(**overrides):
    return {**service_account(private_key=PEM, private_key_id=KID, token_uri=TOKEN_URL), **overrides}


def creds(doc=None, **fields) -> Credentials:
    values = {"service_account_json": json.dumps(doc or account()), "location": "us-central1", **fields}
    return Credentials(**values)


def build(doc=None, **fields) -> VertexProvider:
    return registry.build("vertex", creds(doc, **fields))


def token_ok(expires_in=3600, token=TOKEN):
    return responses.add(
        responses.POST, TOKEN_URL, json={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}
    )


def spec(**kwargs) -> GenerationSpec:
    values = {"model": "veo-3.1", "prompt": "a lighthouse at dusk", "seconds": 8, "size": "1280x720"}
    return GenerationSpec(**{**values, **kwargs})


def done(**response):
    return {"name": OP, "done": True, "response": {"raiMediaFilteredCount": 0, **response}}


def inline_body(data=VIDEO):
    return done(videos=[{"bytesBase64Encoded": base64.b64encode(data).decode(), "mimeType": "video/mp4"}])


def calls(url):
    return [c for c in responses.calls if c.request.url.split("?")[0] == url]


@pytest.fixture(autouse=True)
def _no_operator_urls(settings, monkeypatch):
    for name in ("VERTEX_BASE_URL", "VERTEX_TOKEN_URL", "VERTEX_STORAGE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
        if hasattr(settings, name):
            delattr(settings, name)


# --- the key ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("not json {", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps(account(type="authorized_user")), '"type" must be "service_account"'),
        (json.dumps({k: v for k, v in account().items() if k != "client_email"}), "lacks client_email"),
        (json.dumps(account(private_key="")), "lacks private_key"),
        (json.dumps({k: v for k, v in account().items() if k != "token_uri"}), "lacks token_uri"),
        (json.dumps(account(project_id="  ")), "lacks project_id"),
        (json.dumps(account(private_key=NOT_A_PEM)), "PEM"),
        (json.dumps(account(token_uri="https://evil.example.com/token")), "token_uri must be Google's"),
        (json.dumps(account(token_uri="http://oauth2.googleapis.com/token")), "token_uri must be Google's"),
    ],
)
def test_check_credentials_refuses_unusable_key_files(document, fragment):
    errors = VertexProvider.check_credentials(Credentials(service_account_json=document))
    assert fragment in errors["service_account_json"]
    assert PEM not in errors["service_account_json"]


def test_check_credentials_accepts_a_key_file_and_checks_the_other_fields():
    assert VertexProvider.check_credentials(creds()) == {}
    assert VertexProvider.check_credentials(creds(location="global", storage_uri="gs://my-bucket/veo/")) == {}
    errors = VertexProvider.check_credentials(creds(location="mars-north1", storage_uri="s3://bucket/x"))
    assert set(errors) == {"location", "storage_uri"}


def test_token_uri_on_the_operators_own_host_is_allowed(settings):
    settings.VERTEX_BASE_URL = "http://127.0.0.1:9110"
    doc = account(token_uri="http://127.0.0.1:9110/token")
    assert VertexProvider.check_credentials(creds(doc)) == {}
    # with VERTEX_TOKEN_URL set, the key file's token_uri is not used at all
    del settings.VERTEX_BASE_URL
    settings.VERTEX_TOKEN_URL = "https://psc-token.example.internal/token"
    assert VertexProvider.check_credentials(creds(account(token_uri="https://anything.example.com/t"))) == {}


def test_key_fields_are_the_documented_shape():
    fields = {f.name: f for f in VertexProvider.key_fields}
    assert fields["service_account_json"].secret and fields["service_account_json"].kind == "textarea"
    assert fields["service_account_json"].max_length == 16384
    assert not fields["location"].secret and fields["location"].kind == "choice"
    assert dict(fields["location"].choices).keys() == {"us-central1", "global"}
    assert VertexProvider.supplier_kind == "direct"
    assert VertexProvider.secret_field_names() == ("service_account_json",)


# --- hosts -------------------------------------------------------------------------------------


def test_hosts_follow_the_location_and_the_operator_override(settings):
    assert build().base_url == HOST
    assert build(location="global").base_url == "https://aiplatform.googleapis.com"
    settings.VERTEX_BASE_URL = "https://vertex-gw.example.com/{location}"
    assert build().base_url == "https://vertex-gw.example.com/us-central1"
    settings.VERTEX_BASE_URL = "http://127.0.0.1:9"
    assert build(location="global").base_url == "http://127.0.0.1:9"


# --- the token -------------------------------------------------------------------------------------


@responses.activate
def test_token_exchange_sends_a_signed_jwt_and_the_token_is_cached():
    token_ok()
    responses.add(responses.POST, FETCH, status=404, json={"error": {"code": 404, "status": "NOT_FOUND"}})
    provider = build()
    provider.validate_key()
    provider.validate_key()
    build().validate_key()  # another adapter for the same key reuses the cached token
    assert len(calls(TOKEN_URL)) == 1 and len(calls(FETCH)) == 3
    form = {k: v[0] for k, v in parse_qs(calls(TOKEN_URL)[0].request.body).items()}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assertion = form["assertion"]
    assert jwt.get_unverified_header(assertion) == {"alg": "RS256", "typ": "JWT", "kid": KID}
    claims = jwt.decode(assertion, KEY.public_key(), algorithms=["RS256"], audience=TOKEN_URL, issuer=CLIENT_EMAIL)
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600
    with pytest.raises(jwt.InvalidSignatureError):  # really signed with the key file's key
        jwt.decode(assertion, new_private_key().public_key(), algorithms=["RS256"], audience=TOKEN_URL)
    fetch = calls(FETCH)[0].request
    assert fetch.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(fetch.body)["operationName"].endswith("/operations/00000000-0000-0000-0000-000000000000")


@responses.activate
def test_token_is_refreshed_shortly_before_it_expires(monkeypatch):
    token_ok(expires_in=600)
    responses.add(responses.POST, FETCH, json={"name": OP, "done": False})
    clock = [1000.0]
    monkeypatch.setattr(vertex_adapter.time, "monotonic", lambda: clock[0])
    provider = build()
    provider.status(OP)
    clock[0] += 299  # the token is good for 600 s; refreshed 300 s before the end
    provider.status(OP)
    assert len(calls(TOKEN_URL)) == 1
    clock[0] += 2
    provider.status(OP)
    assert len(calls(TOKEN_URL)) == 2


@responses.activate
def test_the_cache_is_keyed_by_a_digest_and_never_shared_without_the_private_key():
    token_ok()
    responses.add(responses.POST, FETCH, json={"name": OP, "done": False})
    build().status(OP)
    (cache_key,) = vertex_adapter._TOKENS
    assert CLIENT_EMAIL not in cache_key and KID not in cache_key and "PRIVATE" not in cache_key
    assert len(cache_key) == 64
    # another tenant's document naming the same account and key id, with a different private key
    impostor = account(private_key=pem(new_private_key()))
    build(impostor).status(OP)
    assert len(calls(TOKEN_URL)) == 2 and len(vertex_adapter._TOKENS) == 2


@responses.activate
def test_a_401_refreshes_the_token_once_then_gives_up():
    token_ok(token="ya29.first-token-aaaaaaaa")
    token_ok(token="ya29.second-token-bbbbbbb")
    unauth = {
        "error": {
            "code": 401,
            "message": "Request had invalid authentication credentials.",
            "status": "UNAUTHENTICATED",
        }
    }
    responses.add(responses.POST, FETCH, status=401, json=unauth)
    responses.add(responses.POST, FETCH, json={"name": OP, "done": False})
    assert build().status(OP).state is JobState.IN_PROGRESS
    sent = [c.request.headers["Authorization"] for c in calls(FETCH)]
    assert sent == ["Bearer ya29.first-token-aaaaaaaa", "Bearer ya29.second-token-bbbbbbb"]

    responses.replace(responses.POST, FETCH, status=401, json=unauth)
    responses.add(responses.POST, FETCH, status=401, json=unauth)
    vertex_adapter.clear_token_cache()
    with pytest.raises(ProviderError) as info:
        build().status(OP)
    assert info.value.code == "authentication_error" and info.value.permanent and info.value.is_auth_error


@responses.activate
def test_a_refused_assertion_is_an_auth_error_without_the_key():
    responses.add(
        responses.POST,
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": f"Invalid JWT Signature. {PEM}"},
    )
    with pytest.raises(ProviderError) as info:
        build().validate_key()
    error = info.value
    assert error.code == "authentication_error" and error.permanent and error.status_code == 400
    assert "Invalid JWT Signature" in error.message and "token endpoint refused" in error.message
    for line in PEM.splitlines()[1:-1]:
        assert line not in error.message


@responses.activate
def test_a_token_timeout_on_submit_is_not_uncertain():
    responses.add(responses.POST, TOKEN_URL, body=requests.ReadTimeout("slow"))
    with pytest.raises(ProviderError) as info:
        build().submit(spec())
    assert info.value.code == "timeout" and not info.value.uncertain and not info.value.permanent
    assert not calls(CREATE)


@responses.activate
def test_vertex_token_url_replaces_the_key_files_token_uri(settings):
    settings.VERTEX_TOKEN_URL = "https://psc-token.example.com/token"
    responses.add(responses.POST, "https://psc-token.example.com/token", json={"access_token": TOKEN, "expires_in": 60})
    responses.add(responses.POST, FETCH, json={"name": OP, "done": False})
    build().status(OP)
    form = parse_qs(responses.calls[0].request.body)
    claims = jwt.decode(
        form["assertion"][0], KEY.public_key(), algorithms=["RS256"], audience="https://psc-token.example.com/token"
    )
    assert claims["iss"] == CLIENT_EMAIL and not calls(TOKEN_URL)


@responses.activate
def test_a_foreign_token_uri_is_never_called():
    provider = build(account(token_uri="https://collector.example.net/token"))
    with pytest.raises(ProviderError) as info:
        provider.submit(spec())
    assert info.value.code == "invalid_api_key" and info.value.permanent
    assert len(responses.calls) == 0


# --- request mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "model_id", "expected"),
    [
        (
            {},
            "veo-3.1-generate-001",
            {"durationSeconds": 8, "aspectRatio": "16:9", "resolution": "720p", "generateAudio": True},
        ),
        (
            {"seconds": 4, "size": "720x1280", "audio": False},
            "veo-3.1-generate-001",
            {"durationSeconds": 4, "aspectRatio": "9:16", "resolution": "720p", "generateAudio": False},
        ),
        ({"size": "1920x1080", "audio": True}, "veo-3.1-generate-001", {"resolution": "1080p", "generateAudio": True}),
        ({"size": "2160x3840"}, "veo-3.1-generate-001", {"aspectRatio": "9:16", "resolution": "4k"}),
        ({"model": "veo-3.1-fast", "seconds": 6}, "veo-3.1-fast-generate-001", {"durationSeconds": 6}),
        ({"model": "veo-3.1-lite", "size": "1080x1920"}, "veo-3.1-lite-generate-001", {"resolution": "1080p"}),
        (
            {"seed": 4294967295, "negative_prompt": "blurry"},
            "veo-3.1-generate-001",
            {"seed": 4294967295, "negativePrompt": "blurry"},
        ),
    ],
)
@responses.activate
def test_submit_maps_the_spec(kwargs, model_id, expected):
    token_ok()
    url = f"{MODELS}/{model_id}:predictLongRunning"
    name = OP.replace("veo-3.1-generate-001", model_id)
    responses.add(responses.POST, url, json={"name": name})
    job = build().submit(spec(**kwargs))
    assert job.job_id == name and job.data == {"model": model_id}
    body = json.loads(calls(url)[0].request.body)
    assert body["instances"] == [{"prompt": "a lighthouse at dusk"}]
    params = body["parameters"]
    assert params["sampleCount"] == 1 and params["personGeneration"] == "allow_adult"
    assert params["enhancePrompt"] is False
    assert {k: params[k] for k in expected} == expected
    assert ("seed" in params) == ("seed" in kwargs) and "storageUri" not in params


@responses.activate
def test_submit_sends_images_storage_and_labels():
    token_ok()
    responses.add(responses.POST, CREATE, json={"name": OP})
    png = b"\x89PNG\r\n\x1a\nfake"
    build(storage_uri="gs://tenant-bucket/veo/").submit(
        spec(image=InputImage(data=png, content_type="image/png"), client_reference="gen_ABC.123")
    )
    body = json.loads(calls(CREATE)[0].request.body)
    assert body["instances"][0]["image"] == {
        "bytesBase64Encoded": base64.b64encode(png).decode(),
        "mimeType": "image/png",
    }
    assert body["parameters"]["storageUri"] == "gs://tenant-bucket/veo/gen_ABC.123/"
    assert body["labels"] == {"mediarouter-generation": "gen_abc-123"}
    build().submit(spec(image=InputImage(url="gs://inputs/frame.jpg", content_type="image/jpeg")))
    assert json.loads(calls(CREATE)[1].request.body)["instances"][0]["image"] == {
        "gcsUri": "gs://inputs/frame.jpg",
        "mimeType": "image/jpeg",
    }


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"size": "1920x1080", "seconds": 4}, "1080p videos of 8 seconds only"),
        ({"size": "3840x2160", "seconds": 6}, "4k videos of 8 seconds only"),
        ({"model": "veo-3.1-fast", "size": "3840x2160"}, "supports sizes"),
        ({"seconds": 5}, "durations of 4, 6, 8"),
        ({"size": "1080x1080"}, "supports sizes"),
        ({"prompt": "  "}, "needs a prompt"),
        ({"seed": -1}, "seed must be an integer"),
        ({"image": InputImage(data=b"RIFF....WEBP", content_type="image/webp")}, "PNG or JPEG"),
        ({"image": InputImage(url="https://example.com/a.png")}, "not a web URL"),
        ({"model": "veo-9"}, "no catalog entry"),
    ],
)
@responses.activate
def test_submit_refuses_before_any_call(kwargs, fragment):
    with pytest.raises(ProviderError) as info:
        build().submit(spec(**kwargs))
    assert fragment in info.value.message and info.value.permanent
    assert info.value.code in ("invalid_request", "model_not_available")
    assert len(responses.calls) == 0


def test_catalog_prices_are_googles_list_prices():
    veo = catalog.get_model("vertex/veo-3.1")
    assert veo.cost(seconds=8, size="1280x720") == Decimal("3.2000")  # audio by default
    assert veo.cost(seconds=8, size="1920x1080", audio=False) == Decimal("1.6000")
    assert veo.cost(seconds=8, size="3840x2160") == Decimal("4.8000")
    assert veo.cost(seconds=8, size="2160x3840", audio=False) == Decimal("3.2000")
    fast = catalog.get_model("vertex/veo-3.1-fast")
    assert fast.cost(seconds=4, size="720x1280") == Decimal("0.6000")
    assert fast.cost(seconds=6, size="1280x720", audio=False) == Decimal("0.6000")
    lite = catalog.get_model("vertex/veo-3.1-lite")
    assert lite.cost(seconds=8, size="1920x1080") == Decimal("0.6400")
    assert lite.cost(seconds=4, size="1280x720", audio=False) == Decimal("0.1200")
    assert lite.extra["preview"] is True and "preview" in lite.label
    assert {m.provider_model for m in (veo, fast, lite)} == {
        "veo-3.1-generate-001",
        "veo-3.1-fast-generate-001",
        "veo-3.1-lite-generate-001",
    }


# --- operations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "state", "code", "fragment"),
    [
        ({"name": OP}, JobState.IN_PROGRESS, None, None),
        ({"name": OP, "done": False, "metadata": {"progress": 40}}, JobState.IN_PROGRESS, None, None),
        (inline_body(), JobState.COMPLETED, None, None),
        (
            done(videos=[{"gcsUri": "gs://b/veo/x/sample_0.mp4", "mimeType": "video/mp4"}]),
            JobState.COMPLETED,
            None,
            None,
        ),
        (
            done(
                raiMediaFilteredCount=1,
                raiMediaFilteredReasons=["Input image violates guidelines. Support codes: 58061214"],
            ),
            JobState.FAILED,
            "content_policy",
            "Support codes: 58061214",
        ),
        (done(raiMediaFilteredCount=2), JobState.FAILED, "content_policy", "safety filter"),
        (
            {"name": OP, "done": True, "error": {"code": 3, "message": "bad combination"}},
            JobState.FAILED,
            "invalid_request",
            "INVALID_ARGUMENT",
        ),
        (
            {"name": OP, "done": True, "error": {"code": 13, "message": "Internal"}},
            JobState.FAILED,
            "generation_failed",
            "INTERNAL",
        ),
        (
            {"name": OP, "done": True, "error": {"code": 9, "message": "billing"}},
            JobState.FAILED,
            "failed_precondition",
            "billing",
        ),
        (done(), JobState.FAILED, "no_output", "no video"),
        ({"name": OP, "done": True}, JobState.FAILED, "no_output", "no video"),
    ],
)
@responses.activate
def test_status_maps_every_operation_shape(body, state, code, fragment):
    token_ok()
    responses.add(responses.POST, FETCH, json=body)
    status = build().status(OP)
    assert status.state is state and status.error_code == code
    if fragment:
        assert fragment in status.error_message
    if state is JobState.FAILED:
        assert status.error_message.endswith(".")
    sent = calls(FETCH)[0].request
    assert sent.method == "POST" and json.loads(sent.body) == {"operationName": OP}
    if "gcsUri" in json.dumps(body):
        assert status.output_urls == ("gs://b/veo/x/sample_0.mp4",) and status.usage["delivery"] == "gcs"
    elif state is JobState.COMPLETED:
        assert status.output_urls == () and status.usage["delivery"] == "inline"


@responses.activate
def test_status_of_a_malformed_body_is_transient():
    token_ok()
    responses.add(responses.POST, FETCH, body=b"<html>oops</html>", status=200)
    with pytest.raises(ProviderError) as info:
        build().status(OP)
    assert info.value.code == "bad_response" and not info.value.permanent


@pytest.mark.parametrize(
    ("status", "name", "code", "permanent", "retry_after", "uncertain"),
    [
        (400, "INVALID_ARGUMENT", "invalid_request", True, None, False),
        (400, "FAILED_PRECONDITION", "failed_precondition", True, None, False),
        (403, "PERMISSION_DENIED", "permission_denied", True, None, False),
        (404, "NOT_FOUND", "model_not_available", True, None, False),
        (429, "RESOURCE_EXHAUSTED", "rate_limited", False, 38.0, False),
        (500, "INTERNAL", "server_error", False, None, True),
        (503, "UNAVAILABLE", "server_error", False, None, False),
        (504, "DEADLINE_EXCEEDED", "server_error", False, None, True),
    ],
)
@responses.activate
def test_create_errors_are_classified(status, name, code, permanent, retry_after, uncertain):
    token_ok()
    error = {"code": status, "message": f"{name} says no, key {KID}", "status": name}
    if name == "RESOURCE_EXHAUSTED":
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "38s"}]
    responses.add(responses.POST, CREATE, status=status, json={"error": error})
    with pytest.raises(ProviderError) as info:
        build().submit(spec())
    e = info.value
    assert (e.code, e.permanent, e.retry_after, e.uncertain, e.status_code) == (
        code,
        permanent,
        retry_after,
        uncertain,
        status,
    )
    assert f"{name} says no" in e.message and KID not in e.message


@responses.activate
def test_a_rate_limit_without_a_delay_waits_the_header_or_a_default():
    token_ok()
    body = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    responses.add(responses.POST, CREATE, status=429, json=body, headers={"Retry-After": "7"})
    responses.add(responses.POST, CREATE, status=429, json=body)
    with pytest.raises(ProviderError) as first:
        build().submit(spec())
    with pytest.raises(ProviderError) as second:
        build().submit(spec())
    assert first.value.retry_after == 7.0 and second.value.retry_after == 10.0


@functools.cache
def _one_adapter() -> VertexProvider:
    """One adapter for every example: building one loads (and checks) the RSA key, a tenth of a
    second that the error parsing under test does not need."""
    return build()


@hsettings(max_examples=150, deadline=None)
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["error", "code", "status", "message", "details", "@type", "retryDelay", "error_description"]
                )
                | st.text(max_size=8),
                children,
                max_size=4,
            )
        ),
        max_leaves=12,
    ),
    status=st.sampled_from([400, 401, 403, 404, 409, 418, 429, 500, 502, 503, 504]),
)
def test_error_parsing_survives_any_json_shape(body, status):
    name, message, delay = google_status(body, status)
    assert name in vertex_adapter.STATUSES and isinstance(message, str)
    assert delay is None or delay >= 0
    response = requests.Response()
    response.status_code = status
    error = _one_adapter()._error(response, body)
    assert isinstance(error, ProviderError) and error.status_code == status
    assert error.permanent == (status not in (409, 429) and status < 500)


@pytest.mark.parametrize(
    "raw", [b"", b"\xff\xfe", b"<html>502 Bad Gateway</html>", b'{"error": [1,2]}', b'"error"', b"null"]
)
@responses.activate
def test_error_parsing_survives_non_json_bodies(raw):
    token_ok()
    responses.add(responses.POST, CREATE, status=502, body=raw)
    with pytest.raises(ProviderError) as info:
        build().submit(spec())
    assert info.value.code == "server_error" and not info.value.permanent


# --- inline videos: the streamed reader ----------------------------------------------------------


def test_the_reader_decodes_across_any_chunking():
    document = json.dumps(inline_body()).encode()
    for size in (1, 2, 3, 5, 7, 64, 4096, len(document)):
        reader = OperationReader(decode=True)
        out = b"".join(reader.feed(document[i : i + size]) for i in range(0, len(document), size))
        assert out == VIDEO, size
        operation = reader.result()
        assert operation["response"]["videos"][0] == {"bytesBase64Encoded": placeholder(0), "mimeType": "video/mp4"}


@hsettings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_the_reader_handles_escaped_slashes_and_random_splits(data, cuts):
    b64 = base64.b64encode(data).decode().replace("/", "\\/")  # some encoders escape "/"
    document = (
        '{"name": "op \\"quoted\\" \\u00e9", "done": true, "response": {"videos": '
        '[{"mimeType": "video/mp4", "bytesBase64Encoded" :  "' + b64 + '"}], "note": "bytesBase64Encoded"}}'
    ).encode()
    points = sorted({0, len(document), *(c % (len(document) + 1) for c in cuts)})
    reader = OperationReader(decode=True)
    out = b"".join(reader.feed(document[a:b]) for a, b in itertools.pairwise(points))
    assert out == data
    assert reader.result()["name"] == 'op "quoted" \u00e9'


def test_the_reader_keeps_only_a_small_skeleton_of_a_big_video():
    big = bytes(3 * 1024 * 1024)
    document = json.dumps(inline_body(big)).encode()
    reader = OperationReader(decode=False)
    for i in range(0, len(document), 65536):
        assert reader.feed(document[i : i + 65536]) == b""
    assert len(reader.skeleton) < 300 and reader.encoded == len(base64.b64encode(big))
    limited = OperationReader(decode=True, max_bytes=1024 * 1024)
    with pytest.raises(ProviderError) as info:
        for i in range(0, len(document), 65536):
            limited.feed(document[i : i + 65536])
    assert info.value.code == "too_large" and info.value.permanent


def test_the_reader_refuses_broken_documents():
    with pytest.raises(ProviderError, match="not valid base64"):
        OperationReader(decode=True).feed(b'{"bytesBase64Encoded": "ab!d"}')
    with pytest.raises(ProviderError, match="unexpected escape"):
        OperationReader(decode=True).feed(b'{"bytesBase64Encoded": "ab\\tcd"}')
    reader = OperationReader(decode=True)
    reader.feed(b'{"bytesBase64Encoded": "abcd')
    with pytest.raises(ProviderError, match="ended inside a string"):
        reader.result()
    with pytest.raises(ProviderError, match="besides the video"):
        OperationReader(decode=False, skeleton_max=100).feed(b'{"message": "' + b"x" * 200 + b'"}')


# --- downloads ---------------------------------------------------------------------------------


@responses.activate
def test_download_streams_the_inline_video_from_a_fresh_read():
    token_ok()
    big = bytes(range(256)) * 8192  # 2 MiB: several chunks
    responses.add(responses.POST, FETCH, json=inline_body(big))
    with build().download(OP) as download:
        pieces = list(download.chunks)
    assert b"".join(pieces) == big and len(pieces) > 2
    assert download.content_type == "video/mp4"
    assert json.loads(calls(FETCH)[0].request.body) == {"operationName": OP}


@pytest.mark.parametrize(
    ("body", "code", "permanent"),
    [
        ({"name": OP, "done": False}, "not_ready", False),
        (done(raiMediaFilteredReasons=["blocked"]), "content_policy", True),
        (done(), "no_output", True),
    ],
)
@responses.activate
def test_download_of_an_operation_without_a_video(body, code, permanent):
    token_ok()
    responses.add(responses.POST, FETCH, json=body)
    with pytest.raises(ProviderError) as info:
        build().download(OP)
    assert info.value.code == code and info.value.permanent is permanent


@responses.activate
def test_download_reads_gcs_objects_with_the_token():
    token_ok()
    obj = "https://storage.googleapis.com/storage/v1/b/tenant-bucket/o/veo%2Fgen%201%2Fsample_0.mp4"
    responses.add(responses.GET, obj, body=VIDEO, content_type="video/mp4")
    responses.add(responses.POST, FETCH, json=done(videos=[{"gcsUri": "gs://tenant-bucket/veo/gen 1/sample_0.mp4"}]))
    provider = build(storage_uri="gs://tenant-bucket/veo/")
    with provider.download(OP) as download:  # from the operation
        assert b"".join(download.chunks) == VIDEO
    with provider.download(OP, url="gs://tenant-bucket/veo/gen 1/sample_0.mp4") as download:  # the stored URI
        assert b"".join(download.chunks) == VIDEO
    got = calls(obj)
    assert len(got) == 2 and all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in got)
    assert all(c.request.url.endswith("?alt=media") for c in got)
    responses.replace(responses.GET, obj, status=404, json={"error": {"code": 404, "message": "No such object"}})
    with pytest.raises(ProviderError) as info:
        provider.download(OP, url="gs://tenant-bucket/veo/gen 1/sample_0.mp4")
    assert info.value.code == "output_expired" and info.value.permanent


def test_no_thumbnails_and_no_cancel():
    provider = build()
    with pytest.raises(ProviderError) as info:
        provider.download(OP, variant="thumbnail")
    assert info.value.code == "unsupported"
    with pytest.raises(ProviderError) as info:
        provider.cancel(OP)
    assert info.value.code == "unsupported" and not VertexProvider.supports_cancel


def test_repr_and_errors_never_show_the_key():
    provider = build()
    assert PEM not in repr(provider) and PEM not in repr(provider.credentials)
    broken = registry.build("vertex", Credentials(service_account_json="{not json", location="us-central1"))
    with pytest.raises(ProviderError) as info:
        broken.submit(spec())
    assert info.value.code == "invalid_api_key" and "{not json" not in info.value.message
