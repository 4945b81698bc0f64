"""A share link opens one finished video for someone without an account: nothing else of the
organization, not indexed, not cached by others; it expires, can be revoked, and stops opening
while the organization has sharing switched off. Only the link's digest is stored."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.models import Membership, Role
from apps.audit.models import AuditEvent
from apps.core.errors import NotFound, PermissionDeniedError
from apps.core.ids import public_id
from apps.core.scoping import org_scope
from apps.sharing import services
from apps.sharing.models import ShareLink
from mediarouter.logging import redact
from tests.pages.conftest import HX, VIDEO_BYTES

pytestmark = pytest.mark.django_db

SHARE_URL = re.compile(r'value="(https?://[^"]+/s/([A-Za-z0-9_\-]+)/)"')


def _membership(tenants, user, org=None) -> Membership:
    return Membership.all_orgs.select_related("organization", "user").get(user=user, organization=org or tenants.org_a)


def _share(tenants, gen, *, user=None, **kwargs) -> tuple[ShareLink, str]:
    with org_scope(tenants.org_a):
        return services.share_create(by=_membership(tenants, user or tenants.alice), generation=gen, **kwargs)


def _create_on_page(tenants, gen, **data) -> tuple[str, str]:
    """Alice makes a link on the video's page (htmx): (its URL as shown once, its token)."""
    client = tenants.client_for(tenants.alice)
    r = client.post(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/shares/", {"expires_in": "7", **data}, headers=HX)
    assert r.status_code == 200, r.content[:500]
    match = SHARE_URL.search(r.content.decode())
    assert match, "the new link is shown once on the page"
    return match.group(1), match.group(2)


def test_a_link_opens_logged_out_and_shows_nothing_else(tenants, make_videos):
    shared, other = make_videos(2, stored=True, prompt="a fox crossing a frozen river at dawn")
    url, token = _create_on_page(tenants, shared)

    anonymous = Client()
    r = anonymous.get(url)
    page = r.content.decode()
    assert r.status_code == 200
    assert '<meta name="robots" content="noindex' in page and r["X-Robots-Tag"].startswith("noindex")
    assert r["Cache-Control"].startswith("private") and "no-store" in r["Cache-Control"]
    assert r["Referrer-Policy"] == "no-referrer"
    assert f'src="/s/{token}/video"' in page and f'poster="/s/{token}/poster"' in page
    # nothing else of the organization: its name and pages, other videos, members, ids, the prompt
    for absent in (
        tenants.org_a.name,
        f"/o/{tenants.org_a.slug}/",
        "alice@example.com",
        "bob@example.com",
        "Alice",
        shared.public_id,
        other.public_id,
        "a fox crossing",  # not asked to show the prompt
        "csrfmiddlewaretoken",
        "<form",
    ):
        assert absent not in page, absent
    assert not r.cookies, "the public page sets no cookie (no session, no CSRF token)"

    video = anonymous.get(f"/s/{token}/video")
    assert video.status_code == 200 and b"".join(video.streaming_content) == VIDEO_BYTES
    assert shared.public_id not in video["Content-Disposition"] and video["X-Robots-Tag"].startswith("noindex")
    ranged = anonymous.get(f"/s/{token}/video", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged["Content-Range"] == f"bytes 0-99/{len(VIDEO_BYTES)}"
    assert b"".join(ranged.streaming_content) == VIDEO_BYTES[:100]
    poster = anonymous.get(f"/s/{token}/poster")
    assert poster.status_code == 200 and poster["Content-Type"] == "image/jpeg"

    share = ShareLink.all_orgs.get()
    assert share.view_count == 1 and share.last_viewed_at is not None  # the page, not its media requests
    assert share.token_digest != token and token not in str(list(ShareLink.all_orgs.values()))
    created = AuditEvent.all_orgs.get(action="share.created")
    assert created.target == share.public_id and created.detail["video"] == shared.public_id
    assert token not in str(created.detail)


def test_the_prompt_is_shown_only_when_chosen(tenants, make_videos):
    (gen,) = make_videos(1, stored=True, prompt="a lighthouse in a storm")
    url, _token = _create_on_page(tenants, gen, include_prompt="on")
    assert "a lighthouse in a storm" in Client().get(url).content.decode()


def test_expired_revoked_and_unknown_links_are_the_same_404(tenants, make_videos):
    gen, other = make_videos(2, stored=True)
    _expired, expired_token = _share(tenants, gen, expires_in_days=1)
    revoked, revoked_token = _share(tenants, other)
    anonymous = Client()
    assert anonymous.get(f"/s/{expired_token}/").status_code == 200
    ShareLink.all_orgs.filter(token_digest=_expired.token_digest).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    r = tenants.client_for(tenants.alice).post(f"/o/{tenants.org_a.slug}/shares/{revoked.public_id}/revoke/")
    assert r.status_code == 302 and r["Location"].endswith(f"/videos/{other.public_id}/")

    unknown = anonymous.get("/s/no-such-link-0000000000000000000000000000000/")
    assert unknown.status_code == 404 and unknown["X-Robots-Tag"].startswith("noindex")
    for token in (expired_token, revoked_token):
        r = anonymous.get(f"/s/{token}/")
        assert r.status_code == 404 and r.content == unknown.content
        assert anonymous.get(f"/s/{token}/video").status_code == 404
        assert anonymous.get(f"/s/{token}/poster").status_code == 404
    event = AuditEvent.all_orgs.get(action="share.revoked")
    assert event.target == revoked.public_id and event.actor == tenants.alice


def test_charlie_cannot_share_alices_video(tenants, make_videos):
    (gen,) = make_videos(1, stored=True)
    charlie = tenants.client_for(tenants.charlie)
    for slug in (tenants.org_a.slug, tenants.org_b.slug):
        r = charlie.post(f"/o/{slug}/videos/{gen.public_id}/shares/", {"expires_in": "7"})
        assert r.status_code == 404
    api = tenants.api_client_for(tenants.charlie_token)
    r = api.post(f"/v1/video/generations/{gen.public_id}/shares", {}, content_type="application/json")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    assert api.get(f"/v1/video/generations/{gen.public_id}/shares").status_code == 404
    with org_scope(tenants.org_b), pytest.raises(NotFound):
        services.share_create(by=_membership(tenants, tenants.charlie, tenants.org_b), generation=gen)
    assert not ShareLink.all_orgs.exists()
    # nor revoke one of hers
    share, token = _share(tenants, gen)
    assert charlie.post(f"/o/{tenants.org_b.slug}/shares/{share.public_id}/revoke/").status_code == 404
    assert api.delete(f"/v1/shares/{share.public_id}").status_code == 404
    assert Client().get(f"/s/{token}/").status_code == 200


def test_sharing_switched_off_closes_every_link_and_refuses_new_ones(tenants, make_videos):
    (gen,) = make_videos(1, stored=True)
    _share_link, token = _share(tenants, gen)
    alice = tenants.client_for(tenants.alice)
    settings_url = f"/o/{tenants.org_a.slug}/settings/"
    r = alice.post(settings_url, {"name": tenants.org_a.name})  # the box unticked: sharing off
    assert r.status_code == 302
    tenants.org_a.refresh_from_db()
    assert tenants.org_a.sharing_enabled is False
    assert AuditEvent.all_orgs.get(action="org.settings_changed").detail["sharing_enabled"]["to"] == "False"

    assert Client().get(f"/s/{token}/").status_code == 404
    assert Client().get(f"/s/{token}/video").status_code == 404
    r = alice.post(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/shares/", {"expires_in": "7"}, headers=HX)
    assert r.status_code == 403 and "Sharing is switched off" in r.content.decode()
    r = tenants.api_client_for(tenants.alice_token).post(
        f"/v1/video/generations/{gen.public_id}/shares", {}, content_type="application/json"
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "sharing_disabled"
    assert "switched off" in r.json()["error"]["message"]
    page = alice.get(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/").content.decode()
    assert "Sharing is switched off" in page and "Create share link" not in page
    assert ShareLink.all_orgs.count() == 1

    # back on: the link (neither expired nor revoked) opens again
    assert alice.post(settings_url, {"name": tenants.org_a.name, "sharing_enabled": "on"}).status_code == 302
    assert Client().get(f"/s/{token}/").status_code == 200


def test_who_may_create_and_revoke(tenants, make_videos):
    (gen,) = make_videos(1, stored=True)
    viewer = tenants.charlie
    with org_scope(tenants.org_a):
        Membership.objects.create(organization=tenants.org_a, user=viewer, role=Role.VIEWER, public_id=public_id("mem"))
    with pytest.raises(PermissionDeniedError):
        _share(tenants, gen, user=viewer)
    bobs, _ = _share(tenants, gen, user=tenants.bob)
    alices, _ = _share(tenants, gen)
    with org_scope(tenants.org_a):
        with pytest.raises(PermissionDeniedError):
            services.share_revoke(by=_membership(tenants, tenants.bob), public_id=alices.public_id)
        services.share_revoke(by=_membership(tenants, tenants.bob), public_id=bobs.public_id)  # his own
        services.share_revoke(by=_membership(tenants, tenants.alice), public_id=alices.public_id)  # the owner
    assert ShareLink.all_orgs.filter(revoked_at=None).count() == 0
    # bob's page shows a revoke button only for the links he may revoke
    fresh, _ = _share(tenants, gen)
    page = tenants.client_for(tenants.bob).get(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/").content.decode()
    assert f"/shares/{fresh.public_id}/revoke/" not in page
    r = tenants.client_for(tenants.bob).post(f"/o/{tenants.org_a.slug}/shares/{fresh.public_id}/revoke/", headers=HX)
    assert r.status_code == 403 and ShareLink.all_orgs.get(pk=fresh.pk).revoked_at is None


def test_an_unfinished_video_cannot_be_shared(tenants, make_videos):
    from apps.core.errors import ApplicationError
    from apps.generations.models import State

    (gen,) = make_videos(1, state=State.IN_PROGRESS, progress=40)
    with pytest.raises(ApplicationError) as exc:
        _share(tenants, gen)
    assert exc.value.code == "video_not_ready"


def test_the_api_creates_lists_and_revokes(tenants, make_videos, settings):
    (gen,) = make_videos(1, stored=True)
    api = tenants.api_client_for(tenants.alice_token)
    base = f"/v1/video/generations/{gen.public_id}/shares"
    r = api.post(base, {"expires_in_days": 1, "include_prompt": True}, content_type="application/json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["object"] == "share_link" and body["video_id"] == gen.public_id and body["status"] == "active"
    assert body["url"].startswith("http://testserver/s/") and body["include_prompt"] is True
    assert body["expires_at"] - body["created_at"] in range(86_399, 86_402)
    assert Client().get(body["url"]).status_code == 200

    listed = api.get(base).json()["data"]
    assert [s["id"] for s in listed] == [body["id"]] and listed[0]["url"] is None and listed[0]["view_count"] == 1

    r = api.post(base, {"expires_in_days": 3}, content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["param"] == "expires_in_days"
    settings.SHARE_LINK_MAX_DAYS = 7
    r = api.post(base, {"expires_in_days": 30}, content_type="application/json")
    assert r.status_code == 400 and "1, 7" in r.json()["error"]["message"]

    r = api.delete(f"/v1/shares/{body['id']}")
    assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["revoked_at"]
    assert Client().get(body["url"]).status_code == 404
    assert api.delete("/v1/shares/shr_000000000000000000000000").status_code == 404


def test_share_tokens_never_reach_the_logs():
    assert redact("GET /s/AbC-123_x/ HTTP/1.1") == "GET /s/[redacted]/ HTTP/1.1"
    assert redact("/s/AbC-123_x/video") == "/s/[redacted]/video"
    assert redact("next=%2Fs%2FAbC-123_x%2F") == "next=%2Fs%2F[redacted]%2F"
    assert redact("/o/acme/videos/video_123/") == "/o/acme/videos/video_123/"


def test_a_deleted_video_closes_its_links(tenants, make_videos):
    from django.core.files.storage import default_storage

    from apps.generations import services as generation_services

    gone, missing = make_videos(2, stored=True)
    _, gone_token = _share(tenants, gone)
    _, missing_token = _share(tenants, missing)
    with org_scope(tenants.org_a):
        generation_services.generation_delete(by=_membership(tenants, tenants.alice), generation=gone)
    default_storage.delete(missing.video_file)  # lost behind the row's back: a 404, never a 500
    assert Client().get(f"/s/{gone_token}/").status_code == 404
    assert Client().get(f"/s/{missing_token}/video").status_code == 404


def test_without_js_the_new_link_is_shown_on_a_page_of_its_own(tenants, make_videos):
    (gen,) = make_videos(1, stored=True)
    client = tenants.client_for(tenants.alice)
    r = client.post(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/shares/", {"expires_in": "1"})
    page = r.content.decode()
    assert r.status_code == 200 and "shown only once" in page and "Back to the video" in page
    token = SHARE_URL.search(page).group(2)
    assert Client().get(f"/s/{token}/").status_code == 200
    # shown once: the video's page lists the link without its URL
    detail = client.get(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/").content.decode()
    assert token not in detail
    assert re.search(r"\b1 view\b", detail)
    r = client.post(f"/o/{tenants.org_a.slug}/videos/{gen.public_id}/shares/", {"expires_in": "5"})
    assert r.status_code == 422 and ShareLink.all_orgs.count() == 1


def test_operators_see_links_read_only_without_the_digest(tenants, make_videos, django_user_model):
    (gen,) = make_videos(1, stored=True)
    share, token = _share(tenants, gen)
    staff = django_user_model.objects.create_superuser("ops@example.com", "pw-ops-12345")
    client = tenants.client_for(staff)
    listing = client.get("/admin/sharing/sharelink/").content.decode()
    assert share.public_id in listing
    change = client.get(f"/admin/sharing/sharelink/{share.pk}/change/").content.decode()
    assert share.token_digest not in change and token not in change
