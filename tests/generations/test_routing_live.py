"""Fallback between suppliers, through a real Celery worker against the fal and Replicate
emulators (both serve ``seedance-2.0``, at different prices). A request that fal certainly did not
take (503 before acceptance) completes on Replicate, charged Replicate's price; a submit whose
outcome is unknown is never sent to a second supplier; a pinned request never moves; the hold is
re-priced within the budgets; one Idempotency-Key stays one generation and one provider job."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations.models import Generation, GenerationEvent, RoutingPolicy, State
from apps.providers import catalog
from tests.generations.helpers import assert_ledger_balanced, ledger_of

pytestmark = [pytest.mark.integration]

MODEL, SECONDS, SIZE = "seedance-2.0", 5, "1280x720"


def _price(supplier: str) -> Decimal:
    return catalog.get_model(f"{supplier}/{MODEL}").cost(seconds=SECONDS, size=SIZE)


@pytest.fixture
def fal_then_replicate(tenants):
    return RoutingPolicy.all_orgs.create(
        organization=tenants.org_a, order="explicit", suppliers=["fal", "replicate"], per_model={}
    )


def _create(tenants, model=MODEL, key=None, prompt="a lighthouse at dusk"):
    client = tenants.api_client_for(tenants.alice_token)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = {"model": model, "prompt": prompt, "duration": SECONDS, "size": SIZE}
    return client.post("/v1/video/generations", body, content_type="application/json", **headers)


def _jobs(live_engine, slug: str) -> int:
    return live_engine.emulators[slug].stats()["jobs_created"]


def test_a_503_before_acceptance_moves_to_the_next_supplier_at_its_price(tenants, live_engine, fal_then_replicate):
    fal_price, rep_price = _price("fal"), _price("replicate")
    assert fal_price != rep_price
    live_engine.emulators["fal"].add_fault("submit", status=503, body={"detail": "No capacity"})
    r = _create(tenants, key="fallback-1")
    assert r.status_code == 201, r.content
    assert r.json()["provider"] == "fal" and r.json()["usage"]["estimated_cost"] == str(fal_price)
    gen = live_engine.wait(r.json()["id"])
    assert gen.state == State.COMPLETED, (gen.error_code, gen.error_message)
    assert gen.provider == "replicate" and gen.final_cost == rep_price
    assert [a["supplier"] for a in gen.attempts] == ["fal"] and gen.attempts[0]["outcome"] == "server_error"
    assert (_jobs(live_engine, "fal"), _jobs(live_engine, "replicate")) == (0, 1)
    entries = ledger_of(gen)
    assert entries["hold"] == [fal_price]
    assert entries["adjust"] == [rep_price - fal_price]
    assert entries["release"] == [-rep_price] and entries["charge"] == [rep_price]
    assert_ledger_balanced(gen)
    with org_scope(tenants.org_a):
        history = " ".join(GenerationEvent.objects.filter(generation=gen).values_list("message", flat=True))
    assert "moving it to replicate/seedance-2.0" in history
    # the API tells where it ran and what was tried
    body = tenants.api_client_for(tenants.alice_token).get(f"/v1/video/generations/{gen.public_id}").json()
    assert body["provider"] == "replicate" and body["requested_model"] == MODEL
    assert [a["supplier"] for a in body["attempts"]] == ["fal"]
    video = tenants.api_client_for(tenants.alice_token).get(f"/v1/videos/{gen.public_id}").json()
    assert video["model"] == "replicate/seedance-2.0"
    # the same Idempotency-Key again: the same generation, nothing new anywhere
    again = _create(tenants, key="fallback-1")
    assert again.status_code in (200, 201) and again.json()["id"] == gen.public_id
    assert Generation.all_orgs.count() == 1 and _jobs(live_engine, "replicate") == 1


def test_a_submit_that_timed_out_is_never_sent_to_a_second_supplier(tenants, live_engine, fal_then_replicate):
    live_engine.emulators["fal"].add_fault("submit", delay=3.0)  # read timeout is 2 s: fal got it
    r = _create(tenants)
    gen = live_engine.wait(r.json()["id"])
    assert gen.state == State.FAILED and gen.error_code == "submit_uncertain"
    assert gen.provider == "fal" and gen.attempts == []
    assert (_jobs(live_engine, "fal"), _jobs(live_engine, "replicate")) == (1, 0)  # exactly one job anywhere
    assert "charge" not in ledger_of(gen)
    assert_ledger_balanced(gen)


def test_a_pinned_request_never_moves(tenants, live_engine, fal_then_replicate):
    live_engine.emulators["fal"].add_fault("submit", status=503, body={"detail": "No capacity"})
    r = _create(tenants, model=f"fal/{MODEL}")
    gen = live_engine.wait(r.json()["id"])
    assert gen.state == State.COMPLETED and gen.provider == "fal"  # retried on fal itself
    assert gen.final_cost == _price("fal") and gen.attempts == []
    assert (_jobs(live_engine, "fal"), _jobs(live_engine, "replicate")) == (1, 0)


def test_a_move_that_does_not_fit_the_budget_fails_with_the_hold_released(tenants, live_engine, fal_then_replicate):
    fal_price, rep_price = _price("fal"), _price("replicate")
    cheaper, dearer = sorted([("fal", fal_price), ("replicate", rep_price)], key=lambda item: item[1])
    RoutingPolicy.all_orgs.filter(pk=fal_then_replicate.pk).update(suppliers=[cheaper[0], dearer[0]])
    tenants.org_a.monthly_budget = cheaper[1]  # the first supplier fits exactly, the second does not
    tenants.org_a.save()
    live_engine.emulators[cheaper[0]].add_fault(
        "submit" if cheaper[0] == "fal" else "create", status=429, headers={"Retry-After": "1"}
    )
    gen = live_engine.wait(_create(tenants).json()["id"])
    assert gen.state == State.FAILED and gen.error_code == "org_budget_exceeded"
    assert "budget" in gen.error_message and dearer[0] in gen.error_message
    entries = ledger_of(gen)
    assert entries["hold"] == [cheaper[1]] and "adjust" not in entries and entries["release"] == [-cheaper[1]]
    assert sum(UsageEntry.all_orgs.filter(organization=tenants.org_a).values_list("amount", flat=True)) == 0
    assert (_jobs(live_engine, "fal"), _jobs(live_engine, "replicate")) == (0, 0)


def test_resubmitting_after_a_suppliers_own_failure_is_opt_in(tenants, live_engine, fal_then_replicate):
    # off (the default): fal's internal failure fails the video
    off = live_engine.wait(_create(tenants, prompt="[fail] runner dies").json()["id"])
    assert off.state == State.FAILED and off.provider == "fal" and off.attempts == []
    assert _jobs(live_engine, "replicate") == 0
    # on: the job goes to the next supplier, at its price (there Replicate's moderation fails it:
    # content failures are never resubmitted, so it ends there, released)
    RoutingPolicy.all_orgs.filter(pk=fal_then_replicate.pk).update(resubmit_on_supplier_failure=True)
    on = live_engine.wait(_create(tenants, prompt="[fail] runner dies").json()["id"])
    assert [a["supplier"] for a in on.attempts] == ["fal"] and on.provider == "replicate"
    assert _jobs(live_engine, "replicate") == 1
    assert on.state == State.FAILED and on.error_code == "content_policy"
    entries = ledger_of(on)
    assert entries["hold"] == [_price("fal")] and entries["adjust"] == [_price("replicate") - _price("fal")]
    assert "charge" not in entries
    assert_ledger_balanced(on)
