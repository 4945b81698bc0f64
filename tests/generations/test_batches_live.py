"""A batch on a real worker (with beat) against the Runway emulator (gen4.5, priced at $0.12 a
second): created through the native API, never more than ``concurrency`` items with the engine
at once, every item charged its own price, and the zip holding exactly the videos' bytes."""

from __future__ import annotations

import io
import time
import zipfile
from decimal import Decimal

import pytest

from apps.generations.models import TERMINAL_STATES, Generation, GenerationEvent
from tests.emulators.base import sample_mp4
from tests.generations.helpers import ledger_of

pytestmark = [pytest.mark.integration]

PRICE = Decimal("0.6000")  # gen4.5, 5 s at $0.12


def _most_at_once(items: list[Generation]) -> int:
    """The most items that were with the engine at the same time, from their histories: an item is
    with the engine from its creation (sent at once) or its release note, until its terminal state."""
    marks = []
    for gen in items:
        events = list(GenerationEvent.all_orgs.filter(generation=gen).order_by("at", "id"))
        released = next((e.at for e in events if e.message.startswith("Sent: a slot of batch")), None)
        start = released or events[0].at
        end = next(e.at for e in events if e.to_state in TERMINAL_STATES and e.from_state != e.to_state)
        marks += [(start, 1), (end, -1)]
    running = most = 0
    for _at, step in sorted(marks, key=lambda m: (m[0], m[1])):  # an end before a start at the same instant
        running += step
        most = max(most, running)
    return most


def test_a_batch_runs_at_most_its_concurrency_and_every_item_settles(tenants, live_engine):
    client = tenants.api_client_for(tenants.alice_token)
    body = {
        "requests": [{"model": "runway/gen4.5", "prompt": f"a lighthouse, take {i}", "duration": 5} for i in range(5)],
        "concurrency": 2,
    }
    r = client.post("/v1/video/batches", body, content_type="application/json")
    assert r.status_code == 201, r.content
    batch_id = r.json()["id"]
    assert r.json()["totals"]["held"] == str(PRICE * 5)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        items = list(Generation.all_orgs.filter(batch__public_id=batch_id).order_by("batch_index"))
        if all(g.is_terminal for g in items):
            break
        assert sum(1 for g in items if g.is_active and not g.batch_waiting) <= 2
        time.sleep(0.2)
    else:
        raise AssertionError(f"batch stuck: {[g.state for g in items]}\n{live_engine.worker.log()[-6000:]}")

    assert [g.state for g in items] == ["completed"] * 5
    assert live_engine.emulators["runway"].calls["create"] == 5
    assert _most_at_once(items) == 2
    for gen in items:
        assert ledger_of(gen) == {"hold": [PRICE], "release": [-PRICE], "charge": [PRICE]}

    data = client.get(f"/v1/video/batches/{batch_id}").json()
    assert data["status"] == "completed" and data["totals"]["charged"] == str(PRICE * 5)
    assert data["totals"]["held"] == "0"
    zipped = client.get(f"/v1/video/batches/{batch_id}/content")
    with zipfile.ZipFile(io.BytesIO(b"".join(zipped.streaming_content))) as z:
        assert z.namelist() == [f"{i + 1:03d}-{g.public_id}.mp4" for i, g in enumerate(items)]
        assert all(z.read(name) == sample_mp4() for name in z.namelist())
