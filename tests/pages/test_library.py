"""The library (issue 19, item 6): a favourite star and one tag per video, set from the Gallery card
and the video's page (htmx and plain forms) and from the API, and the Gallery's and the API's
filters by tag, favourite and "not as asked"."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Membership, Role
from apps.core.scoping import org_scope
from apps.generations.models import Generation
from tests.pages.conftest import HX, page_url

pytestmark = pytest.mark.django_db

MISMATCH = {"field": "seconds", "asked": 8, "delivered": 5.0, "message": "Asked for 8 s, delivered 5.0 s."}


def _library(tenants, gen) -> str:
    return page_url(tenants.org_a, f"videos/{gen.public_id}/library/")


def _row(gen) -> Generation:
    return Generation.all_orgs.get(pk=gen.pk)


def test_star_and_tag_from_the_gallery_card_with_htmx(tenants, make_videos):
    (gen,) = make_videos(1)
    client = tenants.client_for(tenants.alice)
    r = client.post(_library(tenants, gen), {"favourite": "true"}, headers=HX)
    assert r.status_code == 200 and "★ Favourite" in r.content.decode() and 'aria-pressed="true"' in r.content.decode()
    assert _row(gen).favourite is True and _row(gen).tag == ""  # the tag was not sent: left as it was
    r = client.post(_library(tenants, gen), {"tag": "  Client   A "}, headers=HX)
    assert r.status_code == 200 and 'value="client a"' in r.content.decode()
    assert (_row(gen).favourite, _row(gen).tag) == (True, "client a")
    page = client.get(page_url(tenants.org_a, "videos/")).content.decode()
    assert 'class="badge tag"' in page and '<option value="client a">' in page
    r = client.post(_library(tenants, gen), {"favourite": "false", "tag": ""}, headers=HX)
    assert (_row(gen).favourite, _row(gen).tag) == (False, "")


def test_without_js_the_form_goes_back_where_it_came_from(tenants, make_videos):
    (gen,) = make_videos(1)
    client = tenants.client_for(tenants.alice)
    back = page_url(tenants.org_a, "videos/?q=video")
    r = client.post(_library(tenants, gen), {"favourite": "true", "next": back})
    assert r.status_code == 302 and r["Location"] == back and _row(gen).favourite
    r = client.post(_library(tenants, gen), {"favourite": "false", "next": "https://evil.example/"})
    assert r.status_code == 302 and r["Location"] == page_url(tenants.org_a, f"videos/{gen.public_id}/")
    # the video's page has the same controls, with CSRF
    page = client.get(page_url(tenants.org_a, f"videos/{gen.public_id}/")).content.decode()
    assert f'id="library-{gen.public_id}"' in page and "csrfmiddlewaretoken" in page


def test_a_bad_tag_is_refused_with_the_reason(tenants, make_videos):
    (gen,) = make_videos(1, tag="keep")
    client = tenants.client_for(tenants.alice)
    for bad in ("x" * 41, "<script>", "-leading"):
        r = client.post(_library(tenants, gen), {"tag": bad}, headers=HX)
        assert r.status_code == 422, bad
        assert 'role="alert"' in r.content.decode()
    assert _row(gen).tag == "keep"


def test_viewers_see_but_cannot_change(tenants, make_videos):
    (gen,) = make_videos(1, tag="keep", favourite=True)
    with org_scope(tenants.org_a):
        Membership.objects.filter(user=tenants.bob).update(role=Role.VIEWER)
    bob = tenants.client_for(tenants.bob)
    r = bob.post(_library(tenants, gen), {"favourite": "false"}, headers=HX)
    assert r.status_code == 403 and _row(gen).favourite is True
    page = bob.get(page_url(tenants.org_a, f"videos/{gen.public_id}/")).content.decode()
    assert "★ favourite" in page and 'name="favourite"' not in page


def test_gallery_filters_by_tag_favourite_and_flag(tenants, make_videos):
    tagged = make_videos(2, tag="client a", prompt="tagged one")
    starred = make_videos(1, favourite=True, prompt="starred one")
    flagged = make_videos(1, output_mismatch=[MISMATCH], prompt="flagged one")
    make_videos(3, prompt="plain one")
    client = tenants.client_for(tenants.alice)

    def shown(**params) -> set[str]:
        r = client.get(page_url(tenants.org_a, "videos/"), params, headers=HX)
        assert r.status_code == 200
        return {g.public_id for g in Generation.all_orgs.all() if f'id="card-{g.public_id}"' in r.content.decode()}

    assert shown(tag="Client A") == {g.public_id for g in tagged}
    assert shown(favourite="on") == {g.public_id for g in starred}
    assert shown(flagged="on") == {g.public_id for g in flagged}
    assert shown(tag="client a", favourite="on") == set()
    assert len(shown()) == 7
    assert len(shown(tag="<bad>")) == 7  # a tag that cannot exist filters nothing (the form ignores it)


def test_api_patch_sets_favourite_and_tag(tenants, make_videos):
    (gen,) = make_videos(1)
    api = tenants.api_client_for(tenants.alice_token)
    url = f"/v1/video/generations/{gen.public_id}"
    r = api.patch(url, {"favourite": True, "tag": "Launch Day"}, content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json()["favourite"] is True and r.json()["tag"] == "launch day"
    assert (_row(gen).favourite, _row(gen).tag) == (True, "launch day")
    assert api.get(url).json()["tag"] == "launch day"
    r = api.patch(url, {"tag": ""}, content_type="application/json")
    assert r.json()["tag"] is None and r.json()["favourite"] is True
    r = api.patch(url, {"tag": "a" * 41}, content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["param"] == "tag"
    r = api.patch(url, {"favourite": "maybe"}, content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["param"] == "favourite"
    assert api.patch(url, {}, content_type="application/json").status_code == 400
    other = tenants.api_client_for(tenants.charlie_token)
    assert other.patch(url, {"favourite": False}, content_type="application/json").status_code == 404
    assert _row(gen).favourite is True


def test_api_patch_is_refused_to_viewers(tenants, make_videos):
    (gen,) = make_videos(1)
    with org_scope(tenants.org_a):
        Membership.objects.filter(user=tenants.bob).update(role=Role.VIEWER)
    r = tenants.api_client_for(tenants.bob_token).patch(
        f"/v1/video/generations/{gen.public_id}", {"favourite": True}, content_type="application/json"
    )
    assert r.status_code == 403 and _row(gen).favourite is False


def test_api_list_filters(tenants, make_videos):
    tagged = make_videos(2, tag="client a")
    starred = make_videos(1, favourite=True)
    flagged = make_videos(1, output_mismatch=[MISMATCH])
    make_videos(2)
    api = tenants.api_client_for(tenants.alice_token)

    def ids(**params) -> set[str]:
        r = api.get("/v1/video/generations", params)
        assert r.status_code == 200, r.content
        return {v["id"] for v in r.json()["data"]}

    assert ids(tag="Client A") == {g.public_id for g in tagged}
    assert ids(favourite="true") == {g.public_id for g in starred}
    assert ids(flagged="true") == {g.public_id for g in flagged}
    assert len(ids(flagged="false")) == 5 and len(ids(favourite="false")) == 5
    for name in ("favourite", "flagged"):
        r = api.get("/v1/video/generations", {name: "yes"})
        assert r.status_code == 400 and r.json()["error"]["param"] == name
    r = api.get("/v1/video/generations", {"tag": "<b>"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tag"


def test_api_list_queries_do_not_grow_with_filters(tenants, make_videos, django_assert_num_queries):
    make_videos(5, tag="client a", favourite=True, output_mismatch=[MISMATCH])
    api = tenants.api_client_for(tenants.alice_token)
    params = {"tag": "client a", "favourite": "true", "flagged": "true"}
    api.get("/v1/video/generations", params)
    with CaptureQueriesContext(connection) as few:
        assert len(api.get("/v1/video/generations", params).json()["data"]) == 5
    make_videos(40, tag="client a", favourite=True, output_mismatch=[MISMATCH])
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(api.get("/v1/video/generations", params | {"limit": "100"}).json()["data"]) == 45


def test_the_video_page_queries_do_not_grow_with_its_share_links(tenants, make_videos, django_assert_num_queries):
    from apps.sharing import services as sharing

    (gen,) = make_videos(1, stored=True)
    alice = Membership.all_orgs.select_related("organization", "user").get(user=tenants.alice)
    client = tenants.client_for(tenants.alice)
    url = page_url(tenants.org_a, f"videos/{gen.public_id}/")
    with org_scope(tenants.org_a):
        sharing.share_create(by=alice, generation=gen)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    with org_scope(tenants.org_a):
        for _ in range(6):
            sharing.share_create(by=alice, generation=gen)
        bob = Membership.objects.select_related("organization", "user").get(user=tenants.bob)
        sharing.share_create(by=bob, generation=gen)
    with django_assert_num_queries(len(few.captured_queries)):
        page = client.get(url).content.decode()
    assert page.count('<li id="share-') == 8 and page.count("Revoke this link?") == 8
