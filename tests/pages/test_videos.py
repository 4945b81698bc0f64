"""One video: its page, the status fragment job cards poll (286 once ended), the tenant-checked
content view (with byte ranges) and delete."""

from __future__ import annotations

import pytest

from apps.generations.models import Generation, State

from .conftest import HX, VIDEO_BYTES, assert_forms_work_without_js, page_url

pytestmark = pytest.mark.django_db


def url(gen, suffix: str = "") -> str:
    return page_url(gen.organization, f"videos/{gen.public_id}/{suffix}")


def test_detail_page(tenants, make_videos):
    (gen,) = make_videos(1, stored=True, prompt="a lighthouse at dusk")
    r = tenants.client_for(tenants.bob).get(url(gen))
    html = r.content.decode()
    assert r.status_code == 200 and "<html" in html
    assert "a lighthouse at dusk" in html and "Runway Gen-4.5" in html and "$0.24" in html
    assert f'src="{url(gen, "content")}"' in html and f'poster="{url(gen, "content")}?variant=thumbnail"' in html
    assert 'hx-trigger="every 1s"' not in html  # a finished video does not poll
    assert "Delete…" not in html  # bob did not make it and does not manage the org
    assert_forms_work_without_js(html)


def test_status_fragment_polls_while_running_and_stops_with_286(tenants, make_videos):
    (running,) = make_videos(1, state=State.IN_PROGRESS, progress=40)
    client = tenants.client_for(tenants.alice)
    r = client.get(url(running), headers=HX)
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html
    assert 'hx-trigger="every 1s"' in html and 'value="40"' in html and 'data-progress="40"' in html

    Generation.all_orgs.filter(pk=running.pk).update(state=State.COMPLETED, progress=100, video_file="x.mp4")
    r = client.get(url(running), headers=HX)
    html = r.content.decode()
    assert r.status_code == 286 and "<html" not in html
    assert "<video" in html and 'data-progress="100"' in html and "hx-trigger" not in html

    (failed,) = make_videos(1, state=State.FAILED, error_message="The provider refused the prompt.")
    r = client.get(url(failed), headers=HX)
    assert r.status_code == 286 and "The provider refused the prompt." in r.content.decode()


def test_content_streams_the_stored_video_with_ranges(tenants, make_videos):
    (gen,) = make_videos(1, stored=True)
    client = tenants.client_for(tenants.bob)
    r = client.get(url(gen, "content"))
    assert r.status_code == 200 and r["Content-Type"] == "video/mp4" and r["Accept-Ranges"] == "bytes"
    assert b"".join(r.streaming_content) == VIDEO_BYTES

    r = client.get(url(gen, "content"), headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r["Content-Range"] == f"bytes 100-199/{len(VIDEO_BYTES)}"
    assert b"".join(r.streaming_content) == VIDEO_BYTES[100:200] and r["Content-Length"] == "100"
    r = client.get(url(gen, "content"), headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and b"".join(r.streaming_content) == VIDEO_BYTES[-10:]
    r = client.get(url(gen, "content"), headers={"Range": "bytes=10000-"})
    assert r.status_code == 206 and b"".join(r.streaming_content) == VIDEO_BYTES[10000:]
    r = client.get(url(gen, "content"), headers={"Range": f"bytes={len(VIDEO_BYTES)}-"})
    assert r.status_code == 416 and r["Content-Range"] == f"bytes */{len(VIDEO_BYTES)}"

    r = client.get(url(gen, "content"), {"variant": "thumbnail"})
    assert r.status_code == 200 and r["Content-Type"] == "image/jpeg"
    assert client.get(url(gen, "content"), {"variant": "poster"}).status_code == 404


def test_content_of_an_unfinished_video_is_404(tenants, make_videos):
    (gen,) = make_videos(1, state=State.IN_PROGRESS)
    assert tenants.client_for(tenants.alice).get(url(gen, "content")).status_code == 404


def test_outsider_gets_404_everywhere(tenants, make_videos):
    (gen,) = make_videos(1, stored=True)
    charlie = tenants.client_for(tenants.charlie)
    for suffix in ("", "content", "delete/"):
        assert charlie.get(url(gen, suffix)).status_code == 404
    assert charlie.post(url(gen, "delete/")).status_code == 404
    # nor through his own organization's URL
    assert charlie.get(page_url(tenants.org_b, f"videos/{gen.public_id}/content")).status_code == 404
    assert Generation.all_orgs.get(pk=gen.pk).deleted_at is None


def test_delete_with_htmx_and_as_a_plain_form(tenants, make_videos):
    first, second = make_videos(2, stored=True)
    client = tenants.client_for(tenants.alice)
    r = client.get(url(first, "delete/"))  # the no-JS confirmation page
    assert r.status_code == 200 and "Delete this video?" in r.content.decode()
    assert_forms_work_without_js(r.content.decode())

    r = client.post(url(first, "delete/"), headers=HX)
    assert r.status_code == 200 and r.content == b""  # the card goes away
    first.refresh_from_db()
    assert first.deleted_at is not None and first.video_file == ""
    assert client.get(url(first)).status_code == 404

    r = client.post(url(second, "delete/"))
    assert r.status_code == 302 and r["Location"] == page_url(tenants.org_a, "videos/")
    assert Generation.all_orgs.get(pk=second.pk).deleted_at is not None


def test_a_member_cannot_delete_someone_elses_video(tenants, make_videos):
    (gen,) = make_videos(1, stored=True)
    bob = tenants.client_for(tenants.bob)
    r = bob.post(url(gen, "delete/"), headers=HX)
    html = r.content.decode()
    assert r.status_code == 403 and "<html" not in html and "Only the member who made it" in html
    assert f'id="card-{gen.public_id}"' in html  # the card stays, with the message
    r = bob.post(url(gen, "delete/"))
    assert r.status_code == 302 and r["Location"] == url(gen)
    assert Generation.all_orgs.get(pk=gen.pk).deleted_at is None
