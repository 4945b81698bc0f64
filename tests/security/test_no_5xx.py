"""No input a tenant can send makes a 5xx (issue 18, item 9). The requests the probing found, one
by one; then a fuzz over every API operation of the OpenAPI schema (every write body and every
query parameter) with odd values: huge numbers, other scripts' digits, deep JSON, empty values,
wrong types. Every answer is below 500, and an error is in the API's envelope."""

from __future__ import annotations

import json
import socket
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.scoping import org_scope
from apps.generations import services
from apps.generations.resolve import GenerationRequest

pytestmark = pytest.mark.django_db


def _envelope(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return error


@pytest.fixture
def api(tenants, settings):
    settings.API_THROTTLE_TOKEN_RATE = ""  # the fuzz sends hundreds of requests
    settings.API_THROTTLE_ORG_RATE = ""
    return Client(headers={"Authorization": f"Bearer {tenants.alice_token}"}, raise_request_exception=False)


@pytest.fixture
def no_network(monkeypatch):
    """Name lookups other than this machine's fail: a fuzzed key or webhook URL never leaves it."""
    real = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        if host not in ("localhost", "127.0.0.1", "::1"):
            raise socket.gaierror(socket.EAI_NONAME, "no network in this test")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


# --- what the probing found --------------------------------------------------------------------


def test_superscript_seconds_is_a_field_error(api):
    r = api.post("/v1/videos", {"model": "sandbox-video", "prompt": "x", "seconds": "²"}, "application/json")
    assert r.status_code == 400 and _envelope(r)["param"] == "seconds"


@pytest.mark.parametrize("url", ["/v1/videos", "/v1/video/generations", "/v1/usage/estimate", "/v1/keys"])
def test_json_nested_5000_deep_is_a_parse_error(api, url):
    r = api.post(url, "[" * 5000 + "]" * 5000, "application/json")
    assert r.status_code == 400 and _envelope(r)["code"] == "parse_error"
    deep_object = '{"prompt": ' * 40 + '"x"' + "}" * 40
    r = api.post(url, deep_object, "application/json")
    assert r.status_code == 400 and "nests deeper" in _envelope(r)["message"]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", "/v1/video/generations?model=%00", None),
        ("get", "/v1/videos?after=a%00b", None),
        ("delete", "/v1/keys/%00", None),
        ("get", "/v1/video/generations/video_%00", None),
        ("post", "/v1/video/generations", '{"model": "sandbox-video", "prompt": "a\\u0000b"}'),
        ("put", "/v1/routing", '{"order": "cheapest", "per_model": {"a\\u0000": ["fal"]}}'),
    ],
)
def test_a_nul_character_is_a_400_not_a_database_error(api, method, url, body):
    """PostgreSQL refuses NUL in text: without the check these were 500s on that database only."""
    r = getattr(api, method)(url, body, "application/json") if body else getattr(api, method)(url)
    assert r.status_code == 400, r.content
    _envelope(r)


def test_brackets_inside_strings_do_not_count_as_depth(api):
    prompt = "[" * 100 + '\\"{' * 50
    r = api.post("/v1/video/generations", f'{{"model": "sandbox-video", "prompt": "{prompt}"}}', "application/json")
    assert r.status_code == 201, r.content


@pytest.mark.parametrize(
    "query",
    ["start=9999-12-31&end=9999-12-31", "start=0001-01-01&end=0001-01-02", "start=2026-01-01&end=9999-12-31"],
)
def test_usage_dates_out_of_range_are_a_400(api, query):
    r = api.get(f"/v1/usage?{query}")
    assert r.status_code == 400 and _envelope(r)["param"] in ("start", "end")


def test_a_viewer_cannot_break_the_gallery_or_usage_page_with_a_far_date(tenants):
    from apps.accounts.models import Membership, Role

    Membership.all_orgs.filter(organization=tenants.org_a, user=tenants.bob).update(role=Role.VIEWER)
    page = Client(raise_request_exception=False)
    page.force_login(tenants.bob)
    slug = tenants.org_a.slug
    r = page.get(f"/o/{slug}/videos/", {"date_to": "9999-12-31", "date_from": "9999-12-31"})
    assert r.status_code == 200 and r.context["form"].errors.keys() == {"date_from", "date_to"}
    r = page.get(f"/o/{slug}/usage/", {"start": "9999-12-31", "end": "9999-12-31"})
    assert r.status_code == 422 and "end" in r.context["form"].errors
    r = page.get(f"/o/{slug}/usage/", {"start": "9999-12-31", "end": "9999-12-31", "format": "csv"})
    assert r.status_code < 500


def test_an_oversized_retention_is_a_form_error(tenants):
    from apps.accounts.forms import RETENTION_DAYS_MAX

    owner = Client(raise_request_exception=False)
    owner.force_login(tenants.alice)
    url = f"/o/{tenants.org_a.slug}/settings/"
    r = owner.post(url, {"name": "Alice Films", "retention_days": str(10**20)})
    assert r.status_code in (200, 422), r.status_code
    assert "retention_days" in r.context["form"].errors
    tenants.org_a.refresh_from_db()
    assert tenants.org_a.retention_days is None
    r = owner.post(url, {"name": "Alice Films", "retention_days": str(RETENTION_DAYS_MAX)})
    assert r.status_code in (200, 302), r.status_code
    tenants.org_a.refresh_from_db()
    assert tenants.org_a.retention_days == RETENTION_DAYS_MAX


def test_a_50_mb_multipart_text_field_is_a_400_in_the_envelope(api, tenants):
    from apps.generations.models import Generation

    r = api.post("/v1/videos", {"model": "sandbox-video", "prompt": "a" * (50 * 1024 * 1024)})
    assert r.status_code == 400 and _envelope(r)["code"] == "request_too_large"
    assert not Generation.all_orgs.filter(organization=tenants.org_a).exists()


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/", "/v1", "/v1/videos/x/y/z", "/v1/admin/"])
@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_routes_are_a_json_404_even_with_debug_on(api, settings, path, debug):
    settings.DEBUG = debug
    for method in ("get", "post", "delete"):
        r = getattr(api, method)(path)
        assert r.status_code == 404, (method, path, r.status_code)
        assert _envelope(r)["type"] == "not_found_error"
        assert b"urlpatterns" not in r.content and b"Using the URLconf" not in r.content


# --- the fuzz ----------------------------------------------------------------------------------

ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "²",
        "\uff14",  # fullwidth 4
        "\u0663",  # Arabic-Indic 3
        "1e309",
        "NaN",
        "-1",
        "0",
        "4.0",
        str(10**30),
        "-" + str(10**30),
        "9999-12-31",
        "0000-00-00",
        "\x00",
        "\ud800",
        "🎬",
        "null",
        "true",
        "[]",
        "{}",
        "../../etc/passwd",
        "a" * 5000,
        "1" * 400,
        "sandbox-video",
        "sandbox/sandbox-video",
        "1280x720",
        "99999x99999",
        "16:0",
        "data:image/png;base64,AAAA",
        "https://example.invalid/x.png",
    ]
)
ODD_JSON = st.recursive(
    st.one_of(
        ODD_TEXT,
        st.integers(min_value=-(10**40), max_value=10**40),
        st.sampled_from([0, -1, 2**31, 2**63, 2**64, 10**100]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.none(),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ODD_TEXT, inner, max_size=3)),
    max_leaves=6,
)


def _deep(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


def _schema_properties(schema: dict, components: dict) -> list[str]:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    names = list(schema.get("properties", {}))
    for part in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        names += _schema_properties(part, components)
    return names


def _operations() -> list[dict]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema.get("components", {}).get("schemas", {})
    found = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            params = op.get("parameters", [])
            content = op.get("requestBody", {}).get("content", {})
            fields = sorted({n for media in content.values() for n in _schema_properties(media["schema"], components)})
            found.append(
                {
                    "id": f"{method.upper()} {path}",
                    "method": method,
                    "path": path,
                    "path_params": [p["name"] for p in params if p["in"] == "path"],
                    "query": [p["name"] for p in params if p["in"] == "query"],
                    "headers": [p["name"] for p in params if p["in"] == "header"],
                    "media": sorted(content),
                    "fields": fields,
                }
            )
    return found


OPERATIONS = _operations()


def _api_routes(resolver=None, prefix="") -> set[str]:
    """Every route under /v1/ in the URLconf, as an OpenAPI path (``{name}`` for a converter)."""
    import re

    routes: set[str] = set()
    for entry in (resolver or get_resolver()).url_patterns:
        pattern = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes |= _api_routes(entry, pattern)
        elif isinstance(entry, URLPattern) and pattern.startswith("v1/") and entry.name != "api-not-found":
            routes.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", pattern))
    return routes


def test_the_fuzz_covers_every_api_route():
    """A route missing from the schema would also be missing from the fuzz."""
    assert _api_routes() == {op["path"] for op in OPERATIONS}
    writes = [op for op in OPERATIONS if op["method"] in ("post", "put", "patch")]
    assert len(writes) >= 10 and any(op["fields"] for op in writes)


@pytest.fixture
def real_ids(tenants):
    """Ids of objects that exist (a video), so a fuzzed body reaches past the 404."""
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.alice,
            request=GenerationRequest(model="sandbox-video", prompt="a fox", seconds=2),
        )
    return {"video_id": gen.public_id}


def _sweep_values() -> list:
    """Each odd value once, for the deterministic sweep (text and JSON-only values)."""
    return [*ODD_TEXT.elements, None, True, 0, -1, 2**63, 10**100, 1.5, [], {}, ["x"], {"image_url": 5}]


def _call(api, op, url, body=None, content_type=None, headers=None):
    call = getattr(api, op["method"])
    if body is None:
        return call(url, headers=headers or {})
    if content_type is None:
        return call(url, body, headers=headers or {})  # multipart
    return call(url, body, content_type, headers=headers or {})


def _check(op, r) -> None:
    assert r.status_code < 500, (op["id"], r.status_code, r.content[:500])
    if r.status_code >= 400:
        _envelope(r)


def _concrete_path(op, ids) -> str:
    path = op["path"]
    for name in op["path_params"]:
        path = path.replace("{" + name + "}", ids.get(name, "x"))
    return path


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op["fields"]], ids=lambda op: op["id"])
def test_every_field_of_every_write_takes_every_odd_value_without_a_5xx(api, real_ids, no_network, op):
    """The deterministic sweep: every body field set to each odd value, as JSON and as a form."""
    url = _concrete_path(op, real_ids)
    for value in _sweep_values():
        _check(op, _call(api, op, url, json.dumps({name: value for name in op["fields"]}), "application/json"))
        if "multipart/form-data" in op["media"] and isinstance(value, str) and "\x00" not in value:
            form = {name: value.replace("\ud800", "?") for name in op["fields"]}
            _check(op, _call(api, op, url, form))


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op["query"]], ids=lambda op: op["id"])
def test_every_query_parameter_takes_every_odd_value_without_a_5xx(api, real_ids, op):
    url = _concrete_path(op, real_ids)
    for value in _sweep_values():
        if isinstance(value, str):
            value = value.replace("\ud800", "?")
            for name in op["query"]:
                _check(op, _call(api, op, f"{url}?{name}={quote(value, safe='')}"))


def _body(draw, op) -> tuple[str | dict | None, str | None]:
    if not op["media"]:
        return None, None
    kind = draw(st.sampled_from(["json-object", "json-odd", "json-deep", "multipart", "raw"]))
    chosen = draw(st.lists(st.sampled_from(op["fields"]), unique=True)) if op["fields"] else []
    if kind == "json-object":
        return json.dumps({name: draw(ODD_JSON) for name in chosen}), "application/json"
    if kind == "json-odd":
        return json.dumps(draw(ODD_JSON)), "application/json"
    if kind == "json-deep":
        return _deep(draw(st.sampled_from([10, 33, 2000]))), "application/json"
    if kind == "multipart" and "multipart/form-data" in op["media"]:
        return {name: draw(ODD_TEXT).replace("\x00", "").replace("\ud800", "") for name in chosen}, None
    return draw(st.sampled_from(["", "{", "null", "[1,", "\xff\xfe", '{"prompt": NaN}'])), "application/json"


@pytest.mark.parametrize("op", OPERATIONS, ids=[op["id"] for op in OPERATIONS])
@settings(
    max_examples=12,
    derandomize=True,  # the same examples every run: a failure reproduces
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,  # nothing written to .hypothesis/
)
@given(data=st.data())
def test_no_api_operation_answers_a_5xx(api, real_ids, no_network, op, data):
    path = op["path"]
    for name in op["path_params"]:
        value = data.draw(st.one_of(st.just(real_ids.get(name, "x")), ODD_TEXT.filter(bool)), label=name)
        path = path.replace("{" + name + "}", quote(value.replace("\ud800", "?"), safe=""))
    query = {name: data.draw(ODD_TEXT, label=name).replace("\ud800", "?") for name in op["query"]}
    headers = {}
    if "Idempotency-Key" in op["headers"]:
        headers["Idempotency-Key"] = data.draw(st.sampled_from(["", "k", "k" * 201, "ключ", " x "]))
    body, content_type = _body(data.draw, op)
    url = path + ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items()) if query else "")
    _check(op, _call(api, op, url, body, content_type, headers))
