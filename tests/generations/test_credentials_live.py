"""Content credentials end to end: the Sora emulator serves a C2PA-signed video (signed here, at
run time), a real Celery worker downloads and stores it, and the stored file is the provider's
bytes exactly (same SHA-256), still signed; the video's page and the native API say who issued the
credentials and that they validate (the worker trusts the test's root CA)."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.storage import default_storage

from apps.generations import credentials
from apps.generations.models import State
from tests.emulators.base import Response, sample_mp4
from tests.generations import c2pa_assets
from tests.generations.helpers import assert_ledger_balanced

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def identity():
    return c2pa_assets.signing_identity("OpenAI", "Sora Signer")


@pytest.fixture
def live_engine_env(tmp_path, identity):
    """The worker (another process) trusts the test's root CA, as production trusts the C2PA list."""
    anchors = tmp_path / "anchors.pem"
    anchors.write_bytes(identity.root_pem)
    return {"C2PA_TRUST_ANCHORS": str(anchors)}


def test_a_signed_video_from_the_provider_is_stored_unchanged_and_shows_its_credentials(tenants, live_engine, identity):
    signed = c2pa_assets.sign_mp4(sample_mp4(), identity, generator="Sora", title="lighthouse.mp4")
    sora = live_engine.emulators["sora"]
    sora.video_response = lambda: Response(body=signed, content_type="video/mp4")

    api = tenants.api_client_for(tenants.alice_token)
    r = api.post(
        "/v1/video/generations",
        {"model": "sora-2", "prompt": "a lighthouse at dusk", "duration": 4, "size": "1280x720"},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    gen = live_engine.wait(r.json()["id"])
    assert gen.state == State.COMPLETED, (gen.error_code, gen.error_message)
    assert_ledger_balanced(gen)

    # byte for byte what the provider sent
    with default_storage.open(gen.video_file, "rb") as fh:
        stored = fh.read()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(signed).hexdigest() == gen.sha256
    assert credentials.read(io.BytesIO(stored))["present"] is True

    body = api.get(f"/v1/video/generations/{gen.public_id}").json()
    cc = body["content_credentials"]
    assert (cc["state"], cc["issuer"], cc["signer"], cc["claim_generator"]) == (
        "valid",
        "OpenAI",
        "Sora Signer",
        "Sora 2.0",
    )
    assert cc["ai_generated"] is True and cc["title"] == "lighthouse.mp4"
    assert body["video"]["sha256"] == hashlib.sha256(signed).hexdigest()

    html = tenants.client_for(tenants.alice).get(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/").content.decode()
    assert "Content credentials: issued by OpenAI," in html and '<span class="badge ok">valid</span>' in html
