"""Short-lived signed URLs of stored input images (apps.generations.inputs), for suppliers that
fetch images by URL: only with a public https SITE_URL (or S3), one object, expiring, unforgeable."""

from __future__ import annotations

import pytest
from django.core import signing
from django.core.files.storage import default_storage

from apps.generations import engine, inputs
from apps.generations.storage import input_key, save_bytes
from tests.emulators.base import sample_image

KEY = input_key("alice-films", "video_abc123", "png")


@pytest.fixture
def stored():
    data = sample_image("PNG")
    save_bytes(KEY, data)
    yield data
    default_storage.delete(KEY)


@pytest.fixture
def public_site(settings, monkeypatch):
    settings.SITE_URL = "https://mediarouter.example.com"
    monkeypatch.setattr(inputs.socket, "getaddrinfo", lambda host, port: [(0, 0, 0, "", ("93.184.215.14", port))])


def test_no_url_behind_a_site_the_supplier_cannot_reach(settings, stored):
    settings.SITE_URL = "http://127.0.0.1:8000"
    assert inputs.input_image_url(KEY) is None  # the adapter sends the image inline instead


def test_a_signed_url_serves_that_image_only(client, stored, public_site):
    url = inputs.input_image_url(KEY)
    assert url.startswith("https://mediarouter.example.com/inputs/")
    path = url.removeprefix("https://mediarouter.example.com")
    r = client.get(path)
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    assert b"".join(r.streaming_content) == stored
    assert r["X-Robots-Tag"] == "noindex"


def test_a_forged_tampered_or_expired_url_is_404(client, stored, public_site, settings):
    token = inputs.signed_token(KEY)
    assert client.get(f"/inputs/{token[:-2]}xx/").status_code == 404  # tampered
    other = signing.dumps("orgs/other-org/inputs/video_x.png", salt="another salt", compress=True)
    assert client.get(f"/inputs/{other}/").status_code == 404  # not signed for this purpose
    video = signing.dumps("orgs/alice-films/videos/video_abc123.mp4", salt=inputs.SALT, compress=True)
    assert client.get(f"/inputs/{video}/").status_code == 404  # only input images, never videos
    settings.INPUT_IMAGE_URL_SECONDS = -1
    assert client.get(f"/inputs/{token}/").status_code == 404  # expired


@pytest.mark.django_db
def test_the_engine_hands_the_url_to_the_adapter_with_the_bytes(tenants, stored, public_site):
    from apps.generations.models import Generation

    gen = Generation(
        organization=tenants.org_a,
        public_id="video_abc123",
        user=tenants.alice,
        provider="sandbox",
        model="sandbox-video",
        prompt="p",
        seconds=4,
        size="1280x720",
        input_image=KEY,
        input_image_type="image/png",
        deadline_at="2030-01-01T00:00:00Z",
        estimated_cost=0,
    )
    spec = engine._spec(gen)
    assert spec.image.data == stored and spec.image.content_type == "image/png"
    assert spec.image.url and spec.image.url.startswith("https://mediarouter.example.com/inputs/")
