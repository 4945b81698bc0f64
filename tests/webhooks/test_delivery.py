"""The outbox and the sender, in-process against a real local receiver, with a fake clock for
the backoff: events written with the state change, signatures both verifiers accept, retries with
the same ``webhook-id`` after 500s, timeouts and dropped connections, ``Retry-After``, giving up
after 24 hours, disabling after 3 days (owners told), the concurrency cap, redirects not followed,
and DNS answering a private address at delivery time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from openai import InvalidWebhookSignatureError, OpenAI
from standardwebhooks import Webhook

from apps.core.scoping import org_scope
from apps.generations import engine
from apps.generations.models import State
from apps.providers import http
from apps.webhooks import services
from apps.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.webhooks.helpers import complete as _complete
from tests.webhooks.helpers import endpoint as _endpoint
from tests.webhooks.helpers import generation as _generation

pytestmark = pytest.mark.django_db


def _send(delivery: WebhookDelivery):
    with org_scope(delivery.organization):
        return services.delivery_send(delivery_id=delivery.public_id)


def _delivery(type_: str = "video.completed") -> WebhookDelivery:
    return WebhookDelivery.all_orgs.select_related("event", "organization").get(event__type=type_)


# --- the outbox -------------------------------------------------------------------------------


def test_state_changes_write_events_in_openai_shape(tenants, alice_m):
    endpoint, _ = _endpoint(alice_m, "http://127.0.0.1:9/hooks")
    gen = _generation(tenants)
    _complete(gen)
    events = list(WebhookEvent.all_orgs.order_by("id"))
    assert [e.type for e in events] == ["video.queued", "video.in_progress", "video.completed"]
    body = json.loads(events[-1].body)
    assert set(body) == {"id", "object", "type", "created_at", "data"}
    assert body["object"] == "event" and body["id"] == events[-1].public_id and body["id"].startswith("evt_")
    assert body["data"] == {"id": gen.public_id} and isinstance(body["created_at"], int)
    assert "secret" not in events[-1].body and "http" not in events[-1].body  # no secret, no content URL
    assert WebhookDelivery.all_orgs.filter(endpoint=endpoint, state=DeliveryState.PENDING).count() == 3


def test_the_event_commits_or_rolls_back_with_the_state_change(tenants, alice_m):
    _endpoint(alice_m, "http://127.0.0.1:9/hooks")
    gen = _generation(tenants)
    with pytest.raises(RuntimeError), transaction.atomic(), org_scope(tenants.org_a):
        assert engine.transition(gen, from_states=[State.CREATED], to=State.QUEUED)
        assert WebhookEvent.all_orgs.count() == 1
        raise RuntimeError("the caller's transaction fails after the UPDATE")
    gen.refresh_from_db()
    assert gen.state == State.CREATED
    assert WebhookEvent.all_orgs.count() == 0 and WebhookDelivery.all_orgs.count() == 0


def test_failed_and_canceled_events(tenants, alice_m):
    _endpoint(alice_m, "http://127.0.0.1:9/hooks", events=["video.failed", "video.canceled"])
    first, second = _generation(tenants), _generation(tenants)
    with org_scope(tenants.org_a):
        engine.transition(first, from_states=[State.CREATED], to=State.QUEUED)  # not subscribed
        engine.fail(first, code="generation_failed", message="no")
        engine.fail(second, code="canceled", message="stop", state=State.CANCELED)
    assert sorted(WebhookEvent.all_orgs.values_list("type", flat=True)) == ["video.canceled", "video.failed"]


def test_in_progress_at_most_once_per_ten_percent(tenants, alice_m):
    _endpoint(alice_m, "http://127.0.0.1:9/hooks", events=["video.in_progress"])
    gen = _generation(tenants)
    with org_scope(tenants.org_a):
        engine.transition(gen, from_states=[State.CREATED], to=State.QUEUED)
        for progress in (3, 5, 9, 10, 14, 19, 35, 35, 36):
            engine.transition(
                gen, from_states=[State.QUEUED, State.IN_PROGRESS], to=State.IN_PROGRESS, progress=progress
            )
        engine.transition(gen, from_states=[State.IN_PROGRESS], to=State.QUEUED, progress=36)  # provider says queued
        engine.transition(gen, from_states=[State.QUEUED], to=State.IN_PROGRESS, progress=37)  # same 30 % again
    progress = [json.loads(e.body)["data"]["progress"] for e in WebhookEvent.all_orgs.order_by("id")]
    assert progress == [3, 10, 35]


def test_no_endpoint_costs_one_query_and_writes_nothing(tenants, django_assert_num_queries):
    gen = _generation(tenants)
    with django_assert_num_queries(1):
        assert (
            services.video_event(
                org_id=gen.organization_id, video_id=gen.public_id, from_state="downloading", state="completed"
            )
            is None
        )
    with django_assert_num_queries(0):  # not an event at all: no query
        services.video_event(
            org_id=gen.organization_id,
            video_id=gen.public_id,
            from_state="in_progress",
            state="in_progress",
            progress=12,
            previous_progress=11,
        )
    _complete(gen)
    assert WebhookEvent.all_orgs.count() == 0


def test_disabled_endpoints_get_nothing(tenants, alice_m):
    endpoint, _ = _endpoint(alice_m, "http://127.0.0.1:9/hooks")
    WebhookEndpoint.all_orgs.filter(pk=endpoint.pk).update(disabled_at=services.timezone.now())
    _complete(_generation(tenants))
    assert WebhookEvent.all_orgs.count() == 0


# --- sending ------------------------------------------------------------------------------------


def test_a_real_receiver_gets_a_signed_event_both_verifiers_accept(tenants, alice_m, receiver, clock):
    sink = receiver()
    _, secret = _endpoint(alice_m, sink.url, events=["video.completed"])
    gen = _generation(tenants)
    _complete(gen)
    delivery = _send(_delivery())
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.last_status_code == 200
    ((path, headers, body),) = sink.wait(1)
    assert path == "/hooks/mediarouter"
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "video.completed" and event["data"]["id"] == gen.public_id
    assert headers["webhook-id"] == event["id"] == delivery.event.public_id
    unwrapped = OpenAI(api_key="sk-unused", base_url="http://127.0.0.1:9/v1").webhooks.unwrap(
        body, headers, secret=secret
    )
    assert unwrapped.type == "video.completed" and unwrapped.data.id == gen.public_id and unwrapped.id == event["id"]
    with pytest.raises(InvalidWebhookSignatureError):
        OpenAI(api_key="sk-unused", base_url="http://127.0.0.1:9/v1").webhooks.unwrap(
            body, headers, secret="whsec_" + "A" * 32
        )
    assert secret not in json.dumps(headers) and secret not in body.decode()
    (attempt,) = WebhookAttempt.all_orgs.filter(delivery=delivery)
    assert attempt.status_code == 200 and attempt.response_excerpt == '{"ok": true}' and attempt.latency_ms >= 0
    assert _send(delivery) is None  # delivered: never sent again
    assert len(sink.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [500, ("sleep", 1.5), ("close",)],
    ids=["http-500", "timeout", "connection-closed"],
)
def test_failures_are_retried_with_the_same_webhook_id(tenants, alice_m, receiver, clock, settings, failure):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    sink = receiver(lambda n: failure if n == 1 else 200)
    _, secret = _endpoint(alice_m, sink.url, events=["video.completed"])
    _complete(_generation(tenants))
    first = _send(_delivery())
    assert first.state == DeliveryState.PENDING and first.attempts == 1
    assert first.next_attempt_at == clock.now + timedelta(seconds=services.FIRST_RETRY_SECONDS)
    assert first.last_error
    assert _send(first) is None  # not due yet
    clock.advance(services.FIRST_RETRY_SECONDS)
    second = _send(first)
    assert second.state == DeliveryState.SUCCEEDED and second.attempts == 2
    requests = sink.wait(2)
    ids = {headers["webhook-id"] for _, headers, _ in requests}
    assert ids == {second.event.public_id}
    for _, headers, body in requests:
        Webhook(secret).verify(body, headers)
    log = list(WebhookAttempt.all_orgs.filter(delivery=second).order_by("id"))
    assert [a.status_code for a in log] == ([500, 200] if failure == 500 else [None, 200])
    if failure == 500:
        assert len(log[0].response_excerpt) == services.RESPONSE_EXCERPT  # truncated answer
    else:
        assert log[0].error


def test_backoff_grows_honours_retry_after_and_gives_up_after_24_hours(tenants, alice_m, receiver, clock):
    sink = receiver(lambda n: ("status", 503, {"Retry-After": "7200"}) if n == 1 else 500)
    _endpoint(alice_m, sink.url, events=["video.completed"])
    _complete(_generation(tenants))
    delivery = _send(_delivery())
    assert delivery.next_attempt_at == clock.now + timedelta(seconds=services.MAX_RETRY_SECONDS)  # Retry-After, capped
    delays = []
    while delivery.state == DeliveryState.PENDING:
        previous = clock.now
        clock.to(delivery.next_attempt_at)
        delays.append((clock.now - previous).total_seconds())
        delivery = _send(delivery)
    assert delivery.state == DeliveryState.FAILED and delivery.next_attempt_at is None
    assert delays[:4] == [3600.0, 10.0, 20.0, 40.0]  # Retry-After, then exponential
    assert max(delays) == services.MAX_RETRY_SECONDS
    assert clock.now - delivery.created_at <= timedelta(hours=24)
    assert len(sink.requests) == delivery.attempts and len({h["webhook-id"] for _, h, _ in sink.requests}) == 1


def test_an_endpoint_failing_for_three_days_is_disabled_and_owners_told(
    tenants, alice_m, receiver, clock, django_capture_on_commit_callbacks
):
    sink = receiver(lambda n: 500)
    endpoint, _ = _endpoint(alice_m, sink.url, events=["video.completed"])
    _complete(_generation(tenants))
    _send(_delivery())
    endpoint.refresh_from_db()
    assert endpoint.failing_since == clock.now and endpoint.disabled_at is None
    clock.advance(3 * 86400 + 1)
    gen = _generation(tenants)
    _complete(gen)
    late = WebhookDelivery.all_orgs.select_related("event", "organization").get(event__video_id=gen.public_id)
    with django_capture_on_commit_callbacks(execute=True):
        _send(late)
    endpoint.refresh_from_db()
    assert endpoint.disabled_at == clock.now and "3 days" in endpoint.disabled_reason
    assert not WebhookDelivery.all_orgs.filter(state__in=[DeliveryState.PENDING, DeliveryState.SENDING]).exists()
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"] and endpoint.public_id in message.body  # owners only
    page = tenants.client_for(tenants.alice).get(f"/o/{tenants.org_a.slug}/settings/webhooks/")
    assert b"disabled" in page.content and endpoint.disabled_reason.encode() in page.content
    _complete(_generation(tenants))
    assert WebhookDelivery.all_orgs.filter(state=DeliveryState.PENDING).count() == 0  # no new deliveries


def test_a_success_resets_the_failure_clock(tenants, alice_m, receiver, clock):
    sink = receiver(lambda n: 500 if n == 1 else 200)
    endpoint, _ = _endpoint(alice_m, sink.url, events=["video.completed"])
    _complete(_generation(tenants))
    delivery = _send(_delivery())
    clock.to(delivery.next_attempt_at)
    _send(delivery)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_concurrent_deliveries_per_endpoint_are_capped(tenants, alice_m, receiver, clock, settings):
    settings.WEBHOOK_MAX_CONCURRENCY = 1
    sink = receiver()
    _endpoint(alice_m, sink.url, events=["video.completed"])
    _complete(_generation(tenants))
    _complete(_generation(tenants))
    busy, waiting = WebhookDelivery.all_orgs.select_related("event", "organization").order_by("id")
    WebhookDelivery.all_orgs.filter(pk=busy.pk).update(
        state=DeliveryState.SENDING, next_attempt_at=clock.now + timedelta(seconds=30)
    )
    assert _send(waiting) is None
    waiting.refresh_from_db()
    assert waiting.state == DeliveryState.PENDING and waiting.attempts == 0
    assert clock.now < waiting.next_attempt_at <= clock.now + timedelta(seconds=2 * services.BUSY_RETRY_SECONDS)
    assert sink.requests == []
    WebhookDelivery.all_orgs.filter(pk=busy.pk).update(state=DeliveryState.SUCCEEDED, next_attempt_at=None)
    clock.to(waiting.next_attempt_at)
    assert _send(waiting).state == DeliveryState.SUCCEEDED


def test_a_send_whose_worker_died_is_sent_again_after_its_lease(tenants, alice_m, receiver, clock):
    sink = receiver()
    _endpoint(alice_m, sink.url, events=["video.completed"])
    _complete(_generation(tenants))
    delivery = _delivery()
    lease_end = clock.now + timedelta(seconds=60)
    WebhookDelivery.all_orgs.filter(pk=delivery.pk).update(state=DeliveryState.SENDING, next_attempt_at=lease_end)
    assert _send(delivery) is None  # in flight: not twice at once
    clock.to(lease_end)
    assert _send(delivery).state == DeliveryState.SUCCEEDED


def test_redirects_are_never_followed(tenants, alice_m, receiver, clock):
    elsewhere = receiver()
    sink = receiver(lambda n: ("status", 302, {"Location": elsewhere.url}))
    _endpoint(alice_m, sink.url, events=["video.completed"])
    _complete(_generation(tenants))
    delivery = _send(_delivery())
    assert delivery.state == DeliveryState.PENDING and delivery.last_status_code == 302
    assert "Redirects are not followed" in delivery.last_error
    assert elsewhere.requests == []


@pytest.mark.usefixtures("strict")
def test_dns_answering_a_private_address_at_delivery_is_refused(tenants, alice_m, clock, monkeypatch):
    monkeypatch.setattr(http, "_resolve", lambda host, port: ["93.184.215.14"])
    _endpoint(alice_m, "https://hooks.example.com/in", events=["video.completed"])
    _complete(_generation(tenants))
    monkeypatch.setattr(http, "_resolve", lambda host, port: ["127.0.0.1"])  # DNS rebinding

    def no_request(*args, **kwargs):
        raise AssertionError("nothing may be sent to a private address")

    monkeypatch.setattr(http, "request", no_request)
    delivery = _send(_delivery())
    assert delivery.state == DeliveryState.PENDING and delivery.last_status_code is None
    assert "not a public address" in delivery.last_error
    (attempt,) = WebhookAttempt.all_orgs.filter(delivery=delivery)
    assert "refused" in attempt.error


def test_beat_dispatcher_sends_what_is_due(tenants, alice_m, clock, monkeypatch, settings):
    from apps.webhooks import tasks

    _endpoint(alice_m, "http://127.0.0.1:9/hooks", events=["video.completed"])
    _complete(_generation(tenants))
    sent = []
    monkeypatch.setattr(tasks.deliver, "apply_async", lambda kwargs, **_: sent.append(kwargs))
    assert services.deliveries_dispatch_due() == 0  # just created: its own task is on the way
    clock.advance(settings.WEBHOOK_DISPATCH_INTERVAL_SECONDS)
    assert services.deliveries_dispatch_due() == 1
    assert sent == [{"delivery_id": _delivery().public_id, "org_id": tenants.org_a.pk}]


def test_an_endpoint_deleted_during_a_send_leaves_nothing_behind(tenants, alice_m, receiver, clock, monkeypatch):
    sink = receiver()
    endpoint, _ = _endpoint(alice_m, sink.url, events=["video.completed"])
    _complete(_generation(tenants))
    real_post = services._post

    def post_then_delete(delivery, now):
        outcome = real_post(delivery, now)
        with org_scope(tenants.org_a):
            services.endpoint_delete(by=alice_m, public_id=endpoint.public_id)
        return outcome

    monkeypatch.setattr(services, "_post", post_then_delete)
    _send(_delivery())
    assert len(sink.requests) == 1
    assert not WebhookDelivery.all_orgs.exists() and not WebhookAttempt.all_orgs.exists()
