"""POST/GET/DELETE /v1/webhooks, rotate and test: roles, the secret shown once and stored
encrypted, URL checks (with private addresses refused), and another tenant's endpoint a 404."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook

from apps.api_keys import crypto
from apps.core.scoping import org_scope
from apps.webhooks import services
from apps.webhooks.models import VIDEO_EVENT_TYPES, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def _post(client, url, body=None):
    return client.post(url, body or {}, content_type="application/json")


def _create(tenants, url="http://127.0.0.1:9/hooks", token=None, **extra):
    client = tenants.api_client_for(token or tenants.alice_token)
    return _post(client, "/v1/webhooks", {"url": url, **extra})


def test_create_shows_the_secret_once_and_stores_it_encrypted(tenants):
    r = _create(tenants, description="ci receiver")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["id"].startswith("whep_") and body["url"] == "http://127.0.0.1:9/hooks"
    assert body["events"] == list(VIDEO_EVENT_TYPES) and body["description"] == "ci receiver"
    secret = body["secret"]
    assert secret.startswith("whsec_")
    Webhook(secret)  # a valid Standard Webhooks secret
    endpoint = WebhookEndpoint.all_orgs.get(public_id=body["id"])
    assert secret not in endpoint.secret_ciphertext and crypto.decrypt(endpoint.secret_ciphertext) == secret
    assert secret not in repr(endpoint) and secret not in str(endpoint)

    listed = tenants.api_client_for(tenants.bob_token).get("/v1/webhooks")  # members may list
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["data"]] == [body["id"]]
    assert secret not in listed.content.decode() and "secret" not in listed.json()["data"][0]
    one = tenants.api_client_for(tenants.alice_token).get(f"/v1/webhooks/{body['id']}")
    assert one.status_code == 200 and secret not in one.content.decode()


def test_events_are_chosen_and_checked(tenants):
    r = _create(tenants, events=["video.completed", "video.failed"])
    assert r.status_code == 201 and r.json()["events"] == ["video.completed", "video.failed"]
    r = _create(tenants, events=["video.exploded"])
    assert r.status_code == 400
    assert r.json()["error"]["param"].startswith("events") and r.json()["error"]["type"] == "invalid_request_error"
    r = _create(tenants, url="")
    assert r.status_code == 400 and r.json()["error"]["param"] == "url"


def test_members_cannot_write(tenants):
    r = _create(tenants, token=tenants.bob_token)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    endpoint_id = _create(tenants).json()["id"]
    bob = tenants.api_client_for(tenants.bob_token)
    for path in (f"/v1/webhooks/{endpoint_id}/rotate", f"/v1/webhooks/{endpoint_id}/test"):
        assert _post(bob, path).status_code == 403
    assert bob.delete(f"/v1/webhooks/{endpoint_id}").status_code == 403
    assert WebhookEndpoint.all_orgs.filter(public_id=endpoint_id).exists()


def test_delete(tenants):
    endpoint_id = _create(tenants).json()["id"]
    alice = tenants.api_client_for(tenants.alice_token)
    assert alice.delete(f"/v1/webhooks/{endpoint_id}").status_code == 204
    assert not WebhookEndpoint.all_orgs.filter(public_id=endpoint_id).exists()
    assert alice.delete(f"/v1/webhooks/{endpoint_id}").status_code == 404


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "ftp://example.com/hooks",
    ],
)
def test_private_and_odd_urls_are_refused_with_the_setting_off(tenants, url):
    r = _create(tenants, url=url)
    assert r.status_code == 400, r.content
    assert r.json()["error"]["param"] == "url" and r.json()["error"]["code"] in ("unsafe_url", "invalid_url")
    assert not WebhookEndpoint.all_orgs.exists()


@pytest.mark.usefixtures("strict")
def test_a_name_resolving_to_a_private_address_is_refused(tenants, monkeypatch):
    from apps.providers import http

    monkeypatch.setattr(http, "_resolve", lambda host, port: ["93.184.215.14", "10.0.0.5"])
    r = _create(tenants, url="https://hooks.example.com/in")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsafe_url"
    monkeypatch.setattr(http, "_resolve", lambda host, port: ["93.184.215.14"])
    assert _create(tenants, url="https://hooks.example.com/in").status_code == 201


@pytest.mark.usefixtures("strict", "public_dns")
def test_https_only_in_production(tenants, settings):
    settings.PROVIDER_ALLOW_HTTP = False  # production's default
    r = _create(tenants, url="http://hooks.example.com/in")
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsafe_url"
    assert _create(tenants, url="https://hooks.example.com/in").status_code == 201


def test_the_setting_on_lets_a_developer_use_a_local_receiver(tenants, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    assert _create(tenants, url="http://127.0.0.1:8123/hooks").status_code == 201


def test_rotate_signs_with_both_secrets_during_the_overlap(tenants, monkeypatch):
    created = _create(tenants).json()
    old = created["secret"]
    r = _post(tenants.api_client_for(tenants.alice_token), f"/v1/webhooks/{created['id']}/rotate")
    assert r.status_code == 200
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != old
    with org_scope(tenants.org_a):
        endpoint = WebhookEndpoint.objects.get(public_id=created["id"])
        test = _post(tenants.api_client_for(tenants.alice_token), f"/v1/webhooks/{created['id']}/test")
        assert test.status_code == 202
        delivery = WebhookDelivery.objects.select_related("event").get(public_id=test.json()["id"])
        now = services._now()
        headers = services.signed_headers(endpoint, delivery.event, now)
        assert len(headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):  # a receiver on either secret verifies it
            assert Webhook(secret).verify(delivery.event.body, headers)["type"] == "webhook.test"
        later = endpoint.previous_secret_expires_at
        headers = services.signed_headers(endpoint, delivery.event, later)
        assert len(headers["webhook-signature"].split(" ")) == 1
        assert Webhook(new).verify(delivery.event.body, headers)
        with pytest.raises(Exception, match="No matching signature"):
            Webhook(old).verify(delivery.event.body, headers)


def test_test_event_is_queued_for_that_endpoint_only(tenants):
    first = _create(tenants).json()["id"]
    _create(tenants)
    r = _post(tenants.api_client_for(tenants.alice_token), f"/v1/webhooks/{first}/test")
    assert r.status_code == 202
    body = r.json()
    assert body["event_type"] == "webhook.test" and body["state"] == "pending"
    delivery = WebhookDelivery.all_orgs.select_related("endpoint", "event").get()
    assert delivery.endpoint.public_id == first
    event = json.loads(delivery.event.body)
    assert event["object"] == "event" and event["data"] == {"id": first} and event["id"].startswith("evt_")


def test_another_tenant_endpoint_is_404_everywhere(tenants):
    created = _create(tenants).json()
    endpoint_id = created["id"]
    test = _post(tenants.api_client_for(tenants.alice_token), f"/v1/webhooks/{endpoint_id}/test").json()
    charlie = tenants.api_client_for(tenants.charlie_token)
    assert charlie.get("/v1/webhooks").json()["data"] == []
    assert charlie.get(f"/v1/webhooks/{endpoint_id}").status_code == 404
    assert charlie.delete(f"/v1/webhooks/{endpoint_id}").status_code == 404
    for path in ("rotate", "test", "enable", "replay", f"deliveries/{test['id']}/retry"):
        r = _post(
            charlie,
            f"/v1/webhooks/{endpoint_id}/{path}",
            {"since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"},
        )
        assert r.status_code == 404, path
        assert r.json()["error"]["type"] == "not_found_error"
    r = charlie.get(f"/v1/webhooks/{endpoint_id}/deliveries")
    assert r.status_code == 404 and test["id"] not in r.content.decode()
    endpoint = WebhookEndpoint.all_orgs.get(public_id=endpoint_id)
    assert crypto.decrypt(endpoint.secret_ciphertext) == created["secret"]  # not rotated
    assert WebhookDelivery.all_orgs.get().attempts == 0  # nothing retried
