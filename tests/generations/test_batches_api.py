"""The native batches API: create (held as a whole or refused, in the error envelope), idempotency,
retrieve with items and totals, list, retry, the streamed zip, the ``?batch=`` filter of the
generations list, tenancy and a query count that does not grow with the items."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.billing.models import UsageEntry
from apps.generations import engine
from apps.generations.models import Batch, Generation
from tests.generations.helpers import ledger_of, run_steps

pytestmark = pytest.mark.django_db

URL = "/v1/video/batches"


@pytest.fixture(autouse=True)
def no_sends(monkeypatch):
    """The engine's steps are recorded, not sent (tests drive items with run_steps)."""
    monkeypatch.setattr(engine, "schedule", lambda step, gen, delay: None)


def _body(n: int, **extra) -> dict:
    return {
        "requests": [{"model": "sandbox-video", "prompt": f"api item {i}", "duration": 2} for i in range(n)],
        **extra,
    }


def _post(tenants, body, *, key=None, token=None):
    client = tenants.api_client_for(token or tenants.alice_token)
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(URL, body, content_type="application/json", headers=headers)


def test_create_holds_the_total_and_reports_items_and_totals(tenants, priced_sandbox):
    r = _post(tenants, _body(3, concurrency=2))
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["object"] == "video.batch" and data["id"].startswith("batch_") and data["concurrency"] == 2
    assert data["status"] == "in_progress"
    assert data["totals"]["estimated"] == "3.0000" and data["totals"]["held"] == "3.0000"
    assert data["totals"]["charged"] == "0"
    assert data["totals"]["by_status"] == {
        "waiting": 1,
        "queued": 2,
        "in_progress": 0,
        "completed": 0,
        "failed": 0,
        "canceled": 0,
    }
    assert [i["index"] for i in data["items"]] == [0, 1, 2]
    assert [i["status"] for i in data["items"]] == ["queued", "queued", "waiting"]
    assert data["items"][0]["prompt"] == "api item 0" and data["items"][0]["estimated_cost"] == "1.0000"
    assert data["content_url"].endswith(f"/v1/video/batches/{data['id']}/content")
    gens = Generation.all_orgs.filter(batch__public_id=data["id"])
    assert sorted(ledger_of(g)["hold"][0] for g in gens) == [Decimal("1.00")] * 3


def test_idempotency_key_same_body_same_batch_other_body_409(tenants, priced_sandbox):
    first = _post(tenants, _body(2), key="k-1")
    again = _post(tenants, _body(2), key="k-1")
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert Batch.all_orgs.count() == 1 and UsageEntry.all_orgs.count() == 2
    other = _post(tenants, _body(3), key="k-1")
    assert other.status_code == 409 and other["x-should-retry"] == "false"
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["type"] == "conflict_error"
    assert Generation.all_orgs.count() == 2


def test_a_batch_over_budget_is_a_402_naming_total_and_remaining(tenants, priced_sandbox):
    tenants.org_a.monthly_budget = Decimal("2.50")
    tenants.org_a.save(update_fields=["monthly_budget"])
    r = _post(tenants, _body(3))
    assert r.status_code == 402
    error = r.json()["error"]
    assert error["type"] == "insufficient_quota" and error["code"] == "org_budget_exceeded"
    assert "$3.00 in total" in error["message"] and "$2.50 remains" in error["message"]
    assert not Generation.all_orgs.exists() and not UsageEntry.all_orgs.exists()


@pytest.mark.parametrize(
    "item,param,code",
    [
        ({"model": "sandbox-video", "prompt": 5}, "requests[1].prompt", "invalid"),
        ({"model": "sandbox-video", "prompt": "x", "duration": 99}, "requests[1].seconds", "invalid_value"),
        ({"model": "no-such-model", "prompt": "x"}, "requests[1].model", "model_not_found"),
        ({"model": "sandbox-video", "prompt": "x", "image": "ftp://x"}, "requests[1].image", "invalid_request"),
        ({"model": "sandbox-video", "prompt": "x", "webhook_url": "https://e.test"}, "requests[1].webhook_url", None),
    ],
)  # fmt: skip
def test_a_bad_item_refuses_the_batch_naming_it(tenants, priced_sandbox, item, param, code):
    body = _body(1)
    body["requests"].append(item)
    r = _post(tenants, body)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["param"] == param and error["message"].startswith("requests[1]")
    if code:
        assert error["code"] == code
    assert not Generation.all_orgs.exists() and not Batch.all_orgs.exists()


def test_shape_errors(tenants, settings):
    assert _post(tenants, {"requests": []}).status_code == 400
    assert _post(tenants, {"requests": "x"}).json()["error"]["param"] == "requests"
    settings.BATCH_MAX_CONCURRENCY = 3
    r = _post(tenants, _body(1, concurrency=4))
    assert r.status_code == 400 and r.json()["error"]["param"] == "concurrency"


def test_retrieve_list_filter_retry_and_zip(tenants, priced_sandbox):
    body = _body(2)
    body["requests"].append({"model": "sandbox-video", "prompt": "[fail] api", "duration": 2})
    batch_id = _post(tenants, body).json()["id"]
    client = tenants.api_client_for(tenants.alice_token)
    gens = list(Generation.all_orgs.filter(batch__public_id=batch_id).order_by("batch_index"))
    for gen in gens:
        run_steps(gen)
    data = client.get(f"{URL}/{batch_id}").json()
    assert data["status"] == "partial" and data["totals"]["charged"] == "2.0000" and data["totals"]["held"] == "0"
    assert [i["status"] for i in data["items"]] == ["completed", "completed", "failed"]
    assert data["items"][0]["video"]["url"].endswith(f"/v1/video/generations/{gens[0].public_id}/content")
    assert data["items"][2]["error"]["code"] and data["items"][2]["cost"] is None

    listed = client.get(URL).json()
    assert [b["id"] for b in listed["data"]] == [batch_id] and "items" not in listed["data"][0]
    filtered = client.get("/v1/video/generations", {"batch": batch_id}).json()["data"]
    assert sorted(g["id"] for g in filtered) == sorted(g.public_id for g in gens)
    assert client.get("/v1/video/generations", {"batch": "batch_000000000000"}).json()["data"] == []

    r = client.get(f"{URL}/{batch_id}/content")
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    data = b"".join(r.streaming_content)
    assert int(r["Content-Length"]) == len(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert len(z.namelist()) == 2 and z.namelist()[0].startswith("001-")

    retried = client.post(f"{URL}/{batch_id}/retry")
    assert retried.status_code == 200, retried.content
    assert retried.json()["totals"]["attempts"] == 4 and retried.json()["items"][2]["status"] == "queued"
    assert client.post(f"{URL}/{batch_id}/retry").status_code == 400  # nothing failed now


def test_another_organization_gets_404_everywhere(tenants, priced_sandbox):
    batch_id = _post(tenants, _body(1)).json()["id"]
    charlie = tenants.api_client_for(tenants.charlie_token)
    for method, path in [("get", ""), ("get", "/content"), ("post", "/retry")]:
        r = getattr(charlie, method)(f"{URL}/{batch_id}{path}")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert charlie.get(URL).json()["data"] == []
    assert charlie.get("/v1/video/generations", {"batch": batch_id}).json()["data"] == []


def test_a_batch_without_finished_videos_has_no_zip(tenants, priced_sandbox):
    batch_id = _post(tenants, _body(1)).json()["id"]
    r = tenants.api_client_for(tenants.alice_token).get(f"{URL}/{batch_id}/content")
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_finished_videos"


def test_retrieve_and_list_queries_do_not_grow_with_items(tenants, priced_sandbox, django_assert_num_queries):
    client = tenants.api_client_for(tenants.alice_token)
    small = _post(tenants, _body(2)).json()["id"]
    big = _post(tenants, _body(30, concurrency=5)).json()["id"]
    client.get(f"{URL}/{small}")  # warm up
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"{URL}/{small}").status_code == 200
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get(f"{URL}/{big}").status_code == 200
    with CaptureQueriesContext(connection) as listing:
        assert client.get(URL).status_code == 200
    listed = len(listing.captured_queries)  # before the next request resets the query log
    _post(tenants, _body(5))
    with django_assert_num_queries(listed):
        assert client.get(URL).status_code == 200
