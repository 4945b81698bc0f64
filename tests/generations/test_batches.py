"""Batches (issue 19, item 3): the whole batch estimated and held up front or refused, items that
wait for a slot of the batch's concurrency limit, per-item settling, idempotency, retry, the
safety net, and the zip of the finished videos. On the priced sandbox ($0.50 a second: $1.00 an
item of 2 s), in-process; tests/generations/test_batches_live.py runs a batch on a real worker."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pytest

from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.billing.models import UsageEntry
from apps.core.errors import ApplicationError, Conflict, PaymentRequired
from apps.core.scoping import org_scope
from apps.generations import archive, batches, engine, selectors
from apps.generations.models import Batch, Generation, State
from apps.generations.resolve import GenerationRequest
from tests.generations.helpers import ledger_of, run_steps

pytestmark = pytest.mark.django_db

PRICE = Decimal("1.00")


@pytest.fixture
def sent(monkeypatch):
    """The steps the engine would send, recorded instead of sent: (step, generation pk)."""
    steps: list[tuple[str, int]] = []
    real = engine.schedule

    def record(step, gen, delay):
        steps.append((step, gen.pk))

    monkeypatch.setattr(engine, "schedule", record)
    yield steps
    monkeypatch.setattr(engine, "schedule", real)


def _alice(tenants) -> Membership:
    return Membership.all_orgs.select_related("organization", "user").get(
        user=tenants.alice, organization=tenants.org_a
    )


def _requests(n: int, **fields) -> list[GenerationRequest]:
    return [GenerationRequest(model="sandbox-video", prompt=f"batch item {i}", seconds=2, **fields) for i in range(n)]


def _create(tenants, n=5, *, concurrency=2, key="", requests=None):
    with org_scope(tenants.org_a):
        return batches.batch_create(
            by=_alice(tenants),
            requests=_requests(n) if requests is None else requests,
            concurrency=concurrency,
            idempotency_key=key,
        )


def _items(batch) -> list[Generation]:
    return list(Generation.all_orgs.filter(batch=batch).order_by("batch_index", "id"))


def _summary(tenants, batch):
    with org_scope(tenants.org_a):
        return selectors.batch_summary(batch=batch)


def _amounts(gen) -> dict[str, Decimal]:
    return {kind: sum(values, Decimal(0)) for kind, values in ledger_of(gen).items()}


def _budget(tenants, amount: str) -> None:
    tenants.org_a.monthly_budget = Decimal(amount)
    tenants.org_a.save(update_fields=["monthly_budget"])


def test_a_batch_within_the_budget_holds_the_total_and_sends_only_the_concurrency(
    tenants, priced_sandbox, sent, django_capture_on_commit_callbacks
):
    _budget(tenants, "5.00")
    with django_capture_on_commit_callbacks(execute=True):
        batch = _create(tenants, 5, concurrency=2)
    items = _items(batch)
    assert batch.public_id.startswith("batch_") and batch.item_count == 5 and batch.estimated_cost == 5 * PRICE
    assert [g.batch_index for g in items] == [0, 1, 2, 3, 4]
    # every item is held, each for its own estimate: $5.00 in all, the whole budget
    assert all(_amounts(g) == {"hold": PRICE} for g in items)
    assert sum(UsageEntry.all_orgs.filter(organization=tenants.org_a).values_list("amount", flat=True)) == 5 * PRICE
    # two are sent to the engine; three wait, held, with no alarm (the dispatcher leaves them alone)
    assert sent == [("submit", items[0].pk), ("submit", items[1].pk)]
    assert [g.batch_waiting for g in items] == [False, False, True, True, True]
    assert all(g.next_poll_at is None for g in items[2:]) and all(g.next_poll_at for g in items[:2])
    assert AuditEvent.all_orgs.get(action="batch.created").detail == {
        "items": 5,
        "concurrency": 2,
        "estimated_cost": "5.0000",
    }


def test_items_settle_one_by_one_and_an_ended_item_releases_the_next(
    tenants, priced_sandbox, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch = _create(
            tenants,
            requests=[
                *_requests(1),
                GenerationRequest(model="sandbox-video", prompt="[fail] this one", seconds=2),
                *_requests(2),
            ],
            concurrency=2,
        )
    first, failing, third, fourth = _items(batch)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        run_steps(first)  # completes: charged $1.00, and its slot goes to the third item
    first.refresh_from_db()
    assert first.state == State.COMPLETED
    assert _amounts(first) == {"hold": PRICE, "release": -PRICE, "charge": PRICE}
    assert ("submit", third.pk) in sent and ("submit", fourth.pk) not in sent
    with django_capture_on_commit_callbacks(execute=True):
        run_steps(failing)  # fails at the provider: released, no charge; the fourth goes
    failing.refresh_from_db()
    assert failing.state == State.FAILED and _amounts(failing) == {"hold": PRICE, "release": -PRICE}
    assert ("submit", fourth.pk) in sent
    # the third and fourth are still held (not run here): the batch's totals say so
    summary = _summary(tenants, batch)
    assert summary.held == 2 * PRICE and summary.charged == PRICE and summary.estimated == 4 * PRICE
    assert summary.counts == {"completed": 1, "failed": 1, "queued": 2}


def test_a_batch_over_the_remaining_budget_is_refused_whole_naming_total_and_remaining(tenants, priced_sandbox, sent):
    _budget(tenants, "6.00")
    with org_scope(tenants.org_a):
        batches.batch_create(by=_alice(tenants), requests=_requests(2), concurrency=1)  # $2.00 held
    before = UsageEntry.all_orgs.count(), Generation.all_orgs.count(), Batch.all_orgs.count()
    with pytest.raises(PaymentRequired) as refused:
        _create(tenants, 5)  # $5.00 > the $4.00 left
    assert refused.value.code == "org_budget_exceeded" and refused.value.status_code == 402
    assert "batch of 5 videos (estimated $5.00 in total)" in refused.value.message
    assert "$4.00 remains" in refused.value.message and "$6.00" in refused.value.message
    assert (UsageEntry.all_orgs.count(), Generation.all_orgs.count(), Batch.all_orgs.count()) == before
    # exactly the room left fits
    assert _create(tenants, 4).estimated_cost == 4 * PRICE


def test_the_member_limit_refuses_a_batch_as_a_whole(tenants, priced_sandbox, sent):
    Membership.all_orgs.filter(user=tenants.alice, organization=tenants.org_a).update(monthly_limit=Decimal("2.50"))
    with pytest.raises(PaymentRequired) as refused:
        _create(tenants, 3)
    assert refused.value.code == "member_limit_exceeded"
    assert "$3.00 in total" in refused.value.message and "$2.50 remains" in refused.value.message
    assert not UsageEntry.all_orgs.exists() and not Generation.all_orgs.exists()


def test_a_bad_item_refuses_the_whole_batch_with_its_index(tenants, priced_sandbox, sent):
    requests = _requests(3)
    requests[2] = GenerationRequest(model="sandbox-video", prompt="too long", seconds=99)
    with pytest.raises(batches.BatchItemError) as refused:
        _create(tenants, requests=requests)
    assert refused.value.index == 2 and refused.value.param == "requests[2].seconds"
    assert refused.value.message.startswith("requests[2]: ")
    requests[2] = GenerationRequest(model="sandbox-video", prompt="   ", seconds=2)
    with pytest.raises(batches.BatchItemError) as refused:
        _create(tenants, requests=requests)
    assert refused.value.param == "requests[2].prompt"
    assert not Generation.all_orgs.exists() and not Batch.all_orgs.exists() and not UsageEntry.all_orgs.exists()


def test_batch_shape_limits(tenants, settings, sent):
    settings.BATCH_MAX_ITEMS = 3
    with pytest.raises(ApplicationError, match="limited to 3 requests"):
        _create(tenants, 4)
    with pytest.raises(ApplicationError, match="concurrency must be between 1 and"):
        _create(tenants, 2, concurrency=0)
    with pytest.raises(ApplicationError, match="at least one"):
        _create(tenants, requests=[], concurrency=1)


def test_the_same_key_and_body_is_the_same_batch_another_body_is_a_conflict(tenants, priced_sandbox, sent):
    first = _create(tenants, 3, key="nightly-42")
    again = _create(tenants, 3, key="nightly-42")
    assert again.pk == first.pk
    assert Generation.all_orgs.count() == 3 and UsageEntry.all_orgs.count() == 3  # held once
    with pytest.raises(Conflict) as conflict:
        _create(tenants, 4, key="nightly-42")
    assert conflict.value.code == "idempotency_key_reused"
    with pytest.raises(Conflict):
        _create(tenants, 3, key="nightly-42", concurrency=3)  # the concurrency is part of the body
    assert Generation.all_orgs.count() == 3 and Batch.all_orgs.count() == 1


def test_retry_asks_again_for_failed_items_at_their_position(
    tenants, priced_sandbox, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch = _create(
            tenants, requests=[GenerationRequest(model="sandbox-video", prompt="[fail] x", seconds=2), *_requests(1)]
        )
    failing, ok = _items(batch)
    with django_capture_on_commit_callbacks(execute=True):
        run_steps(failing)
        run_steps(ok)
    _budget(tenants, "1.50")  # $1.00 charged: $0.50 left, less than one retry
    with org_scope(tenants.org_a), pytest.raises(PaymentRequired):
        batches.batch_retry(by=_alice(tenants), batch=batch)
    _budget(tenants, "2.00")
    with org_scope(tenants.org_a), django_capture_on_commit_callbacks(execute=True):
        (retried,) = batches.batch_retry(by=_alice(tenants), batch=batch)
    assert retried.batch_index == 0 and retried.prompt == "[fail] x" and _amounts(retried) == {"hold": PRICE}
    assert ("submit", retried.pk) in sent
    summary = _summary(tenants, batch)
    assert [g.pk for g in summary.items] == [retried.pk, ok.pk] and summary.attempts == 3
    with org_scope(tenants.org_a), pytest.raises(ApplicationError, match="nothing to retry"):
        batches.batch_retry(by=_alice(tenants), batch=batch)


def test_the_safety_net_sends_a_waiting_item_whose_release_was_lost(tenants, priced_sandbox, sent):
    # no on-commit hooks run here: as if every release after the commit had been lost
    batch = _create(tenants, 3, concurrency=1)
    first, second, _third = _items(batch)
    sent.clear()
    assert batches.batch_dispatch_waiting() == 0  # no free slot: the first item runs
    Generation.all_orgs.filter(pk=first.pk).update(state=State.FAILED)
    assert batches.batch_dispatch_waiting() == 1
    assert sent == [("submit", second.pk)]
    assert batches.batch_dispatch_waiting() == 0  # the slot is taken again: never more than the limit
    second.refresh_from_db()
    assert not second.batch_waiting and second.next_poll_at is not None


def test_a_canceled_waiting_item_frees_nothing_and_is_never_sent(
    tenants, priced_sandbox, sent, django_capture_on_commit_callbacks
):
    batch = _create(tenants, 3, concurrency=1)
    first, second, third = _items(batch)
    sent.clear()
    with org_scope(tenants.org_a), django_capture_on_commit_callbacks(execute=True):
        assert engine.fail(second, code="canceled", message="no", state=State.CANCELED)
    assert sent == []  # the running first item still holds the only slot
    assert _amounts(second) == {"hold": PRICE, "release": -PRICE}
    with org_scope(tenants.org_a), django_capture_on_commit_callbacks(execute=True):
        engine.fail(first, code="x", message="failed")
    assert sent == [("submit", third.pk)]


def test_the_zip_holds_exactly_the_finished_videos_and_their_bytes(
    tenants, priced_sandbox, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch = _create(
            tenants,
            requests=[*_requests(2), GenerationRequest(model="sandbox-video", prompt="[fail] z", seconds=2)],
            concurrency=3,
        )
    with django_capture_on_commit_callbacks(execute=True):
        done = [run_steps(g) for g in _items(batch)]
    summary = _summary(tenants, batch)
    zipped = archive.batch_zip(summary)
    data = b"".join(zipped)
    assert len(data) == len(zipped)  # the announced Content-Length is the real one
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        assert names == [f"001-{done[0].public_id}.mp4", f"002-{done[1].public_id}.mp4"]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())
        from apps.generations import storage

        for gen, name in zip(done[:2], names, strict=True):
            with storage.open_for_read(gen.video_file) as fh:
                assert z.read(name) == fh.read()
