"""Money on every failure path, on priced models (issue 18, item 16).

Each test runs a job at a real price (the sandbox repriced to $0.50 a second by ``priced_sandbox``,
or Runway's gen4.5 at $0.12 a second against its emulator) and asserts the amounts held, charged,
released and refunded, and that the organization's budget room comes back after a failure or a
refund: a budget that fits exactly one video takes the next one.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from apps.accounts.models import Membership, User
from apps.billing import ledger
from apps.billing.models import UsageEntry
from apps.billing.selectors import budget_status, usage_report
from apps.core.errors import ApplicationError, PaymentRequired
from apps.core.scoping import org_scope
from apps.generations import engine, operations, services
from apps.generations.models import Generation, State
from apps.providers.base import ProviderError
from apps.providers.sandbox.adapter import SandboxProvider
from tests.emulators.runway import RunwayEmulator
from tests.generations.helpers import ledger_of, run_steps

pytestmark = pytest.mark.django_db

PRICE = Decimal("1.00")  # 2 s of the priced sandbox at $0.50 a second


def _create(tenants, *, prompt="a priced video", seconds=2, model="sandbox-video", user=None):
    with org_scope(tenants.org_a):
        return services.generation_create(
            org=tenants.org_a,
            user=user or tenants.alice,
            request=services.GenerationRequest(model=model, prompt=prompt, seconds=seconds),
        )


def _amounts(gen) -> dict[str, Decimal]:
    return {kind: sum(values, Decimal(0)) for kind, values in ledger_of(gen).items()}


def _room(tenants) -> Decimal:
    with org_scope(tenants.org_a):
        membership = Membership.objects.get(user=tenants.alice)
        org_use, _ = budget_status(org=tenants.org_a, membership=membership)
    return org_use.remaining


def _assert_released(gen, amount: Decimal) -> None:
    """Held ``amount``, released all of it, charged nothing."""
    assert _amounts(gen) == {"hold": amount, "release": -amount}, ledger_of(gen)
    assert len(ledger_of(gen)["hold"]) == 1 and len(ledger_of(gen)["release"]) == 1


def _submitted(gen) -> Generation:
    with org_scope(gen.organization):
        engine.generation_submit(generation_id=gen.pk)
        gen.refresh_from_db()
    assert gen.state in (State.QUEUED, State.IN_PROGRESS) and gen.provider_job_id, gen.state
    return gen


@pytest.fixture
def budget_for_one(tenants, priced_sandbox):
    """Org A may spend exactly one priced video a month."""
    tenants.org_a.monthly_budget = PRICE
    tenants.org_a.save(update_fields=["monthly_budget"])
    return tenants


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("ops@example.com", "ops-password-123")


def _assert_room_comes_back(tenants):
    """The budget is free again: the next video (at the full price) is accepted and held."""
    assert _room(tenants) == PRICE
    again = _create(tenants, prompt="the next one")
    assert _amounts(again) == {"hold": PRICE}
    assert _room(tenants) == 0


def _assert_full(tenants):
    assert _room(tenants) == 0
    with pytest.raises(PaymentRequired):
        _create(tenants, prompt="one too many")


def test_the_priced_sandbox_holds_its_price_and_a_full_budget_refuses(budget_for_one):
    gen = _create(budget_for_one)
    assert gen.estimated_cost == PRICE and _amounts(gen) == {"hold": PRICE}
    _assert_full(budget_for_one)
    done = run_steps(gen)
    assert done.state == State.COMPLETED and done.final_cost == PRICE
    assert _amounts(done) == {"hold": PRICE, "release": -PRICE, "charge": PRICE}
    _assert_full(budget_for_one)  # charged: the month's budget is spent


def test_cancel_before_submit_releases_the_hold(budget_for_one):
    gen = _create(budget_for_one)
    _assert_full(budget_for_one)
    with org_scope(budget_for_one.org_a):
        alice = Membership.objects.get(user=budget_for_one.alice)
        services.generation_cancel(by=alice, generation=gen)
    gen.refresh_from_db()
    assert gen.state == State.CANCELED
    _assert_released(gen, PRICE)
    _assert_room_comes_back(budget_for_one)


@pytest.fixture
def slow_runway(tenants, settings):
    """Runway's emulator with 30-second jobs (still running when the test acts) and alice's key."""
    from apps.api_keys import services as key_services

    with RunwayEmulator(job_seconds=30.0) as emulator:
        for name, value in emulator.settings().items():
            setattr(settings, name, value)
        with org_scope(tenants.org_a):
            alice = Membership.objects.get(user=tenants.alice)
            key_services.provider_key_create(by=alice, provider="runway", **emulator.key_fields())
        emulator.reset()
        yield emulator


RUNWAY_PRICE = Decimal("0.60")  # gen4.5, 5 s at $0.12


def test_cancel_while_running_at_the_provider_releases_the_hold(tenants, slow_runway):
    tenants.org_a.monthly_budget = RUNWAY_PRICE
    tenants.org_a.save(update_fields=["monthly_budget"])
    gen = _create(tenants, model="runway/gen4.5", seconds=5)
    assert gen.estimated_cost == RUNWAY_PRICE
    gen = _submitted(gen)
    with org_scope(tenants.org_a):
        engine.generation_poll(generation_id=gen.pk)
        gen.refresh_from_db()
        assert gen.state in (State.QUEUED, State.IN_PROGRESS)
        assert _room(tenants) == 0
        services.generation_cancel(by=Membership.objects.get(user=tenants.alice), generation=gen)
    gen.refresh_from_db()
    assert gen.state == State.CANCELED
    _assert_released(gen, RUNWAY_PRICE)
    assert _room(tenants) == RUNWAY_PRICE
    assert slow_runway.calls["delete"] == 1, slow_runway.calls  # canceled at Runway


def test_delete_of_an_active_job_cancels_it_and_releases_the_hold(tenants, slow_runway):
    gen = _submitted(_create(tenants, model="runway/gen4.5", seconds=5))
    with org_scope(tenants.org_a):
        services.generation_delete(by=Membership.objects.get(user=tenants.alice), generation=gen)
    gen.refresh_from_db()
    assert gen.state == State.CANCELED and gen.deleted_at is not None
    _assert_released(gen, RUNWAY_PRICE)


def test_delete_before_submit_releases_the_hold(budget_for_one):
    gen = _create(budget_for_one)
    with org_scope(budget_for_one.org_a):
        services.generation_delete(by=Membership.objects.get(user=budget_for_one.alice), generation=gen)
    gen.refresh_from_db()
    assert gen.state == State.CANCELED and gen.deleted_at is not None
    _assert_released(gen, PRICE)
    _assert_room_comes_back(budget_for_one)


def test_operator_mark_failed_releases_the_hold(budget_for_one, operator):
    gen = _submitted(_create(budget_for_one))
    _assert_full(budget_for_one)
    operations.generation_mark_failed(generation=gen, operator=operator, reason="stuck at the provider")
    gen.refresh_from_db()
    assert gen.state == State.FAILED and gen.error_code == "operator_failed"
    _assert_released(gen, PRICE)
    _assert_room_comes_back(budget_for_one)


def test_operator_cancel_releases_the_hold(budget_for_one, operator):
    gen = _create(budget_for_one)
    operations.generation_operator_cancel(generation=gen, operator=operator)
    gen.refresh_from_db()
    assert gen.state == State.CANCELED
    _assert_released(gen, PRICE)
    _assert_room_comes_back(budget_for_one)


def test_operator_retry_after_a_failure_charges_once(budget_for_one, operator):
    gen = _submitted(_create(budget_for_one))
    operations.generation_mark_failed(generation=gen, operator=operator, reason="looked stuck")
    assert _room(budget_for_one) == PRICE
    assert operations.generation_retry(generation=gen, operator=operator) == "poll"
    done = run_steps(gen)
    assert done.state == State.COMPLETED and done.final_cost == PRICE
    # one hold, one release (the retry re-used the hold), one charge: the price once
    assert _amounts(done) == {"hold": PRICE, "release": -PRICE, "charge": PRICE}, ledger_of(done)
    _assert_full(budget_for_one)


def test_refunds_give_the_room_back_and_never_exceed_the_charge(budget_for_one, operator):
    gen = run_steps(_create(budget_for_one))
    assert _amounts(gen)["charge"] == PRICE
    _assert_full(budget_for_one)
    assert operations.generation_refund(generation=gen, operator=operator, amount=Decimal("0.40")) == Decimal("0.40")
    assert _amounts(gen)["refund"] == Decimal("-0.40")
    assert _room(budget_for_one) == Decimal("0.40")
    with pytest.raises(ApplicationError, match="at most"):
        operations.generation_refund(generation=gen, operator=operator, amount=Decimal("0.61"))
    assert operations.generation_refund(generation=gen, operator=operator) == Decimal("0.60")  # the rest
    assert _amounts(gen) == {"hold": PRICE, "release": -PRICE, "charge": PRICE, "refund": -PRICE}
    with pytest.raises(ApplicationError):
        operations.generation_refund(generation=gen, operator=operator, amount=Decimal("0.01"))
    _assert_room_comes_back(budget_for_one)


def test_refund_of_a_job_still_holding_is_refused(budget_for_one, operator):
    gen = _create(budget_for_one)
    with pytest.raises(ApplicationError, match="no charge"):
        operations.generation_refund(generation=gen, operator=operator, amount=Decimal("0.10"))
    assert _amounts(gen) == {"hold": PRICE}


def test_the_deadline_fails_the_job_and_releases_the_hold(budget_for_one):
    gen = _submitted(_create(budget_for_one))
    Generation.all_orgs.filter(pk=gen.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    with org_scope(budget_for_one.org_a):
        engine.generation_poll(generation_id=gen.pk)
    gen.refresh_from_db()
    assert gen.state == State.FAILED, (gen.state, gen.error_code)
    _assert_released(gen, PRICE)
    _assert_room_comes_back(budget_for_one)


def test_a_permanent_download_failure_releases_the_hold(budget_for_one, monkeypatch):
    def gone(self, job_id, **kwargs):
        raise ProviderError("The video has expired at the provider.", code="expired", permanent=True)

    monkeypatch.setattr(SandboxProvider, "download", gone)
    gen = run_steps(_create(budget_for_one))
    assert gen.state == State.FAILED and gen.video_file == ""
    with org_scope(gen.organization):
        assert gen.events.filter(to_state=State.DOWNLOADING).exists()  # it failed in the download step
    _assert_released(gen, PRICE)
    _assert_room_comes_back(budget_for_one)


def test_a_remix_is_held_and_charged_at_the_source_price(budget_for_one):
    budget_for_one.org_a.monthly_budget = 2 * PRICE
    budget_for_one.org_a.save(update_fields=["monthly_budget"])
    source = run_steps(_create(budget_for_one))
    with org_scope(budget_for_one.org_a):
        remix = services.generation_remix(
            org=budget_for_one.org_a, user=budget_for_one.alice, source=source, prompt="the same, at night"
        )
    assert remix.remix_of_id == source.pk and remix.seconds == source.seconds
    assert _amounts(remix) == {"hold": PRICE}
    remix = run_steps(remix)
    assert remix.state == State.COMPLETED
    assert _amounts(remix) == {"hold": PRICE, "release": -PRICE, "charge": PRICE}
    assert _room(budget_for_one) == 0


def test_a_failed_remix_releases_its_hold(budget_for_one):
    budget_for_one.org_a.monthly_budget = 2 * PRICE
    budget_for_one.org_a.save(update_fields=["monthly_budget"])
    source = run_steps(_create(budget_for_one))
    with org_scope(budget_for_one.org_a):
        remix = services.generation_remix(
            org=budget_for_one.org_a, user=budget_for_one.alice, source=source, prompt="this one [fail]s"
        )
    remix = run_steps(remix)
    assert remix.state == State.FAILED
    _assert_released(remix, PRICE)
    assert _room(budget_for_one) == PRICE


# --- the month boundary ------------------------------------------------------------------------


def _start_of_month(now):
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def test_a_job_created_in_one_month_and_settled_in_the_next_counts_in_its_creation_month(budget_for_one):
    tenants = budget_for_one
    now = timezone.now()
    last_month = _start_of_month(now) - timedelta(minutes=1)  # 23:59 on the last day of last month
    with mock.patch("django.utils.timezone.now", return_value=last_month):
        gen = _create(tenants)
    # created last month; its deadline is hours after 23:59, so keep it alive for the real "now"
    Generation.all_orgs.filter(pk=gen.pk).update(deadline_at=now + timedelta(hours=1))
    gen = run_steps(gen)  # settled now, in this month
    assert gen.state == State.COMPLETED and gen.created_at.month == last_month.month
    entries = list(UsageEntry.all_orgs.filter(generation=gen))
    assert {e.period for e in entries} == {ledger.period_of(last_month)}
    charge = next(e for e in entries if e.kind == "charge")
    assert charge.amount == PRICE and charge.created_at.month == now.month  # written this month

    # budgets: last month is spent, this month is untouched
    with org_scope(tenants.org_a):
        alice = Membership.objects.get(user=tenants.alice)
        then, _ = budget_status(org=tenants.org_a, membership=alice, day=last_month.date())
        today, _ = budget_status(org=tenants.org_a, membership=alice)
    assert then.used == PRICE and today.used == 0
    _assert_room_comes_back(tenants)

    # the Usage page and its CSV: the cost is last month's, none of it this month's
    with org_scope(tenants.org_a):
        last = usage_report(org=tenants.org_a, start=last_month.date().replace(day=1), end=last_month.date())
        this = usage_report(org=tenants.org_a, start=now.date().replace(day=1), end=now.date())
    assert last.total_cost == PRICE and last.count == 1, last
    assert this.total_cost == 0, this
    client = tenants.client_for(tenants.alice)
    url = f"/o/{tenants.org_a.slug}/usage/"
    csv_last = client.get(url, {"start": last_month.date().replace(day=1), "end": last_month.date(), "format": "csv"})
    csv_this = client.get(url, {"start": now.date().replace(day=1), "end": now.date(), "format": "csv"})
    assert csv_last.status_code == csv_this.status_code == 200
    rows_last = csv_last.content.decode().strip().splitlines()[1:]
    rows_this = csv_this.content.decode().strip().splitlines()[1:]
    assert len(rows_last) == 1 and rows_last[0].startswith(last_month.date().isoformat())
    assert rows_last[0].endswith(",1.0000"), rows_last
    # this month holds only the hold of the video placed by _assert_room_comes_back: no cost rows
    assert rows_this == [], rows_this
    page = client.get(url, {"start": last_month.date().replace(day=1), "end": last_month.date()})
    assert page.status_code == 200 and "$1.00" in page.content.decode()
