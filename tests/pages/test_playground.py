"""The playground: model picker from the org's keys, catalog-driven options, live estimate and
budgets, create (htmx and plain), errors next to their field, roles, remix."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.accounts.models import Membership, Role
from apps.api_keys.models import KeyStatus
from apps.generations.models import Generation, State

from .conftest import HX, assert_forms_work_without_js, page_url

pytestmark = pytest.mark.django_db

OPTIONS = {**HX, "HX-Target": "playground-options"}


def url(tenants, suffix: str = "") -> str:
    return page_url(tenants.org_a, "playground/" + suffix)


def optgroups(html: str) -> list[str]:
    return re.findall(r'<optgroup label="([^"]+)"', html)


def png(size=(64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_org_home_lands_on_the_playground(tenants):
    r = tenants.client_for(tenants.alice).get(page_url(tenants.org_a))
    assert r.status_code == 302 and r["Location"] == url(tenants)


def test_it_works_and_offers_only_providers_with_a_usable_key(tenants, add_key):
    client = tenants.client_for(tenants.alice)
    r = client.get(url(tenants))
    assert r.status_code == 200
    html = r.content.decode()
    assert "<html" in html and 'aria-current="page">Playground</a>' in html
    assert optgroups(html) == ["Sandbox"]  # no keys yet: only the sandbox
    assert "No videos yet" in html

    add_key("sora")  # valid
    add_key("runway", status=KeyStatus.UNVERIFIED)
    add_key("kling", status=KeyStatus.INVALID)
    html = client.get(url(tenants)).content.decode()
    assert optgroups(html) == ["Sora 2", "Runway", "Sandbox"]  # grouped by model family
    assert "Sora 2 · OpenAI Sora · $0.10/s — deprecated 2026-09-24" in html  # supplier, price, deprecation
    assert 'value="kling-v1-6"' not in html
    assert_forms_work_without_js(html)


def test_options_fragment_follows_the_catalog(tenants, add_key):
    add_key("runway")
    add_key("kling")
    client = tenants.client_for(tenants.alice)
    # Runway gen4.5: seconds 2-10, a seed, no negative prompt; image-only sizes are marked
    r = client.get(url(tenants), {"model": "gen4.5", "seconds": "5", "size": "1280x720"}, headers=OPTIONS)
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html and html.lstrip().startswith('<div id="playground-options"')
    assert 'name="seed"' in html and 'name="negative_prompt"' not in html
    assert '<option value="10">10 seconds</option>' in html
    assert "1104 \N{MULTIPLICATION SIGN} 832 (with an input image)" in html
    assert '<strong class="estimate-value">$0.60</strong>' in html  # 5 s x $0.12
    # Kling: a negative prompt, no seed; a duration it does not offer falls back to its default
    html = client.get(url(tenants), {"model": "kling-v1-6", "seconds": "2"}, headers=OPTIONS).content.decode()
    assert 'name="negative_prompt"' in html and 'name="seed"' not in html
    assert '<option value="5" selected>5 seconds</option>' in html
    assert "$0.28" in html  # 5 s x $0.056
    # the no-JS path: the same choice through the plain page
    html = client.get(url(tenants), {"model": "kling-v1-6", "prompt": "kept"}).content.decode()
    assert "<html" in html and 'name="negative_prompt"' in html and "kept</textarea>" in html


def test_budget_remaining_is_shown_next_to_the_estimate(tenants, make_videos):
    tenants.org_a.monthly_budget = 10
    tenants.org_a.member_monthly_limit = 1
    tenants.org_a.save()
    make_videos(2, cost="0.40")
    html = tenants.client_for(tenants.alice).get(url(tenants)).content.decode()
    assert "$0.80 of $10.00" in html and "$9.20 left" in html
    assert "$0.80 of $1.00" in html and "$0.20 left" in html
    assert 'aria-valuenow="80"' in html


def test_generate_htmx_shows_the_job_at_once_with_polling(tenants):
    client = tenants.client_for(tenants.alice)
    data = {"prompt": "a red kite", "model": "sandbox-video", "seconds": "2", "size": "1280x720"}
    r = client.post(url(tenants), data, headers=HX)
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html and html.lstrip().startswith('<div id="playground"')
    gen = Generation.all_orgs.get(prompt="a red kite")
    assert gen.user == tenants.alice and gen.seconds == 2 and gen.organization == tenants.org_a
    card = html[html.index(f'data-video="{gen.public_id}"') :]
    assert "job-new" in html and 'hx-trigger="every 1s"' in card and "<progress" in card


def test_generate_as_a_plain_form_redirects(tenants):
    client = tenants.client_for(tenants.alice)
    data = {"prompt": "plain post", "model": "sandbox-video", "seconds": "4", "size": "960x960"}
    r = client.post(url(tenants), data)
    assert r.status_code == 302 and r["Location"] == url(tenants)
    assert Generation.all_orgs.filter(prompt="plain post", size="960x960").exists()
    page = client.get(url(tenants)).content.decode()
    assert "Your video is on its way" in page and "plain post" in page


def test_errors_are_shown_next_to_their_field(tenants, add_key, settings):
    add_key("runway")
    client = tenants.client_for(tenants.alice)
    base = {"prompt": "x", "model": "sandbox-video", "seconds": "2", "size": "1280x720"}

    r = client.post(url(tenants), {**base, "seconds": "3", "size": "1920x1080"}, headers=HX)
    html = r.content.decode()
    assert r.status_code == 422 and "<html" not in html
    assert "supports durations of 2, 4, 8, 12 seconds" in html and "supports sizes" in html

    r = client.post(url(tenants), {**base, "image": SimpleUploadedFile("a.png", png(), "image/png")}, headers=HX)
    html = r.content.decode()
    image_block = html[html.index('class="image-field"') :]
    assert r.status_code == 422 and "does not accept an input image" in image_block

    bad = SimpleUploadedFile("a.png", b"not an image at all", "image/png")
    r = client.post(url(tenants), {**base, "model": "gen4.5", "image": bad}, headers=HX)
    assert r.status_code == 422 and "could not be read" in r.content.decode()

    settings.INPUT_IMAGE_MAX_BYTES = 1000
    big = SimpleUploadedFile("a.png", png((256, 256)) + b"\0" * 2000, "image/png")
    r = client.post(url(tenants), {**base, "model": "gen4.5", "image": big}, headers=HX)
    assert r.status_code == 422 and "the limit is" in r.content.decode()

    r = client.post(url(tenants), {**base, "prompt": ""}, headers=HX)
    assert r.status_code == 422 and "This field is required." in r.content.decode()
    assert not Generation.all_orgs.exists()


def test_image_to_video_upload_is_stored(tenants, add_key):
    add_key("runway")
    client = tenants.client_for(tenants.alice)
    data = {
        "prompt": "animate this",
        "model": "gen4_turbo",
        "seconds": "5",
        "size": "960x960",
        "seed": "42",
        "image": SimpleUploadedFile("in.png", png(), "image/png"),
    }
    r = client.post(url(tenants), data, headers=HX)
    assert r.status_code == 200, r.content.decode()
    gen = Generation.all_orgs.get(prompt="animate this")
    assert gen.input_image.endswith(".png") and gen.input_image_type == "image/png" and gen.seed == 42


def test_over_budget_is_refused_with_a_clear_message(tenants, add_key):
    add_key("runway")
    tenants.org_a.monthly_budget = "0.10"
    tenants.org_a.save()
    data = {"prompt": "pricey", "model": "gen4.5", "seconds": "5", "size": "1280x720"}
    r = tenants.client_for(tenants.alice).post(url(tenants), data, headers=HX)
    assert r.status_code == 402 and "would exceed Alice Films" in r.content.decode()
    assert not Generation.all_orgs.exists()


def test_viewers_cannot_generate(tenants):
    Membership.all_orgs.filter(user=tenants.bob).update(role=Role.VIEWER)
    bob = tenants.client_for(tenants.bob)
    html = bob.get(url(tenants)).content.decode()
    assert "You are a viewer" in html and re.search(r"<button type=\"submit\" disabled>\s*Generate", html)
    data = {"prompt": "not allowed", "model": "sandbox-video", "seconds": "2", "size": "1280x720"}
    r = bob.post(url(tenants), data, headers=HX)
    assert r.status_code == 403 and "Viewers cannot generate videos" in r.content.decode()
    r = bob.post(url(tenants), data)
    assert r.status_code == 403 and "Viewers cannot generate videos" in r.content.decode()
    assert not Generation.all_orgs.exists()


def test_remix_prefills_and_creates_a_remix(tenants, make_videos):
    (source,) = make_videos(1, provider="sandbox", model="sandbox-video", cost="0", prompt="a calm lake")
    client = tenants.client_for(tenants.alice)
    html = client.get(url(tenants), {"remix": source.public_id}).content.decode()
    assert "Remixing" in html and f'value="{source.public_id}"' in html and "a calm lake</textarea>" in html
    r = client.post(url(tenants), {"prompt": "a stormy lake", "remix_of": source.public_id}, headers=HX)
    assert r.status_code == 200, r.content.decode()
    remix = Generation.all_orgs.get(prompt="a stormy lake")
    assert remix.remix_of == source and remix.model == "sandbox-video" and remix.seconds == source.seconds
    # a model that cannot remix only gets its settings reused
    (runway,) = make_videos(1, prompt="lighthouse")
    html = client.get(url(tenants), {"remix": runway.public_id}).content.decode()
    assert "Remixing" not in html
    html = client.get(url(tenants), {"reuse": runway.public_id}).content.decode()
    assert "lighthouse</textarea>" in html


def test_outsider_gets_404(tenants):
    charlie = tenants.client_for(tenants.charlie)
    assert charlie.get(url(tenants)).status_code == 404
    data = {"prompt": "sneaky", "model": "sandbox-video", "seconds": "2", "size": "1280x720"}
    assert charlie.post(url(tenants), data).status_code == 404
    assert not Generation.all_orgs.filter(state=State.CREATED).exists()
