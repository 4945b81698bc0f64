"""A signed video shows its content credentials, in a real browser: the provider's C2PA-signed
MP4 (signed here, at run time) is generated and stored, the video's page says who issued the
credentials and that they validate, and the file the page's Download link serves is the signed
file, byte for byte. An unsigned video's page says it has none."""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings as conf
from django.test import Client

from apps.core.scoping import org_scope
from apps.generations import services
from apps.generations.models import State
from apps.generations.services import GenerationRequest
from apps.providers.sandbox import adapter as sandbox
from tests.generations import c2pa_assets
from tests.generations.helpers import run_steps

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _generate(tenants, monkeypatch, data: bytes, prompt: str):
    monkeypatch.setattr(sandbox, "render_mp4", lambda p, seconds, size: data)
    with org_scope(tenants.org_a):
        gen = services.generation_create(
            org=tenants.org_a,
            user=tenants.alice,
            request=GenerationRequest(model="sandbox-video", prompt=prompt, seconds=2, size="1280x720"),
        )
    return run_steps(gen)


def test_a_signed_video_shows_its_content_credentials(
    live_server, tenants, open_page, console, monkeypatch, settings, tmp_path
):
    settings.SANDBOX_JOB_SECONDS = 0.2
    identity = c2pa_assets.signing_identity("Google LLC", "Veo Signer")
    (tmp_path / "anchors.pem").write_bytes(identity.root_pem)
    settings.C2PA_TRUST_ANCHORS = str(tmp_path / "anchors.pem")
    raw = sandbox.render_mp4("a lighthouse at dusk", 2, "1280x720")
    signed = c2pa_assets.sign_mp4(raw, identity, generator="Veo", title="lighthouse.mp4")
    gen = _generate(tenants, monkeypatch, signed, "a lighthouse at dusk")
    plain = _generate(tenants, monkeypatch, raw, "an unsigned lighthouse")
    assert gen.state == plain.state == State.COMPLETED

    client = Client()
    client.force_login(tenants.alice)
    page = open_page("alice")
    page.context.add_cookies(
        [
            {
                "name": conf.SESSION_COOKIE_NAME,
                "value": client.cookies[conf.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page.goto(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/")
    facts = page.locator("dd.credentials")
    text = " ".join(facts.inner_text().split())
    assert text.startswith("Content credentials: issued by Google LLC, valid"), text
    assert "made with AI" in text and "Made with Veo 2.0" in text
    assert facts.locator(".badge.ok").inner_text() == "valid"
    # what the page's Download link serves is the provider's signed file, unchanged
    href = page.get_by_role("link", name="Download").get_attribute("href")
    served = page.request.get(href).body()
    assert hashlib.sha256(served).hexdigest() == hashlib.sha256(signed).hexdigest() == gen.sha256

    page.goto(f"/o/{tenants.org_a.slug}/videos/{plain.public_id}/")
    assert page.locator("dd.credentials").inner_text().strip() == "This video has no content credentials."
    assert console.errors == []
