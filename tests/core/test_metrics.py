"""/metrics (apps/metrics): who may read it, what a scrape computes, what a real worker's steps
observe (prometheus-client's multiprocess mode), the queues each task lands on, and JSON logs."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.core.scoping import org_scope
from apps.generations import engine, routing
from apps.generations.models import Generation, State
from mediarouter.logging import JsonFormatter, RedactSecretsFilter
from tests.utils import ROOT, subprocess_env

TOKEN = "metrics-token-0123456789abcdef"


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(client, **extra) -> dict[tuple[str, frozenset], float]:
    r = client.get("/metrics", **extra)
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("text/plain") and r["Cache-Control"] == "no-store"
    return _samples(r.content.decode())


def _value(samples, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


# --- access -----------------------------------------------------------------------------------


def test_with_a_token_the_endpoint_refuses_requests_without_it(client, db, settings):
    settings.METRICS_TOKEN = TOKEN
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"mediarouter_" not in missing.content
    for wrong in ("Bearer nope", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN):
        assert client.get("/metrics", HTTP_AUTHORIZATION=wrong).status_code == 401, wrong
    ok = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ok.status_code == 200 and b"mediarouter_celery_broker_up" in ok.content
    assert TOKEN.encode() not in ok.content
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_without_a_token_it_is_404_in_production_and_loopback_only_in_development(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.IS_PRODUCTION = False
    assert client.get("/metrics").status_code == 200  # the test client connects from 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 404
    settings.IS_PRODUCTION = True
    assert client.get("/metrics").status_code == 404


def test_allowed_networks_admit_only_their_addresses_and_combine_with_the_token(client, db, settings):
    settings.IS_PRODUCTION = True
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "2001:db8::/32"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 404
    settings.METRICS_TOKEN = TOKEN  # both set: both apply
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 401
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40", **auth).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7", **auth).status_code == 404


# --- what a scrape computes -------------------------------------------------------------------


def test_scrape_counts_generations_holds_and_circuits(client, tenants, priced_sandbox, settings):
    settings.METRICS_TOKEN = TOKEN
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    api = tenants.api_client_for(tenants.alice_token)
    body = {"model": "sandbox-video", "prompt": "a priced heron", "duration": 4, "size": "1280x720"}
    created = api.post("/v1/video/generations", body, content_type="application/json")
    assert created.status_code == 201, created.content  # no worker: it stays created, its hold placed
    gen = Generation.all_orgs.get(public_id=created.json()["id"])
    assert gen.estimated_cost == Decimal("2.0000")

    samples = _scrape(client, **auth)
    assert _value(samples, "mediarouter_generations", provider="sandbox", state="created") == 1
    assert _value(samples, "mediarouter_generations", provider="sandbox", state="completed") == 0
    assert _value(samples, "mediarouter_ledger_holds_outstanding_usd") == 2.0
    assert _value(samples, "mediarouter_ledger_holds_outstanding") == 1
    assert _value(samples, "mediarouter_circuit_state", provider="fal", state="closed") == 1

    for _ in range(settings.ROUTER_CIRCUIT_FAILURES):
        routing.circuit_record("fal", None, ok=False)
    try:
        with org_scope(tenants.org_a):
            assert engine.fail(gen, code="test", message="ended by the test")  # releases the hold
        samples = _scrape(client, **auth)
    finally:
        routing.circuit_record("fal", None, ok=True)  # closes it again: the cache as we found it
    assert _value(samples, "mediarouter_generations", provider="sandbox", state="failed") == 1
    assert _value(samples, "mediarouter_generations", provider="sandbox", state="created") == 0
    assert _value(samples, "mediarouter_ledger_holds_outstanding_usd") == 0
    assert _value(samples, "mediarouter_ledger_holds_outstanding") == 0
    assert _value(samples, "mediarouter_circuit_state", provider="fal", state="open") == 1
    assert _value(samples, "mediarouter_circuit_state", provider="fal", state="closed") == 0
    assert _value(samples, "mediarouter_circuit_state", provider="runway", state="closed") == 1


def test_each_step_lands_on_its_own_queue_and_the_scrape_shows_the_depths(client, db, settings):
    """Sent through the real broker with no worker: each message waits in its step's queue."""
    from apps.generations import tasks
    from mediarouter.celery import app as celery_app
    from tests.worker import broker_mode, purge_queue, run_queues

    queues = settings.CELERY_QUEUE_NAMES
    assert len(set(run_queues())) == 4
    assert all(q.startswith(settings.CELERY_QUEUE_PREFIX) for q in run_queues())
    assert set(celery_app.amqp.queues) == set(run_queues())  # what a worker without -Q consumes
    expected = {
        tasks.submit: queues["submit"],
        tasks.reconcile: queues["submit"],
        tasks.poll: queues["poll"],
        tasks.download: queues["download"],
    }
    kwargs = {"generation_id": 0, "org_id": 0}
    with broker_mode():
        purge_queue()
        try:
            for task, queue in expected.items():
                before = _scrape(client)
                task.apply_async(kwargs=kwargs, countdown=0)
                after = _scrape(client)
                for name in queues.values():
                    grew = (_value(after, "mediarouter_celery_queue_depth", queue=name) or 0) - (
                        _value(before, "mediarouter_celery_queue_depth", queue=name) or 0
                    )
                    assert grew == (1 if name == queue else 0), (task.name, name, grew)
            tasks.dispatch_due.apply_async()
            samples = _scrape(client)
            assert _value(samples, "mediarouter_celery_queue_depth", queue=queues["default"]) == 1
            assert _value(samples, "mediarouter_celery_queue_depth", queue=queues["submit"]) == 2
            assert _value(samples, "mediarouter_celery_broker_up") == 1
        finally:
            assert purge_queue() == 5


def test_time_limits_follow_the_kind_of_step(settings):
    from apps.generations import tasks

    assert (tasks.poll.soft_time_limit, tasks.poll.time_limit) == (60, 90)
    assert (tasks.submit.soft_time_limit, tasks.reconcile.soft_time_limit) == (90, 90)
    assert tasks.download.soft_time_limit == 1800 > settings.CELERY_TASK_SOFT_TIME_LIMIT


# --- webhooks out: the backlog and the delivery failures --------------------------------------


@pytest.fixture
def webhook_receiver():
    from tests.webhooks.receiver import Receiver

    made = []

    def start(behave=None):
        made.append(Receiver(behave))
        return made[-1]

    yield start
    for r in made:
        r.stop()


def _send(delivery):
    from apps.webhooks import services

    with org_scope(delivery.organization):
        return services.delivery_send(delivery_id=delivery.public_id)


def _completed_with_an_endpoint(tenants, url: str):
    """A team endpoint for video.completed and one completed generation: one delivery, pending."""
    from apps.accounts.models import Membership
    from apps.webhooks.models import WebhookDelivery
    from tests.webhooks import helpers

    alice_m = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    endpoint, _secret = helpers.endpoint(alice_m, url, events=["video.completed"])
    helpers.complete(helpers.generation(tenants))
    return endpoint, WebhookDelivery.all_orgs.select_related("event", "organization").get()


def _attempts(samples, outcome: str, answer: str) -> float:
    return _value(samples, "mediarouter_webhook_attempts_total", outcome=outcome, answer=answer) or 0


def test_the_webhook_backlog_follows_the_deliveries(client, tenants, webhook_receiver, monkeypatch):
    from tests.webhooks.helpers import install_clock

    clock = install_clock(monkeypatch)
    sink = webhook_receiver(lambda n: 500 if n == 1 else 200)
    assert _value(_scrape(client), "mediarouter_webhook_deliveries", state="pending") == 0
    _endpoint, delivery = _completed_with_an_endpoint(tenants, sink.url)

    waiting = _scrape(client)  # written with the state change, due at once: pending and overdue
    assert _value(waiting, "mediarouter_webhook_deliveries", state="pending") == 1
    assert _value(waiting, "mediarouter_webhook_deliveries", state="sending") == 0
    assert _value(waiting, "mediarouter_webhook_deliveries_overdue") == 1
    assert _value(waiting, "mediarouter_webhook_overdue_seconds") >= 0
    assert _value(waiting, "mediarouter_webhook_endpoints", status="active") == 1

    failed_once = _send(delivery)  # the receiver answers 500: pending again, due in 5 s
    assert failed_once.state == "pending"
    retrying = _scrape(client)
    assert _value(retrying, "mediarouter_webhook_deliveries", state="pending") == 1
    assert _value(retrying, "mediarouter_webhook_deliveries_overdue") == 0  # not due yet
    assert _value(retrying, "mediarouter_webhook_overdue_seconds") == 0
    assert _attempts(retrying, "retrying", "5xx") == _attempts(waiting, "retrying", "5xx") + 1
    assert _value(retrying, "mediarouter_webhook_endpoints", status="failing") == 1
    assert _value(retrying, "mediarouter_webhook_endpoints", status="active") == 0

    clock.advance(10)
    assert _send(failed_once).state == "succeeded"
    delivered = _scrape(client)
    assert _value(delivered, "mediarouter_webhook_deliveries", state="pending") == 0
    assert _attempts(delivered, "delivered", "2xx") == _attempts(retrying, "delivered", "2xx") + 1
    assert _value(delivered, "mediarouter_webhook_attempt_seconds_count") == (
        _value(waiting, "mediarouter_webhook_attempt_seconds_count") + 2
    )
    assert _value(delivered, "mediarouter_webhook_endpoints", status="active") == 1  # a success resets it


def test_a_stalled_sender_shows_as_overdue_seconds(client, tenants, webhook_receiver):
    from datetime import timedelta

    from django.utils import timezone

    from apps.webhooks.models import WebhookDelivery

    _endpoint, delivery = _completed_with_an_endpoint(tenants, webhook_receiver().url)
    WebhookDelivery.all_orgs.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=10))
    samples = _scrape(client)
    assert _value(samples, "mediarouter_webhook_deliveries_overdue") == 1
    assert 600 <= _value(samples, "mediarouter_webhook_overdue_seconds") < 3600
    # a send whose lease ran out is overdue too (beat sends it again)
    WebhookDelivery.all_orgs.filter(pk=delivery.pk).update(state="sending")
    samples = _scrape(client)
    assert _value(samples, "mediarouter_webhook_deliveries", state="sending") == 1
    assert _value(samples, "mediarouter_webhook_deliveries_overdue") == 1


def test_deliveries_given_up_count_as_failures(client, tenants, webhook_receiver, monkeypatch):
    from apps.webhooks.models import WebhookEndpoint
    from tests.webhooks.helpers import install_clock

    clock = install_clock(monkeypatch)
    sink = webhook_receiver(lambda n: ("close",) if n == 1 else 503)
    endpoint, delivery = _completed_with_an_endpoint(tenants, sink.url)
    before = _scrape(client)
    while delivery.state == "pending":  # retried until the 24 hours are over
        clock.to(delivery.next_attempt_at)
        delivery = _send(delivery)
    assert delivery.state == "failed"
    after = _scrape(client)
    assert _value(after, "mediarouter_webhook_deliveries", state="failed") == 1
    assert _value(after, "mediarouter_webhook_deliveries", state="pending") == 0
    assert _attempts(after, "retrying", "none") == _attempts(before, "retrying", "none") + 1  # dropped connection
    assert _attempts(after, "retrying", "5xx") == _attempts(before, "retrying", "5xx") + delivery.attempts - 2
    assert _attempts(after, "gave_up", "5xx") == _attempts(before, "gave_up", "5xx") + 1

    WebhookEndpoint.all_orgs.filter(pk=endpoint.pk).update(disabled_at=clock.now)
    samples = _scrape(client)
    assert _value(samples, "mediarouter_webhook_endpoints", status="disabled") == 1
    assert _value(samples, "mediarouter_webhook_endpoints", status="failing") == 0


def test_the_grafana_dashboard_charts_every_series_of_the_scrape(client, db):
    """docs/grafana-dashboard.json: a series added to /metrics gets a panel (or this fails)."""
    r = client.get("/metrics")
    families = {family.name for family in text_string_to_metric_families(r.content.decode())}
    ours = {name for name in families if name.startswith("mediarouter_") and not name.endswith("_created")}
    assert {"mediarouter_webhook_deliveries", "mediarouter_webhook_attempts", "mediarouter_poll_seconds"} <= ours
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", []))
    charted = set(re.findall(r"mediarouter_[a-z_]+", exprs))
    uncharted = {name for name in ours if not charted & {name, f"{name}_total", f"{name}_bucket"}}
    assert not uncharted, uncharted


# --- what a real worker observes ----------------------------------------------------------------


@pytest.fixture
def metrics_dir(tmp_path, monkeypatch):
    """prometheus-client's multiprocess directory for the worker this test starts (inherited through
    the environment) and for the scrape; pytest removes tmp_path."""
    path = tmp_path / "prometheus"
    path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    return path


@pytest.fixture
def celery_worker(metrics_dir, celery_worker):
    """The suite's real worker, started after metrics_dir has set its environment."""
    return celery_worker


@pytest.mark.integration
def test_a_generation_through_a_real_worker_reaches_the_scrape(
    client, tenants, settings, metrics_dir, celery_worker, webhook_receiver
):
    from apps.accounts.models import Membership
    from tests.webhooks import helpers

    settings.METRICS_TOKEN = TOKEN
    sink = webhook_receiver()  # the worker sends the video.completed webhook here
    alice_m = Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a)
    helpers.endpoint(alice_m, sink.url, events=["video.completed"])
    api = tenants.api_client_for(tenants.alice_token)
    body = {"model": "sandbox-video", "prompt": "a metered otter", "duration": 2, "size": "1280x720"}
    created = api.post("/v1/video/generations", body, content_type="application/json")
    assert created.status_code == 201, created.content
    deadline = time.monotonic() + 60
    gen = Generation.all_orgs.get(public_id=created.json()["id"])
    while gen.state != State.COMPLETED and time.monotonic() < deadline:
        assert not gen.is_terminal, (gen.state, gen.error_code, celery_worker.log()[-4000:])
        time.sleep(0.2)
        gen.refresh_from_db()
    assert gen.state == State.COMPLETED, celery_worker.log()[-4000:]
    assert list(metrics_dir.glob("*.db")), "the worker wrote no metrics files"
    sink.wait(1)
    deadline = time.monotonic() + 30  # the worker records the attempt right after the answer
    while not _attempts(_scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"), "delivered", "2xx"):
        assert time.monotonic() < deadline, celery_worker.log()[-4000:]
        time.sleep(0.2)

    samples = _scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert _value(samples, "mediarouter_generations", provider="sandbox", state="completed") == 1
    assert _value(samples, "mediarouter_download_seconds_count", provider="sandbox") == 1
    assert _value(samples, "mediarouter_download_seconds_sum", provider="sandbox") > 0
    assert _value(samples, "mediarouter_download_bytes_total", provider="sandbox") == gen.bytes > 0
    assert _value(samples, "mediarouter_poll_seconds_count", provider="sandbox") == gen.poll_count >= 1
    assert _value(samples, "mediarouter_detection_lag_seconds_count", provider="sandbox") == 1
    assert _value(samples, "mediarouter_detection_lag_seconds_sum", provider="sandbox") > 0
    assert _value(samples, "mediarouter_ledger_holds_outstanding") == 0
    assert _attempts(samples, "delivered", "2xx") == 1  # counted in the worker, added up by the scrape
    assert _value(samples, "mediarouter_webhook_attempt_seconds_count") == 1
    assert _value(samples, "mediarouter_webhook_deliveries", state="pending") == 0
    assert _attempts(samples, "delivered", "2xx") == 1  # counted in the worker, added up by the scrape
    assert _value(samples, "mediarouter_webhook_attempt_seconds_count") == 1
    assert _value(samples, "mediarouter_webhook_deliveries", state="pending") == 0


# --- JSON logs ---------------------------------------------------------------------------------


def test_json_log_lines_are_redacted_even_in_tracebacks_and_extras():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    handler.setFormatter(
        JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"})
    )
    logger = logging.getLogger("tests.metrics.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("bad link /invite/SeCrEtInViTe123/")
        except ValueError:
            logger.error(
                "Not Found: %s",
                "/invite/SeCrEtInViTe123/",
                exc_info=True,
                extra={"request": object(), "status_code": 404, "next": "/password/reset/MQ/SeCrEtReSeT-abc/"},
            )
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip()
    assert "SeCrEt" not in line
    record = json.loads(line)
    assert record["level"] == "ERROR" and record["message"] == "Not Found: /invite/[redacted]/"
    assert record["status_code"] == 404 and "request" not in record
    assert "ValueError: bad link /invite/[redacted]/" in record["exc_info"]


def test_log_format_json_switches_every_log_line_to_json():
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('apps.test').warning('see /invite/SeCrEtInViTe123/ now')"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=subprocess_env(LOG_FORMAT="json"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert {"logger": "apps.test", "level": "WARNING", "message": "see /invite/[redacted]/ now"}.items() <= lines[
        -1
    ].items()
    assert "SeCrEt" not in run.stderr
