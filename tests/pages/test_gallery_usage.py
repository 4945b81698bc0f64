"""Gallery (filters, search, pagination, audio badge) and Usage (totals, breakdowns, chart, CSV,
budgets), with query counts that do not grow with the number of videos."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.generations.models import State

from .conftest import HX, assert_forms_work_without_js, page_url

pytestmark = pytest.mark.django_db


def gallery(tenants) -> str:
    return page_url(tenants.org_a, "videos/")


def usage(tenants) -> str:
    return page_url(tenants.org_a, "usage/")


def cards(html: str) -> list[str]:
    return re.findall(r'<article class="video-card" id="card-([\w]+)"', html)


# --- gallery ---------------------------------------------------------------------------------


def test_gallery_empty_state(tenants):
    r = tenants.client_for(tenants.alice).get(gallery(tenants))
    assert r.status_code == 200 and "No videos yet." in r.content.decode()


def test_gallery_lists_videos_with_player_and_actions(tenants, make_videos):
    (runway,) = make_videos(1, stored=True, prompt="lighthouse")
    (sandbox,) = make_videos(1, stored=True, provider="sandbox", model="sandbox-video", cost="0", prompt="boat")
    make_videos(1, user=tenants.bob, state=State.FAILED, prompt="broken", error_message="Refused.")
    html = tenants.client_for(tenants.alice).get(gallery(tenants)).content.decode()
    assert "<html" in html and "3 videos." in html
    boat = html[html.index(f'id="card-{sandbox.public_id}"') : html.index(f'id="card-{runway.public_id}"')]
    assert 'preload="none"' in boat and "?variant=thumbnail" in boat
    assert "♪ audio" in boat and "Remix</a>" in boat and "Download</a>" in boat and "Delete</button>" in boat
    assert "$0.00" in boat and "Alice" in boat
    light = html[html.index(f'id="card-{runway.public_id}"') :]
    light = light[: light.index("</article>")]
    assert "♪ audio" not in light and "Remix</a>" not in light and "$0.24" in light
    assert "Runway Gen-4.5 · 2 s · 1280x720" in light
    assert "Refused." in html and "no charge" in html
    assert_forms_work_without_js(html)


def test_gallery_filters_and_search(tenants, make_videos):
    make_videos(2, prompt="a lighthouse at dusk")
    make_videos(1, user=tenants.bob, provider="sandbox", model="sandbox-video", cost="0", prompt="bob's boat")
    make_videos(1, provider="kling", model="kling-v1-6", state=State.FAILED, prompt="kling fail")
    make_videos(1, prompt="old one", days_ago=40)
    client = tenants.client_for(tenants.alice)

    def count(**params) -> int:
        return len(cards(client.get(gallery(tenants), params).content.decode()))

    assert count() == 5
    assert count(member="bob@example.com") == 1
    assert count(provider="runway") == 3
    assert count(model="kling-v1-6") == 1
    assert count(status="failed") == 1
    assert count(q="LIGHTHOUSE") == 2
    today = timezone.localdate()
    assert count(date_from=(today - timedelta(days=7)).isoformat()) == 4
    assert count(date_to=(today - timedelta(days=30)).isoformat()) == 1
    assert count(date_from="not-a-date") == 5  # an unparseable filter is ignored
    html = client.get(gallery(tenants), {"q": "nothing like this"}).content.decode()
    assert "No videos match these filters." in html


def test_gallery_pagination_and_htmx_partial(tenants, make_videos):
    make_videos(30)
    client = tenants.client_for(tenants.alice)
    html = client.get(gallery(tenants)).content.decode()
    assert len(cards(html)) == 12 and "Page 1 of 3" in html
    assert 'href="?page=2" hx-get="?page=2"' in html
    r = client.get(gallery(tenants), {"page": 3, "provider": "runway"}, headers=HX)
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html and html.lstrip().startswith('<section id="gallery-results"')
    assert len(cards(html)) == 6 and "Page 3 of 3" in html
    assert 'href="?provider=runway&amp;page=2"' in html  # filters survive paging


def test_gallery_outsider_gets_404(tenants, make_videos):
    make_videos(1)
    assert tenants.client_for(tenants.charlie).get(gallery(tenants)).status_code == 404


# --- usage -----------------------------------------------------------------------------------


def test_usage_totals_breakdowns_chart_and_budgets(tenants, make_videos):
    tenants.org_a.monthly_budget = 10
    tenants.org_a.save()
    make_videos(2, cost="0.60")
    make_videos(1, user=tenants.bob, provider="kling", model="kling-v1-6", cost="0.28", seconds=5)
    make_videos(1, state=State.FAILED, cost="0.50")
    r = tenants.client_for(tenants.alice).get(usage(tenants))
    html = r.content.decode()
    assert r.status_code == 200 and "<html" in html
    assert 'data-stat="cost">$1.48<' in html and 'data-stat="count">4<' in html
    assert 'data-stat="seconds">9<' in html and 'data-stat="success">75%<' in html
    assert "<td>runway/gen4.5</td><td>2</td><td>$1.20</td>" in html
    assert "<td>kling</td><td>1</td><td>$0.28</td>" in html
    assert "<td>bob@example.com</td><td>1</td><td>$0.28</td>" in html
    assert "<svg" in html and html.count("<rect ") == 1  # all today: one bar
    assert "$1.48 of $10.00" in html and 'aria-valuenow="15"' in html  # the org budget bar
    today = timezone.localdate()
    assert f'value="{today.replace(day=1).isoformat()}"' in html  # this month by default


def test_usage_range_and_htmx_partial(tenants, make_videos):
    make_videos(1, cost="1.00", days_ago=40)
    make_videos(1, cost="0.50")
    client = tenants.client_for(tenants.alice)
    today = timezone.localdate()
    start = (today - timedelta(days=45)).isoformat()
    r = client.get(usage(tenants), {"start": start, "end": today.isoformat()}, headers=HX)
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html and html.lstrip().startswith('<div id="usage-report"')
    assert 'data-stat="cost">$1.50<' in html and html.count("<rect ") == 2
    r = client.get(usage(tenants), {"start": today.isoformat(), "end": start})
    assert r.status_code == 422 and "must not be before" in r.content.decode()
    assert (
        "No spending in this range."
        in client.get(usage(tenants), {"start": "2020-01-01", "end": "2020-01-31"}).content.decode()
    )


def test_usage_csv(tenants, make_videos):
    make_videos(2, cost="0.60")
    make_videos(1, user=tenants.bob, provider="kling", model="kling-v1-6", cost="0.28", seconds=5)
    today = timezone.localdate()
    r = tenants.client_for(tenants.alice).get(usage(tenants), {"format": "csv"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    name = f"usage-{tenants.org_a.slug}-{today.replace(day=1):%Y%m%d}-{today:%Y%m%d}.csv"
    assert r["Content-Disposition"] == f'attachment; filename="{name}"'
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0] == ["date", "provider", "model", "member", "videos", "seconds", "cost_usd"]
    assert sorted(rows[1:]) == [
        [today.isoformat(), "kling", "kling-v1-6", "bob@example.com", "1", "5", "0.2800"],
        [today.isoformat(), "runway", "gen4.5", "alice@example.com", "2", "4", "1.2000"],
    ]


def test_usage_outsider_gets_404(tenants):
    charlie = tenants.client_for(tenants.charlie)
    assert charlie.get(usage(tenants)).status_code == 404
    assert charlie.get(usage(tenants), {"format": "csv"}).status_code == 404


# --- query counts ----------------------------------------------------------------------------

MISMATCH = {"field": "seconds", "asked": 8, "delivered": 5.0, "message": "Asked for 8 s, delivered 5.0 s."}


@pytest.mark.parametrize(
    "path,params",
    [("videos/", {}), ("videos/", {"provider": "runway", "q": "video", "page": "2"}), ("usage/", {}),
     ("usage/", {"format": "csv"}), ("playground/", {}),
     ("videos/", {"tag": "Client A", "favourite": "on", "flagged": "on"}), ("videos/", {"tag": "client a"})],
)  # fmt: skip
def test_queries_do_not_grow_with_the_number_of_videos(tenants, make_videos, django_assert_num_queries, path, params):
    make_videos(15, stored=False)
    make_videos(1, user=tenants.bob, provider="sandbox", model="sandbox-video", cost="0")
    # starred, tagged and flagged videos: the library filters and badges cost no query per card
    make_videos(13, stored=False, tag="client a", favourite=True, output_mismatch=[MISMATCH])
    make_videos(2, stored=False, tag="other")
    client = tenants.client_for(tenants.alice)
    url = page_url(tenants.org_a, path)
    client.get(url, params)  # warm up: sessions, content types
    with CaptureQueriesContext(connection) as few:
        assert client.get(url, params).status_code == 200
    make_videos(485, stored=False)
    make_videos(1, user=tenants.bob, provider="kling", model="kling-v1-6", state=State.FAILED)
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get(url, params).status_code == 200
