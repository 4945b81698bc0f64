"""/v1/keys: list, create, delete, validate, in the error envelope, tenant-checked."""

from __future__ import annotations

import pytest

from apps.api_keys.models import KeyStatus
from apps.api_keys.services import api_token_create

from .helpers import defaults_of, keys_of

pytestmark = pytest.mark.django_db

KEY_FIELDS = {
    "id",
    "object",
    "provider",
    "label",
    "last4",
    "status",
    "is_default",
    "last_validated_at",
    "last_error",
    "settings",
    "created_at",
}


def _post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


def _envelope(r, status: int, type_: str):
    assert r.status_code == status, r.content
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == type_
    return error


@pytest.fixture
def viewer_token(tenants):
    from apps.accounts.models import Membership, Role, User
    from apps.core.ids import public_id
    from apps.core.scoping import org_scope

    dana = User.objects.create_user("dana@example.com", "pw", name="Dana")
    with org_scope(tenants.org_a):
        Membership.objects.create(organization=tenants.org_a, user=dana, role=Role.VIEWER, public_id=public_id("mem"))
    return api_token_create(org=tenants.org_a, user=dana, name="dana")[1]


# --- create ---------------------------------------------------------------------------------


def test_create_works(tenants, sora):
    api = tenants.api_client_for(tenants.alice_token)
    r = _post(api, "/v1/keys", {"provider": "sora", "api_key": sora.api_key, "label": "prod"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == KEY_FIELDS
    assert body["object"] == "provider_key" and body["id"].startswith("key_")
    assert body["provider"] == "sora" and body["label"] == "prod"
    assert body["last4"] == "…" + sora.api_key[-4:]
    assert body["status"] == "valid" and body["is_default"] is True and body["last_error"] == ""
    assert sora.api_key not in r.content.decode()
    assert [k.public_id for k in keys_of(tenants.org_a)] == [body["id"]]


def test_create_takes_both_kling_shapes(tenants, kling):
    api = tenants.api_client_for(tenants.alice_token)
    r = _post(api, "/v1/keys", {"provider": "kling", "api_key": kling.api_key})
    assert r.status_code == 201 and r.json()["status"] == "valid" and r.json()["is_default"]
    r = _post(api, "/v1/keys", {"provider": "kling", "access_key": kling.access_key, "secret_key": kling.secret_key})
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "valid" and body["last4"] == "…" + kling.secret_key[-4:] and not body["is_default"]
    for secret in (kling.access_key, kling.secret_key, kling.api_key):
        assert secret not in r.content.decode()


def test_create_refuses_a_half_kling_pair(tenants, kling):
    api = tenants.api_client_for(tenants.alice_token)
    r = _post(api, "/v1/keys", {"provider": "kling", "access_key": kling.access_key})
    error = _envelope(r, 400, "invalid_request_error")
    assert error["param"] == "secret_key" and error["code"] == "invalid_key_shape"


def test_create_refuses_a_key_the_provider_rejects(tenants, sora):
    api = tenants.api_client_for(tenants.alice_token)
    r = _post(api, "/v1/keys", {"provider": "sora", "api_key": "fake-key-rejected-by-provider-1"})
    error = _envelope(r, 400, "invalid_request_error")
    assert error["param"] == "api_key" and error["code"] == "invalid_provider_key"
    assert "Incorrect API key provided" in error["message"]
    assert "fake-key-rejected-by-provider-1" not in r.content.decode()
    assert keys_of(tenants.org_a) == []


def test_create_saves_an_uncheckable_key_as_unverified(tenants, sora):
    sora.add_fault(endpoint="list", status=500, body={"error": {"message": "Internal error"}})
    api = tenants.api_client_for(tenants.alice_token)
    r = _post(api, "/v1/keys", {"provider": "sora", "api_key": sora.api_key})
    assert r.status_code == 201
    assert r.json()["status"] == "unverified" and "Internal error" in r.json()["last_error"]


def test_create_validates_input(tenants):
    api = tenants.api_client_for(tenants.alice_token)
    error = _envelope(_post(api, "/v1/keys", {"api_key": "sk-no-provider-000"}), 400, "invalid_request_error")
    assert error["param"] == "provider"
    error = _envelope(
        _post(api, "/v1/keys", {"provider": "nope", "api_key": "sk-x-00000000"}), 400, "invalid_request_error"
    )
    assert error["param"] == "provider" and error["code"] == "unknown_provider"
    error = _envelope(_post(api, "/v1/keys", {"provider": "sora"}), 400, "invalid_request_error")
    assert error["param"] == "api_key"


def test_create_requires_admin(tenants, sora, viewer_token):
    for token in (tenants.bob_token, viewer_token):
        r = _post(tenants.api_client_for(token), "/v1/keys", {"provider": "sora", "api_key": sora.api_key})
        error = _envelope(r, 403, "permission_error")
        assert "owners and admins" in error["message"]
    assert keys_of(tenants.org_a) == []


def test_create_requires_a_token(client, sora):
    r = _post(client, "/v1/keys", {"provider": "sora", "api_key": sora.api_key})
    _envelope(r, 401, "authentication_error")


# --- list -----------------------------------------------------------------------------------


def test_list_works(tenants, make_key, viewer_token):
    key = make_key(secret="sk-listed-key-00001234", label="main")
    make_key(provider="kling", fields={"access_key": "ak-listed-00000", "secret_key": "sk-listed-pair-9876"})
    make_key(org=tenants.org_b, secret="sk-charlies-key-5555")
    for token in (tenants.alice_token, tenants.bob_token, viewer_token):  # every member may list
        r = tenants.api_client_for(token).get("/v1/keys")
        assert r.status_code == 200
        body = r.json()
        assert body["object"] == "list"
        assert [k["provider"] for k in body["data"]] == ["kling", "sora"]
        first = body["data"][1]
        assert set(first) == KEY_FIELDS and first["id"] == key.public_id and first["last4"] == "…1234"
        text = r.content.decode()
        assert "sk-listed-key-00001234" not in text and "sk-listed-pair-9876" not in text
        assert "ak-listed-00000" not in text and key.ciphertext not in text
        assert "5555" not in text


def test_list_checks_ownership(tenants, make_key):
    make_key()
    r = tenants.api_client_for(tenants.charlie_token).get("/v1/keys")
    assert r.status_code == 200 and r.json()["data"] == []


def test_other_methods_get_405_in_the_envelope(tenants):
    r = tenants.api_client_for(tenants.alice_token).put("/v1/keys", {}, content_type="application/json")
    _envelope(r, 405, "invalid_request_error")


# --- delete ---------------------------------------------------------------------------------


def test_delete_works(tenants, make_key):
    first, second = make_key(), make_key()
    r = tenants.api_client_for(tenants.alice_token).delete(f"/v1/keys/{first.public_id}")
    assert r.status_code == 204 and r.content == b""
    assert [k.public_id for k in keys_of(tenants.org_a)] == [second.public_id]
    assert defaults_of(tenants.org_a, "sora") == [second.public_id]


def test_delete_requires_admin(tenants, make_key, viewer_token):
    key = make_key()
    for token in (tenants.bob_token, viewer_token):
        _envelope(tenants.api_client_for(token).delete(f"/v1/keys/{key.public_id}"), 403, "permission_error")
    assert keys_of(tenants.org_a) == [key]


def test_delete_of_an_unknown_key_is_404(tenants):
    _envelope(tenants.api_client_for(tenants.alice_token).delete("/v1/keys/key_nope"), 404, "not_found_error")


# --- validate -------------------------------------------------------------------------------


def test_validate_works(tenants, make_key, sora):
    key = make_key(secret=sora.api_key, status=KeyStatus.UNVERIFIED)
    r = _post(tenants.api_client_for(tenants.alice_token), f"/v1/keys/{key.public_id}/validate")
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == KEY_FIELDS and body["id"] == key.public_id
    assert body["status"] == "valid" and body["last_validated_at"] is not None


def test_validate_reports_a_refused_key(tenants, make_key, sora):
    key = make_key(secret="sk-no-longer-good-0000")
    r = _post(tenants.api_client_for(tenants.alice_token), f"/v1/keys/{key.public_id}/validate")
    assert r.status_code == 200
    assert r.json()["status"] == "invalid" and "Incorrect API key" in r.json()["last_error"]
    assert "sk-no-longer-good-0000" not in r.content.decode()


def test_validate_requires_admin(tenants, make_key, sora, viewer_token):
    key = make_key(secret=sora.api_key)
    for token in (tenants.bob_token, viewer_token):
        r = _post(tenants.api_client_for(token), f"/v1/keys/{key.public_id}/validate")
        _envelope(r, 403, "permission_error")


# --- tenancy --------------------------------------------------------------------------------


def test_it_checks_ownership(tenants, make_key, sora):
    """Charlie (owner of org B) gets 404 on alice's key for every key endpoint."""
    key = make_key(secret=sora.api_key)
    api = tenants.api_client_for(tenants.charlie_token)
    for method, url in (
        ("delete", f"/v1/keys/{key.public_id}"),
        ("post", f"/v1/keys/{key.public_id}/validate"),
    ):
        r = getattr(api, method)(url, content_type="application/json")
        error = _envelope(r, 404, "not_found_error")
        assert key.public_id not in r.content.decode() and error["param"] == "key_id"
    assert keys_of(tenants.org_a) == [key]
    assert sora.stats()["calls"].get("list", 0) == 0
    assert key.public_id not in api.get("/v1/keys").content.decode()


# --- schema ---------------------------------------------------------------------------------


def test_the_schema_documents_the_key_endpoints(client):
    r = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert set(paths["/v1/keys"]) == {"get", "post"}
    assert "delete" in paths["/v1/keys/{key_id}"]
    assert "post" in paths["/v1/keys/{key_id}/validate"]
    schemas = r.json()["components"]["schemas"]
    assert "ciphertext" not in schemas["ProviderKey"]["properties"]
    assert {"api_key", "access_key", "secret_key"} <= set(schemas["ProviderKeyCreateRequest"]["properties"])
