"""Issue 19's "done when" for batches, in a real browser against a real worker: 20 prompts pasted in
the Playground's batch mode show a live estimate of the whole batch inside the budget, run with
live progress on the batch page until every item is done, and download as one zip."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client

from apps.generations.models import Batch, Generation

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PROMPTS = [f"a paper boat on a calm lake, take {i}" for i in range(1, 21)]


def _logged_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
          "url": live_server.url}]
    )  # fmt: skip


def test_twenty_pasted_prompts_run_with_live_progress_and_download_as_one_zip(
    priced_sandbox, live_server, live_engine, tenants, open_page, console
):
    tenants.org_a.monthly_budget = Decimal("25.00")  # the batch ($20.00 at $1.00 a video) fits
    tenants.org_a.save(update_fields=["monthly_budget"])
    page = open_page("alice")
    _logged_in(page, live_server, tenants.alice)
    page.goto(f"/o/{tenants.org_a.slug}/playground/")
    page.get_by_role("link", name="Batch").click()
    page.get_by_label("Model").select_option("sandbox-video")
    page.get_by_label("Duration (s)").fill("2")
    page.get_by_label("Prompts, one per line").fill("\n".join(PROMPTS))
    # the estimate follows the form as it changes (each change posts it; the last answer stays)
    estimate = page.locator('#batch-estimate [data-batch-count="20"] ~ [data-batch-total]')
    estimate.wait_for()
    assert estimate.inner_text() == "$20.00"
    assert "over budget" not in page.locator("#batch-estimate").inner_text()

    page.get_by_role("button", name="Generate all").click()
    page.wait_for_url("**/batches/batch_*/")
    batch = Batch.all_orgs.get()
    assert batch.item_count == 20 and page.locator("table.batch-items tbody tr").count() == 20
    # live: the progress fragment replaces itself until every item is done, then stops polling
    seen_running = page.locator("#batch-progress").get_attribute("data-status") == "in_progress"
    page.wait_for_selector('#batch-progress[data-status="completed"]', timeout=120_000)
    assert seen_running
    assert page.locator('table.batch-items tr[data-state="completed"]').count() == 20
    assert page.locator('[data-total="charged"]').inner_text() == "$20.00"
    screenshot(page, "batch")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download zip (20 videos)").click()
    data = download.value.path().read_bytes()
    items = list(Generation.all_orgs.filter(batch=batch).order_by("batch_index"))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.namelist() == [f"{i + 1:03d}-{g.public_id}.mp4" for i, g in enumerate(items)]
        assert [z.getinfo(n).file_size for n in z.namelist()] == [g.bytes for g in items]
    assert console.errors == []
