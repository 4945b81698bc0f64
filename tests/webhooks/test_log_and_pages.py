"""The delivery log (API and admin), manual retry, replay of a time range, and Settings →
Webhooks (owners and admins manage, CSRF on every form, the secret shown once)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from standardwebhooks import Webhook

from apps.core.scoping import org_scope
from apps.webhooks import services
from apps.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.webhooks.helpers import complete as _complete
from tests.webhooks.helpers import generation as _generation

pytestmark = pytest.mark.django_db


def _api(tenants, token=None):
    return tenants.api_client_for(token or tenants.alice_token)


def _make(tenants, url: str, **extra) -> dict:
    r = _api(tenants).post("/v1/webhooks", {"url": url, **extra}, content_type="application/json")
    assert r.status_code == 201, r.content
    return r.json()


def test_the_log_shows_attempts_and_a_manual_retry_resends_the_same_id(
    tenants,
    receiver,
    clock,
    django_capture_on_commit_callbacks,
):
    sink = receiver(lambda n: 500 if n == 1 else 200)
    endpoint = _make(tenants, sink.url, events=["video.completed"])
    _complete(_generation(tenants))
    delivery = WebhookDelivery.all_orgs.get()
    with org_scope(tenants.org_a):
        services.delivery_send(delivery_id=delivery.public_id)
    r = _api(tenants).get(f"/v1/webhooks/{endpoint['id']}/deliveries")
    assert r.status_code == 200
    (row,) = r.json()["data"]
    assert row["id"] == delivery.public_id and row["state"] == "pending" and row["attempts"] == 1
    assert row["last_status_code"] == 500 and row["event_type"] == "video.completed"
    (attempt,) = row["attempt_log"]
    assert attempt["status_code"] == 500 and len(attempt["response"]) == services.RESPONSE_EXCERPT
    assert attempt["latency_ms"] >= 0
    assert endpoint["secret"] not in r.content.decode()

    bob = _api(tenants, tenants.bob_token)  # members may read the log, not retry
    assert bob.get(f"/v1/webhooks/{endpoint['id']}/deliveries").status_code == 200
    assert bob.post(f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery.public_id}/retry").status_code == 403

    with django_capture_on_commit_callbacks(execute=True):  # the retry's task runs (eagerly)
        r = _api(tenants).post(f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery.public_id}/retry")
    assert r.status_code == 202
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempts == 2
    first, second = sink.wait(2)
    assert first[1]["webhook-id"] == second[1]["webhook-id"] == delivery.event.public_id
    missing = _api(tenants).post(f"/v1/webhooks/{endpoint['id']}/deliveries/whdl_nope/retry")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "delivery_id"


def test_replay_resends_a_time_range_with_the_original_ids(tenants, receiver, clock):
    sink = receiver()
    endpoint = _make(tenants, sink.url, events=["video.completed"])
    start = clock.now
    _complete(_generation(tenants))
    clock.advance(3600)
    _complete(_generation(tenants))
    first_event, second_event = WebhookEvent.all_orgs.order_by("id")
    body = {
        "since": (start - timedelta(seconds=1)).isoformat(),
        "until": (start + timedelta(seconds=60)).isoformat(),
    }
    r = _api(tenants).post(f"/v1/webhooks/{endpoint['id']}/replay", body, content_type="application/json")
    assert r.status_code == 202 and r.json() == {"replayed": 1}
    replayed = WebhookDelivery.all_orgs.filter(event=first_event).order_by("id")
    assert replayed.count() == 2 and WebhookDelivery.all_orgs.filter(event=second_event).count() == 1
    with org_scope(tenants.org_a):
        services.delivery_send(delivery_id=replayed.last().public_id)
    ((_, headers, payload),) = sink.wait(1)
    assert headers["webhook-id"] == first_event.public_id
    assert Webhook(endpoint["secret"]).verify(payload, headers)["id"] == first_event.public_id

    bad = _api(tenants).post(
        f"/v1/webhooks/{endpoint['id']}/replay",
        {"since": body["until"], "until": body["since"]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "until"
    bad = _api(tenants).post(
        f"/v1/webhooks/{endpoint['id']}/replay", {"since": "yesterday"}, content_type="application/json"
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "since"


def test_operators_see_deliveries_in_the_admin(tenants, django_user_model):
    endpoint = _make(tenants, "http://127.0.0.1:9/hooks")
    _api(tenants).post(f"/v1/webhooks/{endpoint['id']}/test")
    staff = django_user_model.objects.create_superuser("ops@example.com", "pw")
    client = tenants.client_for(staff)
    delivery = WebhookDelivery.all_orgs.get()
    r = client.get("/admin/webhooks/webhookdelivery/")
    assert r.status_code == 200 and delivery.public_id.encode() in r.content
    assert client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").status_code == 200
    r = client.get("/admin/webhooks/webhookendpoint/")
    assert r.status_code == 200 and endpoint["id"].encode() in r.content
    page = client.get(f"/admin/webhooks/webhookendpoint/{WebhookEndpoint.all_orgs.get().pk}/change/")
    assert page.status_code == 200 and endpoint["secret"].encode() not in page.content


# --- Settings → Webhooks ------------------------------------------------------------------------


def _page(tenants) -> str:
    return f"/o/{tenants.org_a.slug}/settings/webhooks/"


def _csrf_client(user) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get("/o/alice-films/settings/webhooks/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
    return client, token.group(1).decode() if token else ""


def test_owners_add_rotate_test_and_delete_in_settings(tenants, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    client, token = _csrf_client(tenants.alice)
    assert token, "the page has a CSRF-protected form"
    page = client.get(_page(tenants))
    assert b"Webhooks" in page.content and b'action="/o/alice-films/settings/webhooks/add/"' in page.content
    assert client.post(_page(tenants) + "add/", {"url": "http://127.0.0.1:9/h"}).status_code == 403  # no CSRF token
    r = client.post(
        _page(tenants) + "add/",
        {"url": "http://127.0.0.1:9/h", "events": ["video.completed"], "csrfmiddlewaretoken": token},
    )
    assert r.status_code == 200
    endpoint = WebhookEndpoint.all_orgs.get()
    secret = re.search(rb"whsec_[A-Za-z0-9+/=]+", r.content).group(0).decode()
    with org_scope(tenants.org_a):
        from apps.api_keys import crypto

        assert crypto.decrypt(endpoint.secret_ciphertext) == secret
    assert endpoint.events == ["video.completed"]
    assert secret.encode() not in client.get(_page(tenants)).content  # shown once

    r = client.post(_page(tenants) + f"{endpoint.public_id}/rotate/", {"csrfmiddlewaretoken": token})
    new = re.search(rb"whsec_[A-Za-z0-9+/=]+", r.content).group(0).decode()
    assert new != secret

    r = client.post(_page(tenants) + f"{endpoint.public_id}/test/", {"csrfmiddlewaretoken": token}, follow=True)
    assert r.status_code == 200 and b"webhook.test" in r.content  # the delivery log page
    log = client.get(_page(tenants) + f"{endpoint.public_id}/")
    delivery = WebhookDelivery.all_orgs.get()
    assert delivery.public_id.encode() in log.content
    retry = client.post(
        _page(tenants) + f"{endpoint.public_id}/deliveries/{delivery.public_id}/retry/", {"csrfmiddlewaretoken": token}
    )
    assert retry.status_code == 302

    r = client.post(_page(tenants) + f"{endpoint.public_id}/delete/", {"csrfmiddlewaretoken": token})
    assert r.status_code == 302 and not WebhookEndpoint.all_orgs.exists()


@pytest.mark.usefixtures("strict")
def test_the_page_refuses_a_private_url_with_the_setting_off(tenants):
    client = tenants.client_for(tenants.alice)
    r = client.post(_page(tenants) + "add/", {"url": "http://10.0.0.1/hooks"})
    assert r.status_code == 400 and b"private" in r.content
    assert not WebhookEndpoint.all_orgs.exists()


def test_members_see_but_cannot_manage(tenants):
    endpoint = _make(tenants, "http://127.0.0.1:9/hooks")
    bob = tenants.client_for(tenants.bob)
    page = bob.get(_page(tenants))
    assert page.status_code == 200 and endpoint["url"].encode() in page.content
    assert b"Add an endpoint" not in page.content and b"Rotate" not in page.content
    assert bob.post(_page(tenants) + "add/", {"url": "http://127.0.0.1:9/x"}).status_code == 403
    assert bob.post(_page(tenants) + f"{endpoint['id']}/delete/").status_code == 403
    assert bob.post(_page(tenants) + f"{endpoint['id']}/rotate/").status_code == 403
    assert WebhookEndpoint.all_orgs.count() == 1


def test_charlie_reaches_none_of_alice_webhook_pages(tenants):
    endpoint = _make(tenants, "http://127.0.0.1:9/hooks")
    charlie = tenants.client_for(tenants.charlie)
    for suffix in ("", f"{endpoint['id']}/", f"{endpoint['id']}/delete/", f"{endpoint['id']}/rotate/"):
        assert charlie.post(_page(tenants) + suffix).status_code == 404
    own = f"/o/{tenants.org_b.slug}/settings/webhooks/"
    for suffix in (
        f"{endpoint['id']}/",
        f"{endpoint['id']}/delete/",
        f"{endpoint['id']}/rotate/",
        f"{endpoint['id']}/test/",
    ):
        method = charlie.get if suffix.count("/") == 1 else charlie.post
        assert method(own + suffix).status_code == 404, suffix
    assert WebhookEndpoint.all_orgs.count() == 1
