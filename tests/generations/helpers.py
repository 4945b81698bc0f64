"""Drive a generation through its steps in-process, as the worker would, for unit tests."""

from __future__ import annotations

import time

from apps.billing.models import UsageEntry
from apps.core.scoping import org_scope
from apps.generations import engine
from apps.generations.models import Generation, State


def run_steps(gen: Generation, *, timeout: float = 20.0) -> Generation:
    """Call the step the generation's state asks for until it ends (or the timeout)."""
    deadline = time.monotonic() + timeout
    with org_scope(gen.organization):
        while time.monotonic() < deadline:
            gen.refresh_from_db()
            if gen.is_terminal:
                return gen
            step = {
                State.CREATED: engine.generation_submit,
                State.SUBMITTING: engine.generation_reconcile_submit,
                State.QUEUED: engine.generation_poll,
                State.IN_PROGRESS: engine.generation_poll,
                State.DOWNLOADING: engine.generation_download,
            }[gen.state]
            step(generation_id=gen.pk)
            time.sleep(0.05)
    raise AssertionError(f"{gen.public_id} did not finish: {gen.state}")


def ledger_of(gen: Generation) -> dict[str, list]:
    entries: dict[str, list] = {}
    for entry in UsageEntry.all_orgs.filter(generation=gen).order_by("id"):
        entries.setdefault(entry.kind, []).append(entry.amount)
    return entries


def assert_ledger_balanced(gen: Generation) -> None:
    """Every hold is matched by exactly one release; a charge only for a completed video."""
    entries = ledger_of(gen)
    assert len(entries.get("hold", [])) == 1, entries
    assert len(entries.get("release", [])) == 1, entries
    # a hold re-priced when the job moved to another supplier carries adjustments
    assert entries["hold"][0] + sum(entries.get("adjust", [])) == -entries["release"][0], entries
    if gen.state == State.COMPLETED:
        assert entries.get("charge") == [gen.final_cost], entries
    else:
        assert "charge" not in entries, entries
