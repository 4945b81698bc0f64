"""A new team in a real browser with today's suppliers: add a fal key and a Replicate key in
Settings, pick the routed Seedance 2.0 in the Playground (it says where it will run and at what
price), generate, and watch it finish and play; then pin Replicate and generate again; the
Routing settings page shows where each model runs. Against the fal and Replicate emulators,
through ``live_server`` and a real Celery worker (``live_engine``)."""

from __future__ import annotations

import re

import pytest

from apps.generations.models import Generation
from apps.providers import catalog

from .conftest import choose_option
from .test_team_journey import expect, generate, sign_up, wait_finished

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def add_key(page, provider: str, secret: str) -> None:
    page.locator("select[data-key-provider]").select_option(provider)
    field = page.locator("[data-key-field=api_key] input")
    field.fill(secret)
    page.get_by_role("button", name="Check and add key").click()
    expect()(page.locator(f"[data-provider={provider}] .badge.ok")).to_have_text("Valid")


def test_a_team_generates_with_fal_and_replicate(live_server, live_engine, tenants, open_page, console):
    fal, replicate = live_engine.emulators["fal"], live_engine.emulators["replicate"]
    page = open_page("omar")
    sign_up(page, "omar@example.com", "Omar", "Omar Motion")
    expect()(page).to_have_url(re.compile(r"/o/[\w-]+/playground/$"))

    page.get_by_role("link", name="Settings", exact=True).click()
    page.locator(".subnav").get_by_role("link", name="Keys & tokens").click()
    add_key(page, "fal", fal.key_fields()["api_key"])
    add_key(page, "replicate", replicate.key_fields()["api_key"])

    page.get_by_role("link", name="Playground").click()
    groups = page.locator("#id_model optgroup").evaluate_all("gs => gs.map(g => g.label)")
    assert "Seedance 2.0" in groups and "Veo 3.1" in groups, groups
    options = page.locator("#id_model option").evaluate_all("os => os.map(o => o.value)")
    assert {"seedance-2.0", "fal/seedance-2.0", "replicate/seedance-2.0", "veo-3.1"} <= set(options)

    # routed: the catalog's order puts fal before Replicate; the estimate is fal's price
    choose_option(page, "#id_model", "seedance-2.0")
    expect()(page.locator(".runs-on")).to_contain_text("Will run on fal.ai")
    model = catalog.get_model("fal/seedance-2.0")
    price = model.cost(seconds=model.default_seconds, size=model.default_size)
    expect()(page.locator("#playground-options .estimate-value")).to_have_text(f"${price:.2f}")
    card = generate(page, prompt="A kite over dunes at noon", model="seedance-2.0")
    wait_finished(card)
    routed = Generation.all_orgs.get(prompt="A kite over dunes at noon")
    assert (routed.provider, routed.requested_model, routed.final_cost) == ("fal", "seedance-2.0", price)

    # pinned: Replicate, at Replicate's price; the estimate says nothing of routing
    choose_option(page, "#id_model", "replicate/seedance-2.0")
    expect()(page.locator(".runs-on")).to_have_count(0)
    card = generate(page, prompt="The same kite at dusk", model="replicate/seedance-2.0")
    wait_finished(card)
    pinned = Generation.all_orgs.get(prompt="The same kite at dusk")
    rep = catalog.get_model("replicate/seedance-2.0")
    assert pinned.state == "completed", pinned.state
    assert pinned.provider == "replicate" and pinned.final_cost == rep.cost(seconds=pinned.seconds, size=pinned.size)
    assert fal.stats()["jobs_created"] == 1 and replicate.stats()["jobs_created"] == 1

    # the routing page: where each model runs now
    page.get_by_role("link", name="Settings", exact=True).click()
    page.locator(".subnav").get_by_role("link", name="Routing").click()
    row = page.locator("tr[data-model='seedance-2.0']")
    expect()(row).to_contain_text("runs here")
    expect()(row.locator("strong")).to_have_text("fal")
    assert console.errors == [], console.errors
