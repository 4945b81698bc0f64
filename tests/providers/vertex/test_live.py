"""End to end on Vertex: the official ``openai`` SDK against a live MediaRouter (``live_server``)
with a real Celery worker and beat (``live_engine``) in front of the Vertex emulator. Veo 3.1
completes with the emulator's bytes (inline base64, decoded while streaming) and the catalog price
charged; a result Google's safety filter removed ends failed with the hold released and nothing
charged."""

from __future__ import annotations

from decimal import Decimal

import httpx2
import pytest
from openai import OpenAI

from apps.api_keys.models import KeyStatus
from apps.generations.models import State
from apps.providers import catalog
from tests.emulators.base import sample_mp4
from tests.generations.helpers import assert_ledger_balanced, ledger_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning"),
]

POLL_MS = 200
MODEL = "vertex/veo-3.1"


@pytest.fixture
def sdk(live_server, tenants):
    http_client = httpx2.Client(timeout=30)
    client = OpenAI(base_url=f"{live_server.url}/v1", api_key=tenants.alice_token, http_client=http_client)
    yield client
    client.close()


def test_veo_on_vertex_end_to_end_through_the_openai_sdk(tenants, live_engine, sdk):
    emulator = live_engine.emulators["vertex"]
    assert live_engine.keys["vertex"].status == KeyStatus.VALID
    assert live_engine.keys["vertex"].details == {"location": "us-central1"}
    price = catalog.get_model(MODEL).cost(seconds=8, size="1280x720")
    assert price == Decimal("3.2000")  # $0.40/s with audio (the default), 8 s

    video = sdk.videos.create(model=MODEL, prompt="a lighthouse at dusk", seconds="8", size="1280x720")
    video = sdk.videos.poll(video.id, poll_interval_ms=POLL_MS)
    assert video.status == "completed", video.error
    assert sdk.videos.download_content(video.id).read() == sample_mp4()
    gen = live_engine.wait(video.id)
    assert f"{gen.provider}/{gen.model}" == MODEL and gen.provider_job_id in emulator.jobs
    assert gen.state == State.COMPLETED and gen.estimated_cost == gen.final_cost == price
    assert gen.provider_usage["delivery"] == "inline"
    assert_ledger_balanced(gen)
    assert ledger_of(gen) == {"hold": [price], "release": [-price], "charge": [price]}
    sent = emulator.last_requests["create"].json()["parameters"]
    assert (sent["durationSeconds"], sent["resolution"], sent["aspectRatio"], sent["generateAudio"]) == (
        8,
        "720p",
        "16:9",
        True,
    )
    assert emulator.stats()["calls"]["token"] >= 1  # the worker signed its own assertion

    # Google's safety filter removes the video: failed, the hold released, nothing charged
    filtered = sdk.videos.create(model=MODEL, prompt="[filtered] a famous person", seconds="4", size="720x1280")
    assert sdk.videos.poll(filtered.id, poll_interval_ms=POLL_MS).status == "failed"
    gen = live_engine.wait(filtered.id)
    held = catalog.get_model(MODEL).cost(seconds=4, size="720x1280")
    assert held == Decimal("1.6000")
    assert gen.error_code == "content_policy" and "safety filter" in gen.error_message
    assert gen.final_cost in (None, Decimal("0")) and not gen.video_file
    assert ledger_of(gen) == {"hold": [held], "release": [-held]}
