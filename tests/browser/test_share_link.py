"""A share link in a real browser (issue 19, "Done when"): alice makes a link on her video's page,
someone logged out opens it in a fresh browser and plays the video, alice revokes it, and the
link then shows the "not available" page."""

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
from apps.sharing.models import ShareLink

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _finished_video(org, user) -> Generation:
    video = render_mp4("a kite over the dunes", 2, "1280x720")
    probed = media.probe(io.BytesIO(video))
    gen_id = public_id("video")
    return Generation.all_orgs.create(
        organization=org,
        user=user,
        public_id=gen_id,
        provider="sandbox",
        model="sandbox-video",
        prompt="a kite over the dunes",
        seconds=2,
        size="1280x720",
        state=State.COMPLETED,
        progress=100,
        deadline_at=timezone.now() + timedelta(hours=1),
        estimated_cost=Decimal("0"),
        final_cost=Decimal("0"),
        completed_at=timezone.now(),
        video_file=storage.save_bytes(storage.video_key(org.slug, gen_id), video).key,
        thumbnail_file=storage.save_bytes(
            storage.thumbnail_key(org.slug, gen_id, "webp"), media.poster_bytes(probed.poster)
        ).key,
        content_type="video/mp4",
        bytes=len(video),
        media_probe=probed.as_json(),
    )


def _logged_in(open_page, live_server, user):
    client = Client()
    client.force_login(user)
    page = open_page(user.email)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return page


def test_a_share_link_opens_logged_out_plays_and_stops_when_revoked(live_server, tenants, open_page, console):
    gen = _finished_video(tenants.org_a, tenants.alice)
    alice = _logged_in(open_page, live_server, tenants.alice)
    alice.goto(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/")
    alice.get_by_label("Show the prompt on the page").check()
    alice.get_by_role("button", name="Create share link").click()
    link = alice.locator("#new-share-url").input_value()  # swapped in by htmx, shown once
    assert "/s/" in link and ShareLink.all_orgs.count() == 1

    guest = open_page("guest")  # a fresh context: no session, no cookies
    response = guest.goto(link)
    assert response.status == 200 and response.headers["x-robots-tag"].startswith("noindex")
    assert guest.locator('meta[name="robots"]').get_attribute("content").startswith("noindex")
    assert guest.get_by_text("a kite over the dunes").is_visible()
    body = guest.content()
    assert tenants.org_a.name not in body and gen.public_id not in body and "alice@example.com" not in body
    player = guest.locator("video")
    assert player.evaluate("v => v.readyState") == 0  # preload="none": nothing loads before play
    player.click()
    player.evaluate("v => v.paused && v.play()")
    guest.wait_for_function("v => v.currentTime > 0.2", arg=player.element_handle())
    assert guest.context.cookies() == []
    screenshot(guest, "share-page")

    alice.once("dialog", lambda dialog: dialog.accept())  # hx-confirm
    alice.get_by_role("button", name="Revoke").click()
    alice.locator("#share-panel .badge.bad", has_text="revoked").wait_for()
    assert ShareLink.all_orgs.get().revoked_at is not None

    again = guest.goto(link)
    assert again.status == 404 and guest.get_by_role("heading", name="This link is not available").is_visible()
    assert console.errors == [] or all("404" in e for e in console.errors), console.errors
