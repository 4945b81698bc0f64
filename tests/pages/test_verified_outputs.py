"""Posters and verified outputs where people see them: the Gallery's badge and players, the video's
page, the Usage page's table, the admin's filter, and both API shapes."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from apps.generations import storage
from tests.openai_compat.helpers import assert_video

from .conftest import page_url

pytestmark = pytest.mark.django_db

PROBE = {
    "duration": 5.0,
    "width": 1280,
    "height": 720,
    "fps": 24.0,
    "video_codec": "h264",
    "audio_codec": None,
    "has_audio": False,
}
SHORT = [{"field": "duration", "asked": 8, "delivered": 5.0, "message": "5 s delivered, 8 s asked."}]


@pytest.fixture
def videos(make_videos):
    """One video delivered short (flagged), one as asked, one from before probing."""
    (short,) = make_videos(1, stored=True, prompt="short one", seconds=8, media_probe=PROBE, output_mismatch=SHORT)
    (good,) = make_videos(1, stored=True, prompt="good one", seconds=5, media_probe=PROBE)
    (old,) = make_videos(1, stored=True, prompt="old one", seconds=5)
    return short, good, old


def card(html: str, gen) -> str:
    start = html.index(f'id="card-{gen.public_id}"')
    return html[start : html.index("</article>", start)]


def test_gallery_cards_carry_posters_no_preload_and_the_mismatch_badge(tenants, videos, make_videos):
    short, good, old = videos
    client = tenants.client_for(tenants.alice)
    html = client.get(page_url(tenants.org_a, "videos/")).content.decode()
    for gen in videos:
        player = re.search(r"<video [^>]*>", card(html, gen), re.S).group(0)
        assert 'preload="none"' in player
        assert f'poster="/o/{tenants.org_a.slug}/videos/{gen.public_id}/content?variant=thumbnail"' in player
    assert "not as asked" in card(html, short) and "5 s delivered, 8 s asked." in card(html, short)
    assert "not as asked" not in card(html, good) and "not as asked" not in card(html, old)
    # the badge costs no query per card
    make_videos(9, stored=True, media_probe=PROBE, output_mismatch=SHORT)
    with CaptureQueriesContext(connection) as few:
        client.get(page_url(tenants.org_a, "videos/"))
    make_videos(9, stored=True, media_probe=PROBE, output_mismatch=SHORT)
    with CaptureQueriesContext(connection) as more:
        client.get(page_url(tenants.org_a, "videos/"))
    assert len(more) == len(few)


def test_the_playground_and_detail_players_do_not_preload(tenants, videos):
    short, good, _old = videos
    client = tenants.client_for(tenants.alice)
    playground = client.get(page_url(tenants.org_a, "playground/")).content.decode()
    players = re.findall(r"<video [^>]*>", playground, re.S)
    assert len(players) == 3 and all('preload="none"' in p and "?variant=thumbnail" in p for p in players)
    detail = client.get(page_url(tenants.org_a, f"videos/{short.public_id}/")).content.decode()
    assert re.search(r'<video [^>]*preload="none"[^>]*poster="[^"]+\?variant=thumbnail"', detail, re.S)
    assert "5 s · 1280\u00d7720 · 24 fps · h264 · no audio" in detail
    assert "not as asked" in detail and "<li>5 s delivered, 8 s asked.</li>" in detail
    as_asked = client.get(page_url(tenants.org_a, f"videos/{good.public_id}/")).content.decode()
    assert "✓ as asked" in as_asked and "not as asked" not in as_asked
    # the polled fragment (what a job card swaps in) keeps preload none, whatever the query says
    fragment = client.get(
        page_url(tenants.org_a, f"videos/{good.public_id}/"), {"preload": '"><script>'}, headers={"HX-Request": "true"}
    ).content.decode()
    assert 'preload="none"' in fragment and "<script>" not in fragment


def test_usage_counts_mismatches_per_supplier_and_model(tenants, videos, make_videos):
    make_videos(2, stored=True, provider="kling", model="kling-v2-6", media_probe=PROBE, output_mismatch=SHORT)
    make_videos(1, stored=True, provider="kling", model="kling-v2-6", media_probe=PROBE)
    make_videos(1, org=tenants.org_b, user=tenants.charlie, media_probe=PROBE, output_mismatch=SHORT)  # not ours
    html = tenants.client_for(tenants.alice).get(page_url(tenants.org_a, "usage/")).content.decode()
    table = html[html.index('id="output-checks"') :]
    table = table[: table.index("</section>")]
    rows = re.findall(r"<tr[^>]*><td>([\w./-]+)</td><td>(\d+)</td><td>(.*?)</td></tr>", table)
    assert rows == [
        ("kling/kling-v2-6", "3", '<span class="badge warn">2</span>'),
        ("runway/gen4.5", "2", '<span class="badge warn">1</span>'),  # the old, unprobed one is not counted
    ]


def test_the_admin_filters_videos_not_as_asked(tenants, videos, django_user_model):
    short, good, old = videos
    staff = tenants.client_for(django_user_model.objects.create_superuser("ops@example.com", "pw"))
    url = "/admin/generations/generation/"
    found = {
        value: staff.get(url, {"output": value}).content.decode() for value in ("mismatch", "as_asked", "unverified")
    }
    assert short.public_id in found["mismatch"] and good.public_id not in found["mismatch"]
    assert good.public_id in found["as_asked"] and short.public_id not in found["as_asked"]
    assert old.public_id in found["unverified"] and good.public_id not in found["unverified"]
    assert old.public_id not in found["mismatch"]


# --- the APIs ----------------------------------------------------------------------------------


def test_the_native_api_has_the_thumbnail_and_the_verified_object(tenants, videos):
    short, good, old = videos
    api = tenants.api_client_for(tenants.alice_token)
    body = api.get(f"/v1/video/generations/{short.public_id}").json()
    assert body["thumbnail"] == {
        "url": f"http://testserver/v1/video/generations/{short.public_id}/content?variant=thumbnail",
        "content_type": "image/jpeg",
    }
    assert body["verified"] == {"as_requested": False, "mismatches": SHORT, **PROBE}
    assert api.get(f"/v1/video/generations/{good.public_id}").json()["verified"]["as_requested"] is True
    assert api.get(f"/v1/video/generations/{old.public_id}").json()["verified"] is None
    listed = {g["id"]: g for g in api.get("/v1/video/generations").json()["data"]}
    assert listed[short.public_id]["verified"]["mismatches"] == SHORT
    # another organization's video is a 404, its poster too
    other = tenants.api_client_for(tenants.charlie_token)
    assert other.get(f"/v1/video/generations/{short.public_id}").status_code == 404
    assert other.get(f"/v1/video/generations/{short.public_id}/content", {"variant": "thumbnail"}).status_code == 404


def test_the_openai_shape_serves_the_poster_and_keeps_its_13_keys(tenants, make_videos):
    (gen,) = make_videos(1, stored=True, media_probe=PROBE, output_mismatch=SHORT)
    out = BytesIO()
    Image.new("RGB", (64, 36), (200, 30, 30)).save(out, format="WEBP")
    key = storage.save_bytes(storage.thumbnail_key(tenants.org_a.slug, gen.public_id, "webp"), out.getvalue()).key
    type(gen).all_orgs.filter(pk=gen.pk).update(thumbnail_file=key)
    api = tenants.api_client_for(tenants.alice_token)
    assert_video(api.get(f"/v1/videos/{gen.public_id}").json())  # no extra key for the check
    r = api.get(f"/v1/videos/{gen.public_id}/content", {"variant": "thumbnail"})
    assert r.status_code == 200 and r["Content-Type"] == "image/webp"
    assert Image.open(BytesIO(b"".join(r.streaming_content))).size == (64, 36)
    other = tenants.api_client_for(tenants.charlie_token)
    r = other.get(f"/v1/videos/{gen.public_id}/content", {"variant": "thumbnail"})
    assert r.status_code == 404 and set(r.json()["error"]) == {"message", "type", "param", "code"}
