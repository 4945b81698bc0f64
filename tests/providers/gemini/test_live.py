"""End to end on the Gemini API: the official ``openai`` SDK against a live MediaRouter
(``live_server``) with a real Celery worker and beat (``live_engine``) in front of the Gemini
emulator. Veo 3.1 (``predictLongRunning``, keyed file download) and Gemini Omni (Interactions API)
complete with the emulator's bytes and the catalog price charged; a safety-filtered Veo result and
a model the key no longer lists end failed with the hold released and nothing charged."""

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
VEO_PRICE = Decimal("3.2000")  # 8 s at 720p, $0.40/s (audio always on)


@pytest.fixture
def sdk(live_server, tenants):
    http_client = httpx2.Client(timeout=30)
    client = OpenAI(base_url=f"{live_server.url}/v1", api_key=tenants.alice_token, http_client=http_client)
    yield client
    client.close()


def test_gemini_end_to_end_through_the_openai_sdk(tenants, live_engine, sdk):
    emulator = live_engine.emulators["gemini"]
    assert live_engine.keys["gemini"].status == KeyStatus.VALID
    cases = (
        ("gemini/veo-3.1", "8", "1280x720", VEO_PRICE),
        ("gemini/gemini-omni-1.1-flash", "10", "1280x720", Decimal("1.0000")),  # $0.10/s, held as 10 s
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
        assert f"{gen.provider}/{gen.model}" == name and gen.provider_job_id.split("/")[-1] in emulator.jobs
        assert gen.final_cost == price
        assert ledger_of(gen) == {"hold": [price], "release": [-price], "charge": [price]}, name
    calls = emulator.stats()["calls"]
    assert calls["create"] == 1 and calls["interaction_create"] == 1 and calls["download"] == 2
    assert calls["models"] >= 1  # the worker read the key's model listing before the Veo create

    # a safety-filtered result (done, no samples, raiMediaFilteredReasons), then a model Google
    # retired under this key (the worker's cached listing is stale: the create answers 404)
    filtered = sdk.videos.create(model="gemini/veo-3.1", prompt="[filtered] unsafe", seconds="8", size="1280x720")
    assert sdk.videos.poll(filtered.id, poll_interval_ms=POLL_MS).status == "failed"
    emulator.listed.clear()
    retired = sdk.videos.create(model="gemini/veo-3.1", prompt="retired model", seconds="8", size="1280x720")
    assert sdk.videos.poll(retired.id, poll_interval_ms=POLL_MS).status == "failed"
    for public_id, code in ((filtered.id, "content_policy"), (retired.id, "model_not_available")):
        gen = live_engine.wait(public_id)
        assert gen.error_code == code, (gen.error_code, gen.error_message)
        assert gen.final_cost in (None, Decimal("0"))
        assert ledger_of(gen) == {"hold": [VEO_PRICE], "release": [-VEO_PRICE]}, code
    assert "Google retires video models without notice" in live_engine.wait(retired.id).error_message
