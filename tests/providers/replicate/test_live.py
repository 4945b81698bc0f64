"""End to end on Replicate: the official ``openai`` SDK against a live MediaRouter (``live_server``)
with a real Celery worker and beat (``live_engine``) in front of the Replicate emulator. A priced
model completes with the emulator's bytes and the catalog price charged; a ``failed`` prediction,
an output deleted before the copy, and a create whose answer was lost all end failed with the
hold released and nothing charged."""

from __future__ import annotations

from decimal import Decimal

import httpx2
import pytest
from openai import OpenAI

from apps.api_keys.models import KeyStatus
from apps.generations.models import Generation
from apps.providers import catalog
from tests.emulators.base import sample_mp4
from tests.generations.helpers import ledger_of

pytestmark = [
    pytest.mark.integration,
    # every videos.* call of the SDK warns of the upstream Sora shutdown, whatever the model
    pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning"),
]

POLL_MS = 200
MODEL = "replicate/seedance-2.0"


@pytest.fixture
def redis_left_as_found(settings):
    """On the PostgreSQL leg the worker's broker, Celery's results and the API throttles write into
    Redis: remove the keys this test added once the worker has stopped (set up first, torn down last)."""
    url = getattr(settings, "REDIS_URL", None)
    if not url:
        yield
        return
    import redis

    client = redis.Redis.from_url(url)
    before = set(client.keys("*"))
    try:
        yield
    finally:
        added = set(client.keys("*")) - before
        if added:
            client.delete(*added)
        client.close()


@pytest.fixture
def sdk(live_server, tenants):
    http_client = httpx2.Client(timeout=30)
    client = OpenAI(base_url=f"{live_server.url}/v1", api_key=tenants.alice_token, http_client=http_client)
    yield client
    client.close()  # a kept-alive connection would hold a live-server thread and its database connection


def test_replicate_end_to_end_through_the_openai_sdk(redis_left_as_found, tenants, live_engine, sdk):
    emulator = live_engine.emulators["replicate"]
    assert live_engine.keys["replicate"].status == KeyStatus.VALID
    model = catalog.get_model(MODEL)
    price = model.cost(seconds=5, size="1280x720")
    assert price == Decimal("0.9000")  # $0.18/s at 720p

    video = sdk.videos.create_and_poll(
        model=MODEL, prompt="a lighthouse at dusk", seconds="5", size="1280x720", poll_interval_ms=POLL_MS
    )
    assert video.status == "completed", video.error
    assert sdk.videos.download_content(video.id).read() == sample_mp4()
    gen = live_engine.wait(video.id)
    assert (gen.provider, gen.model) == ("replicate", "seedance-2.0")
    assert gen.provider_job_id in emulator.jobs
    assert gen.final_cost == price
    assert ledger_of(gen) == {"hold": [price], "release": [-price], "charge": [price]}
    assert gen.provider_usage["predict_time"] > 0  # Replicate's metrics, kept for reconciliation

    # a failed prediction and an output that is gone when the worker comes to copy it, side by side
    emulator.add_fault("file", status=404, body="Not Found")
    failed = sdk.videos.create(model=MODEL, prompt="[fail] a forbidden scene", seconds="5", size="1280x720")
    expired = sdk.videos.create(model=MODEL, prompt="a clip copied too late", seconds="5", size="1280x720")
    for public_id, code in ((failed.id, "content_policy"), (expired.id, "output_expired")):
        assert sdk.videos.poll(public_id, poll_interval_ms=POLL_MS).status == "failed"
        gen = live_engine.wait(public_id)
        assert gen.error_code == code, (gen.error_code, gen.error_message)
        assert gen.final_cost in (None, Decimal("0"))
        assert ledger_of(gen) == {"hold": [price], "release": [-price]}, code
    assert emulator.stats()["calls"]["file"] == 2  # the good copy, and the one that found nothing

    # a create whose answer never came (the worker's read timeout is 2 s): the prediction exists
    # but cannot be looked up, so the generation fails without charge rather than pay twice
    created_before = emulator.stats()["jobs_created"]
    emulator.add_fault("create", delay=3.0)
    lost = sdk.videos.create(model=MODEL, prompt="a create answered too late", seconds="5", size="1280x720")
    assert sdk.videos.poll(lost.id, poll_interval_ms=POLL_MS).status == "failed"
    gen = live_engine.wait(lost.id)
    assert gen.error_code == "submit_uncertain" and not gen.provider_job_id
    assert ledger_of(gen) == {"hold": [price], "release": [-price]}
    assert emulator.stats()["jobs_created"] == created_before + 1  # submitted once, never again
    assert Generation.all_orgs.filter(provider="replicate", state="completed").count() == 1
