"""End to end through the official openai SDK, a live MediaRouter and a real Celery worker against
the BytePlus emulator: the bytes, the token usage and the charge at the catalog price; a
``ModelNotOpen`` and a failed task each end failed with the hold released and nothing charged."""

from __future__ import annotations

from decimal import Decimal

import httpx2
import pytest
from openai import OpenAI

from apps.billing.models import UsageEntry
from apps.generations.models import Generation, State
from apps.providers.catalog import get_model
from tests.emulators.base import sample_mp4
from tests.generations.helpers import assert_ledger_balanced, ledger_of

pytestmark = [
    pytest.mark.integration,
    # every videos.* call warns of the upstream Sora shutdown, attributed to the caller (this module)
    pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning"),
]

POLL_MS = 200
MODEL = "byteplus/seedance-2.0"


@pytest.fixture
def client(live_server, tenants):
    http_client = httpx2.Client(timeout=30)
    sdk = OpenAI(base_url=f"{live_server.url}/v1", api_key=tenants.alice_token, http_client=http_client)
    yield sdk
    sdk.close()


def test_seedance_on_byteplus_end_to_end(tenants, client, live_engine):
    emu = live_engine.emulators["byteplus"]
    price = get_model(MODEL).cost(seconds=5, size="1280x720")
    assert price == Decimal("1.0800")

    video = client.videos.create_and_poll(
        model=MODEL, prompt="a lighthouse at dusk", size="1280x720", seconds="5", poll_interval_ms=POLL_MS
    )
    assert video.status == "completed", video.error
    assert client.videos.download_content(video.id).read() == sample_mp4()
    gen = live_engine.wait(video.id)
    assert gen.provider == "byteplus" and gen.state == State.COMPLETED
    assert gen.estimated_cost == gen.final_cost == price
    assert_ledger_balanced(gen)
    assert ledger_of(gen) == {"hold": [price], "release": [-price], "charge": [price]}
    # what BytePlus billed, as the emulator reports it: 1280 x 720 x 24 x 5 / 1024 tokens
    assert gen.provider_usage["total_tokens"] == 108000
    assert Decimal(gen.provider_usage["cost_usd"]) == price
    sent = emu.last_requests["create"].json()
    assert sent["model"] == "dreamina-seedance-2-0-260128" and (sent["ratio"], sent["resolution"]) == ("16:9", "720p")
    assert emu.deletes == []  # a finished task is never DELETEd (that would delete it at Ark)

    # the model is not activated for the account: permanent, nothing charged, the hold released
    emu.not_activated.add("dreamina-seedance-2-0-260128")
    not_open = client.videos.create_and_poll(
        model=MODEL, prompt="not activated", size="854x480", seconds="4", poll_interval_ms=POLL_MS
    )
    assert not_open.status == "failed"
    gen = live_engine.wait(not_open.id)
    assert gen.error_code == "model_not_open" and "BytePlus ModelArk console" in gen.error_message
    held = get_model(MODEL).cost(seconds=4, size="854x480")
    assert held == Decimal("0.3843")  # 854 x 480 x 24 x 4 / 1024 = 38,430 tokens x $10 / M
    assert ledger_of(gen) == {"hold": [held], "release": [-held]}
    assert gen.submit_attempts == 1  # permanent: not retried
    emu.not_activated.clear()

    # a task that fails at Ark (output moderation): failed, the hold released
    failed = client.videos.create_and_poll(
        model=MODEL, prompt="[fail] a clip", size="1280x720", seconds="5", poll_interval_ms=POLL_MS
    )
    assert failed.status == "failed"
    gen = live_engine.wait(failed.id)
    assert gen.error_code == "content_policy" and not gen.video_file
    assert ledger_of(gen) == {"hold": [price], "release": [-price]}
    assert emu.stats()["jobs_created"] == 2  # the ModelNotOpen create made no task
    charges = UsageEntry.all_orgs.filter(kind="charge", provider="byteplus")
    assert [c.amount for c in charges] == [price]
    assert Generation.all_orgs.filter(provider="byteplus").count() == 3
