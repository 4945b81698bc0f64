"""fal end to end: the official openai SDK against a live MediaRouter, a real Celery worker and the
fal emulator (``live_engine``): a priced Veo 3.1 video charged exactly its catalog price, and a fal
failure form (``COMPLETED`` with ``runner_disconnected``) ending failed with its hold released."""

from __future__ import annotations

from decimal import Decimal

import pytest
from openai import OpenAI

from apps.billing.models import UsageEntry
from apps.providers import catalog
from tests.emulators.base import sample_mp4
from tests.generations.helpers import ledger_of

pytestmark = [
    pytest.mark.integration,
    # every videos.* call warns of the upstream Sora shutdown, attributed to the caller (this module)
    pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning"),
]

POLL_MS = 200


@pytest.fixture
def client(live_server, tenants):
    sdk = OpenAI(base_url=f"{live_server.url}/v1", api_key=tenants.alice_token, max_retries=0)
    yield sdk
    sdk.close()  # a kept-alive connection would hold a live-server thread and its database connection


def test_veo_on_fal_through_the_openai_sdk(client, live_engine, tenants):
    emulator = live_engine.emulators["fal"]
    model = catalog.get_model("fal/veo-3.1")
    price = model.cost(seconds=8, size="1280x720")  # Veo 3.1 generates audio by default: $0.40/s
    assert price == Decimal("3.2000")

    video = client.videos.create_and_poll(
        model="fal/veo-3.1", prompt="a lighthouse at dusk", seconds="8", size="1280x720", poll_interval_ms=POLL_MS
    )
    assert (video.status, video.model, video.seconds, video.size) == ("completed", "fal/veo-3.1", "8", "1280x720")
    assert client.videos.download_content(video.id).read() == sample_mp4()

    gen = live_engine.wait(video.id)
    assert gen.provider == "fal" and gen.final_cost == price
    assert ledger_of(gen) == {"hold": [price], "release": [-price], "charge": [price]}
    charge = UsageEntry.all_orgs.get(generation=gen, kind="charge")
    assert charge.amount == price and charge.user == tenants.alice and charge.provider == "fal"
    # what went upstream, and what fal said it billed
    sent = emulator.last_requests["submit"]
    assert sent.path == "/fal-ai/veo3.1" and sent.headers["Authorization"] == f"Key {emulator.api_key}"
    assert sent.json() == {
        "prompt": "a lighthouse at dusk",
        "duration": "8s",
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "generate_audio": True,
        "auto_fix": False,
    }
    assert (
        gen.provider_job_data["status_url"]
        == f"{emulator.base_url}/fal-ai/veo3.1/requests/{gen.provider_job_id}/status"
    )
    assert gen.provider_usage["billable_units"] == "8"


def test_a_fal_failure_ends_failed_with_the_hold_released(client, live_engine):
    price = catalog.get_model("fal/veo-3.1").cost(seconds=4, size="720x1280")
    assert price == Decimal("1.6000")

    video = client.videos.create_and_poll(
        model="fal/veo-3.1", prompt="a storm [fail]", seconds="4", size="720x1280", poll_interval_ms=POLL_MS
    )
    assert video.status == "failed"
    assert video.error is not None and "Runner disconnected" in video.error.message

    gen = live_engine.wait(video.id)
    assert gen.state == "failed" and not gen.video_file and "runner_disconnected" in gen.error_message
    assert ledger_of(gen) == {"hold": [price], "release": [-price]}  # nothing charged
    assert sum(UsageEntry.all_orgs.filter(generation=gen).values_list("amount", flat=True)) == 0
    assert live_engine.emulators["fal"].stats()["jobs_created"] == 1
