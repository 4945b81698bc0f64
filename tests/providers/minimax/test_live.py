"""End to end on MiniMax: the official ``openai`` SDK against a live MediaRouter (``live_server``)
with a real Celery worker and beat (``live_engine``) in front of the MiniMax emulator. Hailuo 2.3
(v1, three-step download) and MiniMax-H3 (v2) complete with the emulator's bytes and the catalog
price charged; a ``base_resp`` error under HTTP 200 and a moderated task end failed with the hold
released and nothing charged."""

from __future__ import annotations

from decimal import Decimal

import httpx2
import pytest
from openai import OpenAI

from apps.api_keys.models import KeyStatus
from apps.providers import catalog
from tests.emulators.base import sample_mp4
from tests.generations.helpers import ledger_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning"),
]

POLL_MS = 200


@pytest.fixture
def sdk(live_server, tenants):
    http_client = httpx2.Client(timeout=30)
    client = OpenAI(base_url=f"{live_server.url}/v1", api_key=tenants.alice_token, http_client=http_client)
    yield client
    client.close()


def test_minimax_end_to_end_through_the_openai_sdk(tenants, live_engine, sdk):
    emulator = live_engine.emulators["minimax"]
    assert live_engine.keys["minimax"].status == KeyStatus.VALID
    cases = (
        ("minimax/hailuo-2.3", "6", "1366x768", Decimal("0.2800")),  # per clip
        ("minimax/minimax-h3", "5", "1366x768", Decimal("0.4000")),  # $0.08/s at 768P
    )
    for name, seconds, size, price in cases:
        assert catalog.get_model(name).cost(seconds=int(seconds), size=size) == price
    created = [
        (sdk.videos.create(model=name, prompt=f"a {name} clip", seconds=seconds, size=size).id, name, price)
        for name, seconds, size, price in cases
    ]
    for public_id, name, price in created:
        video = sdk.videos.poll(public_id, poll_interval_ms=POLL_MS)
        assert video.status == "completed", (name, video.error)
        assert sdk.videos.download_content(video.id).read() == sample_mp4()
        gen = live_engine.wait(video.id)
        assert f"{gen.provider}/{gen.model}" == name and gen.provider_job_id in emulator.jobs
        assert gen.final_cost == price
        assert ledger_of(gen) == {"hold": [price], "release": [-price], "charge": [price]}, name
    calls = emulator.stats()["calls"]
    assert calls["retrieve"] >= 1 and calls["query_v2"] >= 1  # v1's file step and v2's direct URL

    # HTTP 200 with base_resp 1008 on the create, and a task that ends Fail with 1026
    price = Decimal("0.2800")
    emulator.add_code_fault("create", 1008)
    broke = sdk.videos.create(model="minimax/hailuo-2.3", prompt="no balance", seconds="6", size="1366x768")
    flagged = sdk.videos.create(model="minimax/hailuo-2.3", prompt="[fail] flagged", seconds="6", size="1366x768")
    for public_id, code in ((broke.id, "insufficient_balance"), (flagged.id, "content_policy")):
        assert sdk.videos.poll(public_id, poll_interval_ms=POLL_MS).status == "failed"
        gen = live_engine.wait(public_id)
        assert gen.error_code == code, (gen.error_code, gen.error_message)
        assert gen.final_cost in (None, Decimal("0"))
        assert ledger_of(gen) == {"hold": [price], "release": [-price]}, code
