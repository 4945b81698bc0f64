"""Throttling per token and per organization on both API shapes, and the OpenAPI schema. (Creates
against reads, the headers and atomicity: tests/core/test_throttling.py.)"""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

from apps.core import throttling
from tests.openai_compat.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    """The throttle's window clock, moved by hand (no sleeping)."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(throttling, "_clock", lambda: now[0])
    return now


@pytest.fixture
def low_rates(settings, tenants, clock):
    """Low read budgets, counts cleared before and after (only the throttle's keys: on the Redis
    leg the cache shares its database with the Celery broker)."""
    settings.API_THROTTLE_READ_RATE = "3/min"
    settings.API_THROTTLE_ORG_READ_RATE = "1000/min"
    throttling.counter_store().clear()
    yield settings
    throttling.counter_store().clear()


@pytest.mark.parametrize("url", ["/v1/videos", "/v1/video/generations", "/v1/models"])
def test_each_token_is_throttled_on_both_api_shapes(tenants, low_rates, url):
    alice = tenants.api_client_for(tenants.alice_token)
    for _ in range(3):
        assert alice.get(url).status_code == 200
    r = alice.get(url)
    error = assert_error(r, 429, code="throttled")
    assert error["type"] == "rate_limit_error"
    assert 1 <= int(r["Retry-After"]) <= 60
    assert r["x-ratelimit-limit-requests"] == "3" and r["x-ratelimit-remaining-requests"] == "0"
    assert "x-should-retry" not in r  # a later retry is the right thing to do
    # another token of the same organization has its own budget
    assert tenants.api_client_for(tenants.bob_token).get(url).status_code == 200


def test_an_organization_is_throttled_across_its_tokens(tenants, low_rates):
    low_rates.API_THROTTLE_READ_RATE = "100/min"
    low_rates.API_THROTTLE_ORG_READ_RATE = "4/min"
    alice, bob = (tenants.api_client_for(t) for t in (tenants.alice_token, tenants.bob_token))
    assert [c.get("/v1/videos").status_code for c in (alice, bob, alice, bob)] == [200] * 4
    assert_error(bob.get("/v1/video/generations"), 429)
    assert_error(alice.get("/v1/videos"), 429)
    # another organization is not affected
    assert tenants.api_client_for(tenants.charlie_token).get("/v1/videos").status_code == 200


def test_a_request_the_token_limit_refuses_does_not_spend_the_organization_budget(tenants, low_rates):
    low_rates.API_THROTTLE_READ_RATE = "2/min"
    low_rates.API_THROTTLE_ORG_READ_RATE = "3/min"
    alice, bob = (tenants.api_client_for(t) for t in (tenants.alice_token, tenants.bob_token))
    assert [alice.get("/v1/videos").status_code for _ in range(5)] == [200, 200, 429, 429, 429]
    assert bob.get("/v1/videos").status_code == 200  # the organization's third
    assert_error(bob.get("/v1/videos"), 429)  # its fourth


def test_the_window_ends_and_requests_are_allowed_again(tenants, low_rates, clock):
    low_rates.API_THROTTLE_READ_RATE = "2/sec"
    alice = tenants.api_client_for(tenants.alice_token)
    clock[0] += 0.3
    assert [alice.get("/v1/models").status_code for _ in range(3)] == [200, 200, 429]
    r = alice.get("/v1/models")
    assert r.status_code == 429 and r["Retry-After"] == "1"
    assert r["x-ratelimit-reset-requests"] == "700ms"
    clock[0] += 0.7
    assert alice.get("/v1/models").status_code == 200


def test_an_empty_rate_disables_the_throttle(tenants, low_rates):
    for name in ("CREATE", "READ", "ORG_CREATE", "ORG_READ"):
        setattr(low_rates, f"API_THROTTLE_{name}_RATE", "")
    alice = tenants.api_client_for(tenants.alice_token)
    assert {alice.get("/v1/videos").status_code for _ in range(6)} == {200}
    assert "x-ratelimit-limit-requests" not in alice.get("/v1/videos")


def test_the_defaults_are_configurable():
    from mediarouter import settings as base

    assert (base.API_THROTTLE_CREATE_RATE, base.API_THROTTLE_READ_RATE) == ("120/min", "3000/min")
    assert (base.API_THROTTLE_ORG_CREATE_RATE, base.API_THROTTLE_ORG_READ_RATE) == ("600/min", "12000/min")
    assert base.API_THROTTLE_TOKEN_RATE is None and base.API_THROTTLE_ORG_RATE is None  # deprecated: unset
    assert base.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == ["apps.core.throttling.ApiRateThrottle"]


# --- the OpenAPI schema --------------------------------------------------------------------


def _api_routes() -> set[str]:
    """Every /v1/ route of the project, in OpenAPI path syntax."""
    import re

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern)

    return {
        "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        for route in walk(get_resolver().url_patterns)
        if route.startswith("v1/")
    }


def test_the_schema_validates_and_covers_every_route_of_both_shapes(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    routes = _api_routes()
    assert routes - set(paths) == set()
    expected = {
        ("/v1/videos", "post"),
        ("/v1/videos", "get"),
        ("/v1/videos/{video_id}", "get"),
        ("/v1/videos/{video_id}", "delete"),
        ("/v1/videos/{video_id}/content", "get"),
        ("/v1/videos/{video_id}/remix", "post"),
        ("/v1/video/generations", "post"),
        ("/v1/video/generations", "get"),
        ("/v1/video/generations/{video_id}", "get"),
        ("/v1/video/generations/{video_id}", "delete"),
        ("/v1/models", "get"),
        ("/v1/usage", "get"),
        ("/v1/usage/estimate", "post"),
        ("/v1/keys", "get"),
        ("/v1/keys", "post"),
    }
    for path, method in expected:
        assert method in paths[path], (path, method)
    for path, method in expected:
        if path.startswith("/v1/videos"):
            assert paths[path][method]["tags"] == ["openai-compatible"]
    create = paths["/v1/videos"]["post"]
    assert set(create["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    video = schema["components"]["schemas"]["Video"]
    assert set(video["properties"]) == {
        "id", "object", "model", "status", "progress", "created_at", "completed_at", "expires_at",
        "prompt", "size", "seconds", "remixed_from_video_id", "error",
    }  # fmt: skip
    assert set(schema["components"]["schemas"]["VideoList"]["properties"]) == {
        "object", "data", "first_id", "last_id", "has_more",
    }  # fmt: skip


def test_schema_and_docs_are_served(client):
    r = client.get("/api/schema/")
    assert r.status_code == 200 and b"/v1/videos/{video_id}/remix" in r.content
    r = client.get("/api/docs/")
    assert r.status_code == 200 and b"swagger" in r.content.lower()
