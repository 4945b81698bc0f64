"""Bad input through the API: URLs we would fetch and uploads we would store are checked."""

from __future__ import annotations

import pytest

from tests.emulators.base import sample_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(tenants, settings, openai_emulator):
    from apps.accounts.models import Membership
    from apps.api_keys import services as key_services
    from apps.core.scoping import org_scope

    settings.OPENAI_BASE_URL = openai_emulator.base_url
    with org_scope(tenants.org_a):
        key_services.provider_key_create(
            by=Membership.all_orgs.get(user=tenants.alice, organization=tenants.org_a),
            provider="sora",
            api_key=openai_emulator.api_key,
        )
    return tenants.api_client_for(tenants.alice_token)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/cat.png",
        "https://10.1.2.3/cat.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/cat.png",
        "https://192.168.0.10/cat.png",
        "file:///etc/passwd",
        "gopher://example.com/",
    ],
)
def test_image_urls_to_private_or_odd_places_are_refused(api, url):
    r = api.post(
        "/v1/videos",
        {"model": "sora-2", "prompt": "x", "seconds": "4", "size": "1280x720", "input_reference": {"image_url": url}},
        content_type="application/json",
    )
    assert r.status_code == 400, r.content
    assert r.json()["error"]["param"] == "input_reference"


@pytest.mark.parametrize(
    ("name", "data", "content_type", "message"),
    [
        ("cat.png", b"%PDF-1.7 not an image", "image/png", "could not be read"),
        (
            "cat.png",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "image/png",
            "could not be read",
        ),
        ("big.png", b"\x89PNG" + b"0" * (11 * 1024 * 1024), "image/png", "the limit is"),
    ],
)
def test_uploads_are_checked_by_content_and_size(api, name, data, content_type, message):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(name, data, content_type=content_type)
    r = api.post(
        "/v1/videos", {"model": "sora-2", "prompt": "x", "seconds": "4", "size": "1280x720", "input_reference": upload}
    )
    assert r.status_code in (400, 413), r.content
    body = r.json()["error"]
    assert message in body["message"] and body["param"] == "input_reference"


def test_a_polyglot_png_is_stored_as_what_it_decodes_to(api, tenants):
    """A PNG with an HTML/zip tail, named .html and sent as text/html, is a PNG: the type comes
    from decoding the bytes, so it is stored and handed on as image/png, never as HTML."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.generations.models import Generation

    polyglot = sample_image("PNG") + b"<html><script>alert(1)</script></html>PK\x03\x04"
    upload = SimpleUploadedFile("x.html", polyglot, content_type="text/html")
    r = tenants.api_client_for(tenants.alice_token).post(
        "/v1/videos", {"model": "sora-2", "prompt": "x", "seconds": "4", "size": "1280x720", "input_reference": upload}
    )
    assert r.status_code == 200, r.content
    gen = Generation.all_orgs.get(public_id=r.json()["id"])
    assert gen.input_image.endswith(".png") and gen.input_image_type == "image/png"
