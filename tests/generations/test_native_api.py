"""The native API shape (/v1/video/generations, /v1/usage/estimate): one view per method, the
shared parser's answers, and the Idempotency-Key handled as in the OpenAI shape (stripped)."""

from __future__ import annotations

import base64

import pytest

from apps.generations.models import Generation
from tests.emulators.base import sample_image
from tests.openai_compat.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/v1/video/generations"


def _post(client, body, **headers):
    return client.post(URL, body, content_type="application/json", headers=headers)


def test_create_maps_an_aspect_ratio_and_one_view_serves_each_method(tenants):
    api = tenants.api_client_for(tenants.alice_token)
    r = _post(api, {"model": "sandbox-video", "prompt": "a fox", "duration": 2, "aspect_ratio": "9:16"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["object"], body["status"], body["size"], body["aspect_ratio"]) == (
        "video.generation",
        "queued",
        "720x1280",
        "9:16",
    )
    assert body["usage"] == {
        "currency": "USD",
        "estimated_cost": "0.0000",
        "cost": None,
        "price_version": "sandbox-free",
        "provider_reported_cost": None,
    }
    assert body["requested_model"] == "sandbox-video" and body["attempts"] == []
    listed = api.get(URL, {"status": "queued", "limit": 1}).json()
    assert [g["id"] for g in listed["data"]] == [body["id"]] and listed["has_more"] is False
    assert api.get(URL, {"status": "completed"}).json()["data"] == []
    assert api.get(f"{URL}/{body['id']}").json()["id"] == body["id"]
    assert_error(api.get(f"{URL}/{body['id']}/content"), 404)
    assert_error(api.put(f"{URL}/{body['id']}", {}), 405)
    assert api.delete(f"{URL}/{body['id']}").status_code == 204
    assert_error(api.get(f"{URL}/{body['id']}"), 404, param="id")


def test_the_idempotency_key_is_stripped_like_the_openai_shape(tenants):
    api = tenants.api_client_for(tenants.alice_token)
    body = {"model": "sandbox-video", "prompt": "once", "duration": 2}
    first = _post(api, body, **{"Idempotency-Key": "order-7"}).json()
    again = _post(api, body, **{"Idempotency-Key": "  order-7 "}).json()
    assert again["id"] == first["id"]
    assert Generation.all_orgs.get(public_id=first["id"]).idempotency_key == "order-7"
    assert_error(_post(api, {**body, "prompt": "other"}, **{"Idempotency-Key": "order-7 "}), 409)


def test_bad_input_is_a_400_naming_the_field(tenants):
    api = tenants.api_client_for(tenants.alice_token)
    ok = {"model": "sandbox-video", "prompt": "p", "duration": 2}
    assert_error(_post(api, {**ok, "model": "no-such-model"}), 400, param="model", code="model_not_found")
    assert_error(_post(api, {**ok, "aspect_ratio": "wide"}), 400, param="aspect_ratio")
    assert_error(_post(api, {**ok, "aspect_ratio": "4:3"}), 400, param="aspect_ratio", code="invalid_value")
    assert_error(_post(api, {**ok, "duration": 3}), 400, param="seconds", code="invalid_value")
    assert_error(_post(api, {**ok, "image": "data:image/png,notbase64"}), 400, param="image")
    assert_error(_post(api, {**ok, "image": "data:image/png;base64,@@@"}), 400, param="image")
    assert_error(_post(api, {**ok, "image": "ftp://example.com/x.png"}), 400, param="image")
    # the sandbox makes no video from an image: the service's input_reference is this API's image
    png = base64.b64encode(sample_image("PNG")).decode()
    assert_error(_post(api, {**ok, "image": f"data:image/png;base64,{png}"}), 400, param="image")
    assert_error(api.get(URL, {"limit": "many"}), 400, param="limit")
    assert_error(api.get(URL, {"offset": -1}), 400, param="offset")
    assert Generation.all_orgs.count() == 0


def test_the_estimate_prices_a_request_with_the_models_defaults(tenants):
    api = tenants.api_client_for(tenants.alice_token)
    url = "/v1/usage/estimate"
    r = api.post(url, {"model": "sora-2-pro", "duration": 8, "aspect_ratio": "16:9"}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json() == {
        "model": "sora-2-pro",
        "provider": "sora",
        "duration": 8,
        "size": "1280x720",
        "estimated_cost": "2.4000",  # 8 s at $0.30/s
        "currency": "USD",
        "price_version": "sora-2026-08-02",
    }
    r = api.post(url, {"model": "gen4.5"}, content_type="application/json").json()  # defaults, $0.12/s
    assert (r["duration"], r["size"], r["estimated_cost"]) == (5, "1280x720", "0.6000")
    r = api.post(url, {"model": "nope"}, content_type="application/json")
    assert_error(r, 400, param="model", code="model_not_found")
    r = api.post(url, {"model": "sora-2", "duration": 5}, content_type="application/json")
    assert_error(r, 400, param="seconds", code="invalid_value")
