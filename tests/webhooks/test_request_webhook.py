"""The native create's per-request ``webhook_url``: checked like an endpoint URL, needs an
endpoint (whose secret signs), and gets the video's events; its failures are not the endpoint's."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from apps.core.scoping import org_scope
from apps.generations.models import Generation
from apps.webhooks import services
from apps.webhooks.models import DeliveryState, VideoWebhook, WebhookDelivery, WebhookEndpoint
from tests.webhooks.helpers import complete

pytestmark = pytest.mark.django_db


def _create(tenants, **extra):
    body = {"model": "sandbox-video", "prompt": "a fox", "duration": 2, **extra}
    return tenants.api_client_for(tenants.alice_token).post(
        "/v1/video/generations", body, content_type="application/json"
    )


def _endpoint(tenants, url: str) -> dict:
    r = tenants.api_client_for(tenants.alice_token).post(
        "/v1/webhooks", {"url": url, "events": ["video.failed"]}, content_type="application/json"
    )
    assert r.status_code == 201
    return r.json()


def test_webhook_url_needs_an_endpoint(tenants):
    r = _create(tenants, webhook_url="http://127.0.0.1:9/mine")
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "webhook_url" and r.json()["error"]["code"] == "no_webhook_endpoint"
    assert not Generation.all_orgs.exists()


@pytest.mark.usefixtures("strict")
def test_webhook_url_is_checked_like_an_endpoint(tenants, monkeypatch):
    from apps.providers import http

    real = http._resolve
    monkeypatch.setattr(http, "_resolve", lambda host, port: ["93.184.215.14"])
    _endpoint(tenants, "https://hooks.example.com/in")
    monkeypatch.setattr(http, "_resolve", real)  # an address literal resolves to itself, no network
    r = _create(tenants, webhook_url="http://169.254.169.254/latest")
    assert r.status_code == 400 and r.json()["error"]["param"] == "webhook_url"
    assert r.json()["error"]["code"] == "unsafe_url" and not Generation.all_orgs.exists()


def test_the_video_events_go_to_the_webhook_url_signed_with_the_default_secret(tenants, receiver, clock):
    mine = receiver(lambda n: 500 if n == 1 else 200, path="/mine")
    default = _endpoint(tenants, "http://127.0.0.1:9/default")  # wants only video.failed
    r = _create(tenants, webhook_url=mine.url)
    assert r.status_code == 201, r.content
    gen = Generation.all_orgs.get(public_id=r.json()["id"])
    assert VideoWebhook.all_orgs.get().url == mine.url
    complete(gen)
    deliveries = WebhookDelivery.all_orgs.select_related("event").order_by("id")
    assert [d.event.type for d in deliveries] == ["video.queued", "video.in_progress", "video.completed"]
    assert {d.url for d in deliveries} == {mine.url}
    completed = deliveries.last()
    with org_scope(tenants.org_a):
        first = services.delivery_send(delivery_id=completed.public_id)
        assert first.state == DeliveryState.PENDING
        assert WebhookEndpoint.objects.get(public_id=default["id"]).failing_since is None  # not the endpoint's
        clock.to(first.next_attempt_at)
        assert services.delivery_send(delivery_id=completed.public_id).state == DeliveryState.SUCCEEDED
    _, headers, body = mine.wait(2)[1]
    event = Webhook(default["secret"]).verify(body, headers)
    assert event["type"] == "video.completed" and event["data"]["id"] == gen.public_id
    log = tenants.api_client_for(tenants.alice_token).get(f"/v1/webhooks/{default['id']}/deliveries").json()
    assert {row["url"] for row in log["data"]} == {mine.url}
