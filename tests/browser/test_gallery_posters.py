"""A Gallery page of 12 finished videos in a real browser: every card shows its poster at once, and
not one byte of video is requested until a person presses play (``preload="none"``)."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.core.ids import public_id
from apps.generations import media, storage
from apps.generations.models import Generation, State
from apps.providers.sandbox.adapter import render_mp4

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _finished_videos(org, user, n: int) -> list[Generation]:
    video = render_mp4("a paper boat on a calm lake", 2, "1280x720")
    probed = media.probe(io.BytesIO(video))
    poster = media.poster_bytes(probed.poster)
    rows = []
    for i in range(n):
        gen_id = public_id("video")
        rows.append(
            Generation(
                organization=org,
                user=user,
                public_id=gen_id,
                provider="sandbox",
                model="sandbox-video",
                prompt=f"poster test {i}",
                seconds=2,
                size="1280x720",
                state=State.COMPLETED,
                progress=100,
                deadline_at=timezone.now() + timedelta(hours=1),
                estimated_cost=Decimal("0"),
                final_cost=Decimal("0"),
                completed_at=timezone.now(),
                video_file=storage.save_bytes(storage.video_key(org.slug, gen_id), video).key,
                thumbnail_file=storage.save_bytes(storage.thumbnail_key(org.slug, gen_id, "webp"), poster).key,
                content_type="video/mp4",
                bytes=len(video),
                media_probe=probed.as_json(),
            )
        )
    return Generation.all_orgs.bulk_create(rows)


def test_a_gallery_page_requests_no_video_until_play_is_pressed(live_server, tenants, open_page, console):
    gens = _finished_videos(tenants.org_a, tenants.alice, 12)
    client = Client()
    client.force_login(tenants.alice)
    page = open_page("alice")
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    requests: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append((r.resource_type, r.url)))

    page.goto(f"/o/{tenants.org_a.slug}/videos/")
    page.wait_for_load_state("networkidle")
    videos = page.locator("article.video-card video")
    assert videos.count() == 12
    # every poster is shown (loaded and decoded by the browser), and no video was asked for
    posters = [url for kind, url in requests if "variant=thumbnail" in url]
    assert len(posters) == 12 and {g.public_id for g in gens} == {u.split("/videos/")[1].split("/")[0] for u in posters}
    assert all(kind == "image" for kind, url in requests if "variant=thumbnail" in url)
    content = [(kind, url) for kind, url in requests if "/content" in url and "variant=thumbnail" not in url]
    assert content == []
    assert videos.evaluate_all("vs => vs.map(v => v.readyState)") == [0] * 12  # HAVE_NOTHING

    # a person presses play on one card: that one video loads and plays; the others stay untouched
    first = videos.nth(0)
    with page.expect_request(lambda r: "/content" in r.url and "variant=" not in r.url) as asked:
        first.click()  # a user gesture; the native play button lives in the player's closed shadow tree
        first.evaluate("v => v.paused && v.play()")
    assert asked.value.resource_type == "media"
    page.wait_for_function("v => v.currentTime > 0.2", arg=first.element_handle())
    content = [url for kind, url in requests if "/content" in url and "variant=thumbnail" not in url]
    card_id = first.locator("xpath=ancestor::article").get_attribute("data-video")
    assert content and all(f"/videos/{card_id}/content" in url for url in content)
    assert videos.evaluate_all("vs => vs.slice(1).map(v => v.readyState)") == [0] * 11
    assert console.errors == []
