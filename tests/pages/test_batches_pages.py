"""The Playground's batch mode (pasted prompts, CSV and JSONL with per-row errors, the live
estimate), the batch page (its polling fragment, retry, the zip), the Gallery's batch filter and
card link, tenancy, and the batch page's constant query count."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.generations import engine
from apps.generations.models import Batch, Generation, State
from tests.generations.helpers import ledger_of, run_steps

from .conftest import HX, assert_forms_work_without_js, page_url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_sends(monkeypatch):
    monkeypatch.setattr(engine, "schedule", lambda step, gen, delay: None)


def _form(**extra) -> dict:
    return {"model": "sandbox-video", "seconds": "2", "size": "", "concurrency": "2", **extra}


def _post(tenants, data, *, estimate=False, user=None):
    url = page_url(tenants.org_a, "batches/") + ("?estimate=1" if estimate else "")
    return tenants.client_for(user or tenants.alice).post(url, data, **({"headers": HX} if estimate else {}))


def test_batch_mode_renders_and_its_forms_work_without_js(tenants):
    r = tenants.client_for(tenants.alice).get(page_url(tenants.org_a, "playground/"), {"mode": "batch"})
    html = r.content.decode()
    assert r.status_code == 200 and 'id="batch-form"' in html and 'aria-current="page">Batch' in html
    assert "Prompts, one per line" in html and 'name="file"' in html and "No batches yet." in html
    assert_forms_work_without_js(html)


def test_the_live_estimate_counts_the_whole_batch(tenants, priced_sandbox):
    r = _post(tenants, _form(prompts="a fox\n\na boat\na lighthouse\n"), estimate=True)
    html = r.content.decode()
    assert r.status_code == 200 and "<html" not in html
    assert 'data-batch-count="3"' in html and "$3.00" in html and not Batch.all_orgs.exists()
    tenants.org_a.monthly_budget = Decimal("2.00")
    tenants.org_a.save(update_fields=["monthly_budget"])
    html = _post(tenants, _form(prompts="a\nb\nc"), estimate=True).content.decode()
    assert "would go over budget" in html
    html = _post(tenants, _form(prompts="a\nb", seconds="99"), estimate=True).content.decode()
    assert "Row 1:" in html and "Row 2:" in html


def test_pasted_prompts_make_a_batch_and_redirect_to_its_page(tenants, priced_sandbox):
    r = _post(tenants, _form(prompts="a red fox\na paper boat\na lighthouse"))
    batch = Batch.all_orgs.get()
    assert r.status_code == 302 and r["Location"] == page_url(tenants.org_a, f"batches/{batch.public_id}/")
    items = list(Generation.all_orgs.filter(batch=batch).order_by("batch_index"))
    assert [g.prompt for g in items] == ["a red fox", "a paper boat", "a lighthouse"]
    assert all(ledger_of(g) == {"hold": [Decimal("1.0000")]} for g in items)
    assert batch.concurrency == 2 and [g.batch_waiting for g in items] == [False, False, True]


def test_a_csv_with_per_row_model_duration_and_size(tenants, priced_sandbox):
    csv = "prompt,model,seconds,size,image_url\na fox,,,,\na boat,sandbox-video,4,720x1280,\na cat,,2,,\n"
    upload = SimpleUploadedFile("batch.csv", csv.encode(), content_type="text/csv")
    r = _post(tenants, _form(file=upload))
    assert r.status_code == 302, r.content.decode()[-3000:]
    items = list(Generation.all_orgs.order_by("batch_index"))
    assert [(g.prompt, g.seconds, g.size) for g in items] == [
        ("a fox", 2, "1280x720"),
        ("a boat", 4, "720x1280"),
        ("a cat", 2, "1280x720"),
    ]


def test_a_row_image_url_goes_to_the_create_checks_with_its_row_number(tenants, priced_sandbox):
    csv = "prompt,image_url\na fox,\na cat,https://example.com/cat.png\na dog,ftp://example.com/dog.png\n"
    r = _post(tenants, _form(file=SimpleUploadedFile("b.csv", csv.encode())))
    assert r.status_code == 422 and "Row 3: image_url must be an https URL." in r.content.decode()
    csv = "prompt,image_url\na fox,\na cat,https://example.com/cat.png\n"
    r = _post(tenants, _form(file=SimpleUploadedFile("b.csv", csv.encode())))
    # the sandbox makes text-to-video only: the catalog's rule, named for the row
    assert r.status_code == 422 and "Row 2: Sandbox" in r.content.decode() and "input image" in r.content.decode()
    assert not Generation.all_orgs.exists()


def test_a_jsonl_upload(tenants, priced_sandbox):
    jsonl = '{"prompt": "one", "duration": 4}\n\n{"prompt": "two", "size": "720x1280"}\n'
    r = _post(tenants, _form(file=SimpleUploadedFile("b.jsonl", jsonl.encode())))
    assert r.status_code == 302
    assert sorted(Generation.all_orgs.values_list("prompt", "seconds", "size")) == [
        ("one", 4, "1280x720"),
        ("two", 2, "720x1280"),
    ]


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("b.txt", b"prompt\nx\n", "Upload a .csv or .jsonl file."),
        ("b.csv", b"title\nx\n", "needs a header row with a prompt column"),
        ("b.csv", b"prompt,colour\nx,red\n", "Unknown CSV columns: colour"),
        ("b.csv", b"prompt,seconds\nok,2\nbad,two\n,2\n", "Row 2: seconds must be a whole number."),
        ("b.csv", "prompt\n\N{SNOWMAN}\n".encode("utf-16"), "not UTF-8"),
        ("b.jsonl", b'{"prompt": "a"}\n[1]\n{"prompt": "b", "x": 1}\n', "Row 2: not a JSON object."),
        ("b.jsonl", b'{"prompt": "a", "seconds": 2.5}\n', "Row 1: seconds must be a whole number."),
    ],
)  # fmt: skip
def test_uploads_are_checked_with_clear_per_row_errors(tenants, priced_sandbox, name, content, message):
    r = _post(tenants, _form(file=SimpleUploadedFile(name, content)))
    assert r.status_code == 422 and message in r.content.decode()
    assert not Batch.all_orgs.exists() and not Generation.all_orgs.exists()


def test_an_oversized_upload_is_refused(tenants, settings):
    settings.BATCH_UPLOAD_MAX_BYTES = 100
    r = _post(tenants, _form(file=SimpleUploadedFile("b.csv", b"prompt\n" + b"x" * 200)))
    assert r.status_code == 422 and "the limit is" in r.content.decode()


def test_a_refused_item_names_its_row_and_nothing_is_held(tenants, priced_sandbox):
    r = _post(tenants, _form(prompts="fine\nalso fine", seconds="99"))
    assert r.status_code == 422 and "Row 1:" in r.content.decode()
    tenants.org_a.monthly_budget = Decimal("1.50")
    tenants.org_a.save(update_fields=["monthly_budget"])
    r = _post(tenants, _form(prompts="a\nb"))
    assert r.status_code == 402 and "$2.00 in total" in r.content.decode() and "$1.50 remains" in r.content.decode()
    assert not Generation.all_orgs.exists()


def test_viewers_cannot_create_a_batch(tenants):
    from apps.accounts.models import Membership, Role

    Membership.all_orgs.filter(user=tenants.bob).update(role=Role.VIEWER)
    r = _post(tenants, _form(prompts="x"), user=tenants.bob)
    assert r.status_code == 403 and not Batch.all_orgs.exists()


def _batch(tenants, prompts="one\ntwo\n[fail] three"):
    _post(tenants, _form(prompts=prompts, concurrency="3"))
    return Batch.all_orgs.latest("id")


def test_the_batch_page_shows_items_totals_and_stops_polling_when_done(tenants, priced_sandbox):
    batch = _batch(tenants)
    client = tenants.client_for(tenants.alice)
    url = page_url(tenants.org_a, f"batches/{batch.public_id}/")
    r = client.get(url)
    html = r.content.decode()
    assert r.status_code == 200 and "Batch of 3 videos" in html and 'hx-trigger="every 1s"' in html
    assert "Download zip" not in html and 'data-total="held">$3.00' in html
    assert_forms_work_without_js(html)
    fragment = client.get(url, headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    for gen in Generation.all_orgs.filter(batch=batch):
        run_steps(gen)
    fragment = client.get(url, headers=HX)
    html = fragment.content.decode()
    assert fragment.status_code == 286 and 'hx-trigger="every 1s"' not in html
    assert 'data-total="charged">$2.00' in html and "Download zip (2 videos)" in html and "Retry 1 failed" in html

    zipped = client.get(page_url(tenants.org_a, f"batches/{batch.public_id}/content"))
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(zipped.streaming_content))) as z:
        assert len(z.namelist()) == 2

    r = client.post(page_url(tenants.org_a, f"batches/{batch.public_id}/retry/"))
    assert r.status_code == 302
    assert Generation.all_orgs.filter(batch=batch, batch_index=2).count() == 2


def test_gallery_filters_by_batch_and_cards_link_to_it(tenants, priced_sandbox, make_videos):
    make_videos(2)
    batch = _batch(tenants, "in the batch\nalso in it")
    client = tenants.client_for(tenants.alice)
    html = client.get(page_url(tenants.org_a, "videos/"), {"batch": batch.public_id}).content.decode()
    assert "2 videos match" in html and "in the batch" in html and "video number" not in html
    assert f'href="/o/{tenants.org_a.slug}/batches/{batch.public_id}/"' in html and "batch #1" in html
    html = client.get(page_url(tenants.org_a, "videos/")).content.decode()
    assert "4 videos." in html
    # an id that is not a batch's shape is ignored, like any filter that does not parse
    assert client.get(page_url(tenants.org_a, "videos/"), {"batch": "../x"}).status_code == 200


def test_another_organization_gets_404_on_every_batch_route(tenants, priced_sandbox):
    batch = _batch(tenants)
    charlie = tenants.client_for(tenants.charlie)
    for suffix in ("", "content", "retry/"):
        url = page_url(tenants.org_a, f"batches/{batch.public_id}/{suffix}")
        assert charlie.get(url).status_code == 404 and charlie.post(url).status_code == 404
    own = page_url(tenants.org_b, f"batches/{batch.public_id}/")
    assert charlie.get(own).status_code == 404
    assert batch.public_id not in charlie.get(page_url(tenants.org_b, "batches/")).content.decode()


def test_the_batch_page_queries_do_not_grow_with_items(tenants, priced_sandbox, django_assert_num_queries):
    small = _batch(tenants, "a\nb")
    big = _batch(tenants, "\n".join(f"item {i}" for i in range(30)))
    Generation.all_orgs.filter(batch=big, batch_index__lt=10).update(state=State.FAILED)
    client = tenants.client_for(tenants.alice)
    for headers in ({}, HX):
        url = page_url(tenants.org_a, f"batches/{small.public_id}/")
        client.get(url, headers=headers)
        with CaptureQueriesContext(connection) as few:
            assert client.get(url, headers=headers).status_code == 200
        count = len(few.captured_queries)
        with django_assert_num_queries(count):
            client.get(page_url(tenants.org_a, f"batches/{big.public_id}/"), headers=headers)
    with CaptureQueriesContext(connection) as listing:
        client.get(page_url(tenants.org_a, "batches/"))
    count = len(listing.captured_queries)
    _batch(tenants, "more\nand more")
    with django_assert_num_queries(count):
        client.get(page_url(tenants.org_a, "batches/"))


def test_batch_mode_queries_do_not_grow_with_batches(tenants, priced_sandbox, django_assert_num_queries):
    _batch(tenants, "a\nb")
    client = tenants.client_for(tenants.alice)
    url = page_url(tenants.org_a, "playground/")
    client.get(url, {"mode": "batch"})
    with CaptureQueriesContext(connection) as few:
        assert client.get(url, {"mode": "batch"}).status_code == 200
    count = len(few.captured_queries)
    for _ in range(6):
        _batch(tenants, "\n".join(f"item {i}" for i in range(8)))
    with django_assert_num_queries(count):
        assert client.get(url, {"mode": "batch"}).status_code == 200
