"""Bad input through the API: URLs we would fetch and uploads we would store are checked."""

from __future__ import annotations

import pytest

from tests.emulators.base import sample_image
from tests.generations.test_images import BOMBS, LARGEST, MB, gif_declaring, peak_memory, png

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


# --- image bombs: refused from the header, a 400 naming the field, never a decode or a 500 -----


def _data_uri(data: bytes) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(data).decode()


def _post_image(client, shape: str, data: bytes):
    """One image through one of the three ways in: returns (response, the param it must name)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = {"prompt": "x", "model": "sora-2"}
    if shape == "openai multipart":
        upload = SimpleUploadedFile("in.png", data, content_type="image/png")
        return client.post("/v1/videos", {**body, "seconds": "4", "size": "1280x720", "input_reference": upload})
    if shape == "openai json":
        body |= {"seconds": "4", "size": "1280x720", "input_reference": {"image_url": _data_uri(data)}}
        return client.post("/v1/videos", body, content_type="application/json")
    body |= {"duration": 4, "size": "1280x720", "image": _data_uri(data)}
    return client.post("/v1/video/generations", body, content_type="application/json")


SHAPES = {"openai multipart": "input_reference", "openai json": "input_reference", "native json": "image"}


@pytest.fixture
def media(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "allow_overwrite": True},
        },
    }
    return tmp_path / "media"


@pytest.fixture
def decodes(monkeypatch):
    """Counts pixel decodes (every format's load goes through ImageFile.load)."""
    from PIL import ImageFile

    calls = []
    real_load = ImageFile.ImageFile.load

    def load(self):
        calls.append(self.format)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


@pytest.mark.parametrize("bomb", ["png 20000x20000 (400 MP)", "png rgb 9000x9000 (81 MP)", "webp 16383x16383"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_an_image_bomb_is_a_400_in_every_api_shape_without_decoding(api, media, decodes, shape, bomb):
    from apps.generations.models import Generation

    data = BOMBS[bomb]()
    _post_image(api, shape, sample_image("PNG")[:20])  # warm up the URLconf and views (a 400)
    with peak_memory() as peak:
        r = _post_image(api, shape, data)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["param"] == SHAPES[shape] and error["code"] == "image_too_large"
    assert error["type"] == "invalid_request_error" and "40 megapixels" in error["message"]
    assert decodes == []
    assert peak.rss < 50 * MB, peak  # decoded, the 9000x9000 one alone would take 324 MB
    assert not Generation.all_orgs.exists() and not list(media.glob("**/*.*"))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_largest_accepted_image_works_in_every_api_shape(api, media, decodes, shape):
    from apps.generations.models import Generation

    data = png(*LARGEST, mode="L")
    r = _post_image(api, shape, data)
    assert r.status_code in (200, 201), r.content
    gen = Generation.all_orgs.get(public_id=r.json()["id"])
    assert gen.input_image_type == "image/png" and (media / gen.input_image).read_bytes() == data
    assert decodes == ["PNG"]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_an_unreadable_or_oversized_image_names_the_field_in_every_api_shape(api, media, shape, settings):
    settings.INPUT_IMAGE_MAX_BYTES = 1000
    r = _post_image(api, shape, b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["param"] == SHAPES[shape] and "the limit is" in error["message"]
    r = _post_image(api, shape, gif_declaring(20000, 20000))
    assert r.status_code == 400, r.content
    assert r.json()["error"]["param"] == SHAPES[shape] and "could not be read" in r.json()["error"]["message"]


def test_an_image_bomb_is_a_form_error_in_the_playground(api, media, tenants, decodes):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from apps.generations.models import Generation

    url = reverse("playground", kwargs={"org_slug": tenants.org_a.slug})
    client = tenants.client_for(tenants.alice)
    base = {"prompt": "x", "model": "sora-2", "seconds": "4", "size": "1280x720"}
    client.get(url)  # warm up
    for data in (png(20000, 20000), png(9000, 9000, "RGB")):
        upload = SimpleUploadedFile("in.png", data, content_type="image/png")
        with peak_memory() as peak:
            r = client.post(url, {**base, "image": upload}, headers={"HX-Request": "true"})
        html = r.content.decode()
        assert r.status_code == 422, html[:500]
        assert "40 megapixels" in html[html.index('class="image-field"') :]
        assert peak.rss < 50 * MB, peak
    assert decodes == []
    assert not Generation.all_orgs.exists() and not list(media.glob("**/*.*"))
