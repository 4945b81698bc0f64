"""Deleting a video that is still running at a provider that cannot cancel it (issue 18, item 15):
the delete is accepted and hides the video at once; the job runs on and is charged (the provider
bills it), and its files are removed as soon as they land. On a priced model (the sandbox, which
cannot cancel, at $0.50 a second)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.storage import default_storage

from apps.core.scoping import org_scope
from apps.generations import engine, services, storage
from apps.generations.models import Generation, GenerationEvent, State
from apps.generations.services import GenerationRequest
from apps.providers.sandbox.adapter import SandboxProvider
from tests.generations.helpers import ledger_of, run_steps
from tests.openai_compat.helpers import assert_error

pytestmark = pytest.mark.django_db

HOLD = Decimal("2.0000")  # 4 s at $0.50


@pytest.fixture(autouse=True)
def fast_sandbox(settings):
    settings.SANDBOX_JOB_SECONDS = 0.3


def _running(tenants) -> Generation:
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=GenerationRequest(model="sandbox-video", prompt="a lighthouse", seconds=4, size="1280x720"),
        )
        engine.generation_submit(generation_id=gen.pk)
    gen.refresh_from_db()
    assert gen.state in (State.QUEUED, State.IN_PROGRESS) and gen.provider_job_id
    return gen


@pytest.mark.parametrize(
    ("url", "status"), [("/v1/video/generations/{id}", 204), ("/v1/videos/{id}", 200)], ids=["native", "openai"]
)
def test_a_running_video_that_cannot_be_canceled_is_hidden_then_charged_and_its_files_removed(
    tenants, priced_sandbox, url, status
):
    assert not SandboxProvider.supports_cancel
    gen = _running(tenants)
    api = tenants.api_client_for(tenants.bob_token)
    r = api.delete(url.format(id=gen.public_id))
    assert r.status_code == status, r.content
    assert_error(api.get(url.format(id=gen.public_id)), 404)
    assert gen.public_id not in api.get("/v1/video/generations").content.decode()
    gen.refresh_from_db()
    assert gen.deleted_at is not None and gen.is_active  # hidden, still running
    assert ledger_of(gen) == {"hold": [HOLD]}

    gen = run_steps(gen)
    assert gen.state == State.COMPLETED and gen.final_cost == HOLD
    assert ledger_of(gen) == {"hold": [HOLD], "release": [-HOLD], "charge": [HOLD]}  # the provider billed it
    assert (gen.video_file, gen.thumbnail_file, gen.output_url) == ("", "", "")
    assert not default_storage.exists(storage.video_key(tenants.org_a.slug, gen.public_id))
    messages = list(GenerationEvent.all_orgs.filter(generation=gen).values_list("message", flat=True))
    assert any(m.startswith("Deleted while running") for m in messages), messages
    assert_error(api.get(url.format(id=gen.public_id)), 404)  # and it stays hidden


def test_a_video_not_yet_submitted_is_canceled_and_released_by_a_delete(tenants, priced_sandbox):
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.bob,
            request=GenerationRequest(model="sandbox-video", prompt="a lighthouse", seconds=4, size="1280x720"),
        )
    r = tenants.api_client_for(tenants.bob_token).delete(f"/v1/video/generations/{gen.public_id}")
    assert r.status_code == 204
    gen.refresh_from_db()
    assert gen.state == State.CANCELED and gen.deleted_at is not None
    assert ledger_of(gen) == {"hold": [HOLD], "release": [-HOLD]}  # nothing charged


def test_another_organization_cannot_delete_it(tenants, priced_sandbox):
    gen = _running(tenants)
    r = tenants.api_client_for(tenants.charlie_token).delete(f"/v1/video/generations/{gen.public_id}")
    assert_error(r, 404)
    gen.refresh_from_db()
    assert gen.deleted_at is None
