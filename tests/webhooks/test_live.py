"""Through a real Celery worker (with beat): a sandbox video's ``video.completed`` reaches a real
receiver, verified by ``standardwebhooks`` and the openai SDK; the outbox loses nothing when the
worker is killed in the middle of a send, or when the send's message is lost with the worker."""

from __future__ import annotations

import json
import threading
import time

import pytest
from openai import OpenAI
from standardwebhooks import Webhook

from apps.webhooks.models import DeliveryState, WebhookDelivery

pytestmark = [pytest.mark.integration]

TIMEOUT = "3"  # WEBHOOK_TIMEOUT_SECONDS in the worker: a lease of 2 * 3 + 5 s


@pytest.fixture
def worker(transactional_db, tmp_path):
    from tests.worker import WorkerProcess, broker_mode, purge_queue, wait_until_ready

    process = WorkerProcess(tmp_path / "worker.log", beat=True, env={"WEBHOOK_TIMEOUT_SECONDS": TIMEOUT})
    with broker_mode():
        purge_queue()
        process.start()
        try:
            wait_until_ready(process)
            yield process
        finally:
            process.discard()  # SIGKILL: a warm shutdown takes seconds for nothing


def _endpoint(tenants, url: str) -> dict:
    client = tenants.api_client_for(tenants.alice_token)
    r = client.post("/v1/webhooks", {"url": url, "events": ["video.completed"]}, content_type="application/json")
    assert r.status_code == 201, r.content
    return r.json()


def _generate(tenants) -> str:
    client = tenants.api_client_for(tenants.alice_token)
    r = client.post(
        "/v1/video/generations",
        {"model": "sandbox-video", "prompt": "a fox in the snow", "duration": 2},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    return r.json()["id"]


def _wait_delivered(event_id: str, timeout: float = 30.0) -> WebhookDelivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = WebhookDelivery.all_orgs.filter(event__public_id=event_id).first()
        if delivery is not None and delivery.state == DeliveryState.SUCCEEDED:
            return delivery
        time.sleep(0.2)
    raise AssertionError(f"delivery of {event_id} not recorded as delivered")


def _wait(sink, count: int, worker) -> list:
    try:
        return sink.wait(count, timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; worker log:\n{worker.log()[-6000:]}") from None


def test_video_completed_reaches_a_real_receiver(tenants, worker, receiver):
    sink = receiver()
    endpoint = _endpoint(tenants, sink.url)
    video_id = _generate(tenants)
    ((_, headers, body),) = _wait(sink, 1, worker)
    event = Webhook(endpoint["secret"]).verify(body, headers)
    assert event["type"] == "video.completed" and event["data"] == {"id": video_id}
    unwrapped = OpenAI(api_key="sk-unused", base_url="http://127.0.0.1:9/v1").webhooks.unwrap(
        body, headers, secret=endpoint["secret"]
    )
    assert unwrapped.type == "video.completed" and unwrapped.data.id == video_id
    delivery = _wait_delivered(event["id"])
    assert delivery.attempts == 1 and delivery.last_status_code == 200
    r = tenants.api_client_for(tenants.alice_token).get(f"/v1/webhooks/{endpoint['id']}/deliveries")
    (row,) = r.json()["data"]
    assert row["event_id"] == event["id"] and row["state"] == "succeeded"
    assert row["attempt_log"][0]["status_code"] == 200 and row["attempt_log"][0]["latency_ms"] >= 0
    log = worker.log()
    assert "webhooks.deliver" in log  # the worker sent it
    assert endpoint["secret"] not in log and endpoint["secret"].removeprefix("whsec_") not in log


def test_a_worker_killed_in_the_middle_of_a_send_loses_nothing(tenants, worker, receiver):
    release = threading.Event()
    sink = receiver(lambda n: ("hang", release) if n == 1 else 200)
    endpoint = _endpoint(tenants, sink.url)
    video_id = _generate(tenants)
    _wait(sink, 1, worker)  # the worker is sending: kill it before it hears an answer
    worker.kill()
    release.set()
    delivery = WebhookDelivery.all_orgs.get(event__video_id=video_id)
    assert delivery.state == DeliveryState.SENDING and delivery.attempts == 0
    worker.start()  # a new worker; beat's dispatcher re-sends once the dead send's lease ends
    requests = _wait(sink, 2, worker)
    assert requests[0][1]["webhook-id"] == requests[1][1]["webhook-id"] == delivery.event.public_id
    event = Webhook(endpoint["secret"]).verify(requests[1][2], requests[1][1])
    assert event["data"]["id"] == video_id
    delivery = _wait_delivered(event["id"])
    assert delivery.attempts == 1  # the killed attempt left no record, the new one did


def test_the_outbox_survives_a_send_lost_with_its_worker(tenants, worker, receiver):
    """The state change commits with its outbox row; the worker dies before the send (its
    message is gone); a new worker's beat dispatcher delivers it."""
    from tests.worker import purge_queue

    sink = receiver()
    endpoint = _endpoint(tenants, sink.url)
    worker.kill()
    video_id = _generate(tenants)
    from apps.core.scoping import org_scope
    from apps.generations import engine
    from apps.generations.models import Generation, State

    gen = Generation.all_orgs.get(public_id=video_id)
    with org_scope(tenants.org_a):  # the state change, committed (with its event) by this process
        assert engine.transition(gen, from_states=[State.CREATED], to=State.COMPLETED, progress=100)
    assert WebhookDelivery.all_orgs.get(event__video_id=video_id).state == DeliveryState.PENDING
    assert purge_queue() >= 1  # the messages died with the worker
    worker.start()
    ((_, headers, body),) = _wait(sink, 1, worker)
    event = Webhook(endpoint["secret"]).verify(body, headers)
    assert event["type"] == "video.completed" and json.loads(body)["data"]["id"] == video_id
    _wait_delivered(event["id"])
