"""A team's day in a real browser: sign up, add a provider key, generate (sandbox and a priced
Runway model on its emulator), watch the progress and play the video, remix, delete, read the cost
on Usage, invite a member who accepts in a second browser, and check that an outsider gets 404.

Runs against pytest-django's ``live_server`` and a real Celery worker (``live_engine``). With
MEDIAROUTER_SCREENSHOTS=1 (``make screenshots``) it also saves a screenshot of each page to
docs/screenshots/ (the README's pictures); a plain test run writes nothing there.
"""

from __future__ import annotations

import re

import pytest

from apps.accounts.models import Organization
from tests.conftest import PASSWORD

from . import conftest as browser_conftest
from .conftest import PHONE, choose_option, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

JOB_TIMEOUT = 45_000  # ms: a sandbox or emulator job takes a few seconds end to end


def expect():
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def sign_up(page, email: str, name: str, org_name: str = "", next_url: str = "") -> None:
    page.goto("/signup/" + (f"?next={next_url}" if next_url else ""))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organization name").fill(org_name or f"{name}'s Studio")
    page.get_by_role("button", name="Sign up").click()


def generate(page, *, prompt: str, model: str, seconds: str | None = None):
    """Fill the playground and press Generate; returns the new job's card."""
    page.get_by_label("Prompt", exact=True).fill(prompt)
    if page.locator("#id_model").input_value() != model:
        choose_option(page, "#id_model", model)
    if seconds is not None:
        choose_option(page, "#id_seconds", seconds)
    # the cards already on the page: until htmx has swapped the answer in, the previous job's card
    # is still the ``job-new`` one, and reading it would wait on the wrong (finished) video
    before = page.locator("article.job").evaluate_all("cards => cards.map(c => c.dataset.video)")
    with page.expect_response(lambda r: "/playground/" in r.url and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Generate").click()
    assert answer.value.status == 200, answer.value.text()
    fresh = page.locator("article.job-new" + "".join(f":not([data-video='{v}'])" for v in before))
    expect()(fresh).to_have_count(1)
    video_id = fresh.get_attribute("data-video")
    card = page.locator(f"article.job[data-video={video_id}]")
    expect()(card).to_be_visible()
    return card


def wait_finished(card) -> None:
    expect()(card.locator(".video-status")).to_have_attribute("data-state", "completed", timeout=JOB_TIMEOUT)
    expect()(card.locator(".video-status")).to_have_attribute("data-progress", "100")
    expect()(card.locator("video")).to_be_visible()


def test_team_journey(live_server, live_engine, tenants, open_page, console):
    runway = live_engine.emulators["runway"]
    page = open_page("nia")

    # --- sign up: a new user and her organization; the playground is the landing page ---------
    sign_up(page, "nia@example.com", "Nia", "Nia Pictures")
    expect()(page).to_have_url(re.compile(r"/o/[\w-]+/playground/$"))
    expect()(page.get_by_role("heading", name="Playground")).to_be_visible()
    org = Organization.objects.get(name="Nia Pictures")
    # a new organization has no provider key: only the sandbox is offered
    assert page.locator("#id_model optgroup").evaluate_all("gs => gs.map(g => g.label)") == ["Sandbox"]

    # --- Settings → Keys & tokens: add the Runway emulator's key -----------------------------
    page.get_by_role("link", name="Settings", exact=True).click()
    page.locator(".subnav").get_by_role("link", name="Keys & tokens").click()
    expect()(page).to_have_url(re.compile(r"/settings/keys/$"))
    page.locator("select[data-key-provider]").select_option("runway")
    page.get_by_label("API key", exact=True).fill(runway.api_key)
    page.get_by_role("button", name="Check and add key").click()
    expect()(page.locator("[data-provider=runway] .badge.ok")).to_have_text("Valid")
    screenshot(page, "settings-keys")
    # ... and budgets, which the playground and usage pages show as bars
    page.locator(".subnav").get_by_role("link", name="Organization & budgets").click()
    page.get_by_label("Monthly budget (USD)").fill("5")
    page.get_by_label("Default per-member monthly limit (USD)").fill("2")
    page.get_by_role("button", name="Save").click()
    expect()(page.locator(".messages")).to_contain_text("saved")

    # --- generate with the sandbox: progress, then a playable video with sound ----------------
    page.get_by_role("link", name="Playground").click()
    groups = page.locator("#id_model optgroup").evaluate_all("gs => gs.map(g => g.label)")
    assert groups == ["Runway", "Sandbox"], groups
    card = generate(page, prompt="A paper boat drifting on a calm lake", model="sandbox-video", seconds="2")
    # the job is there at once, with its progress bar, before the worker has finished it
    assert card.locator(".video-status").get_attribute("data-state") != "completed"
    expect()(card.locator("progress")).to_be_attached()
    wait_finished(card)
    video = card.locator("video")
    # preload="none" with a poster: nothing of the video is fetched until play is pressed
    assert video.get_attribute("preload") == "none" and "variant=thumbnail" in video.get_attribute("poster")
    assert video.evaluate("v => v.readyState") == 0
    page.get_by_role("heading", name="Playground").click()  # a user gesture, so play() with sound is allowed
    video.evaluate("v => { v.muted = false; return v.play(); }")
    page.wait_for_function("v => v.currentTime > 0.2", arg=video.element_handle())
    assert video.evaluate("v => v.paused") is False
    assert video.evaluate("v => v.readyState") >= 2
    assert video.evaluate("v => v.duration") > 0
    assert video.evaluate("v => v.webkitAudioDecodedByteCount") > 0  # it has sound
    video.evaluate("v => v.pause()")
    # the content view answers byte ranges, so the player can seek
    ranged = page.request.get(video.evaluate("v => v.currentSrc"), headers={"Range": "bytes=0-99"})
    assert ranged.status == 206 and len(ranged.body()) == 100
    screenshot(page, "playground")

    # --- a priced model on the Runway emulator: the estimate follows the fields ---------------
    choose_option(page, "#id_model", "gen4.5")
    # the duration carries over where the new model allows it: 2 s x $0.12
    expect()(page.locator("#playground-options .estimate-value")).to_have_text("$0.24")
    expect()(page.locator("#id_seed")).to_be_visible()  # gen4.5 takes a seed
    choose_option(page, "#id_seconds", "5")
    expect()(page.locator("#playground-options .estimate-value")).to_have_text("$0.60")
    card = generate(page, prompt="Aerial shot of a lighthouse at dusk", model="gen4.5", seconds="2")
    expect()(page.locator("#playground-options .estimate-value")).to_have_text("$0.24")
    wait_finished(card)

    # --- gallery: remix the sandbox video, then delete the original ---------------------------
    page.get_by_role("link", name="Gallery").click()
    boat = page.locator("article.video-card", has_text="A paper boat")
    expect()(boat.locator(".badge.audio")).to_be_visible()  # the sandbox makes sound
    boat.get_by_role("link", name="Remix").click()
    expect()(page.locator(".remix-note")).to_contain_text("A paper boat")
    page.get_by_label("Prompt", exact=True).fill("The same paper boat, now in a thunderstorm")
    with page.expect_response(lambda r: "/playground/" in r.url and r.request.method == "POST"):
        page.get_by_role("button", name="Remix").click()
    wait_finished(page.locator("article.job-new"))

    page.get_by_role("link", name="Gallery").click()
    expect()(page.locator("article.video-card")).to_have_count(3)
    expect()(
        page.locator("article.video-card", has_text="thunderstorm").locator(".badge", has_text="remix")
    ).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    original = page.locator("article.video-card", has_text="A paper boat drifting")
    original.get_by_role("button", name="Delete").click()
    expect()(page.locator("article.video-card")).to_have_count(2)
    page.get_by_label("Search prompts").fill("lighthouse")
    page.get_by_role("button", name="Filter").click()
    expect()(page.locator("article.video-card")).to_have_count(1)
    expect()(page).to_have_url(re.compile(r"\?.*q=lighthouse"))
    page.get_by_role("link", name="Clear").click()
    expect()(page.locator("article.video-card")).to_have_count(2)
    screenshot(page, "gallery")
    page.locator("article.video-card", has_text="lighthouse").get_by_role("link", name=re.compile("lighthouse")).click()
    expect()(page.locator(".facts")).to_contain_text("Runway Gen-4.5")
    expect()(page.locator(".facts")).to_contain_text("$0.24")
    screenshot(page, "video-detail")

    # --- usage: the Runway run cost $0.24, the sandbox ones nothing ---------------------------
    page.get_by_role("link", name="Usage").click()
    expect()(page.locator("[data-stat=cost]")).to_have_text("$0.24")
    expect()(page.locator("[data-stat=count]")).to_have_text("3")
    expect()(page.locator("svg.chart rect")).to_have_count(1)
    # $0.24 of the $5 budget and of the $2 member limit
    expect()(page.get_by_role("meter", name=re.compile("Organization budget"))).to_have_attribute("aria-valuenow", "5")
    expect()(page.get_by_role("meter", name=re.compile("Your monthly limit"))).to_have_attribute("aria-valuenow", "12")
    csv = page.request.get(page.get_by_role("link", name="Export CSV").evaluate("a => a.href"))
    assert csv.ok and csv.headers["content-type"].startswith("text/csv"), csv.headers
    assert "runway,gen4.5,nia@example.com,1,2,0.2400" in csv.text(), csv.text()
    screenshot(page, "usage")

    # --- invite a member, who accepts in a second browser ------------------------------------
    page.get_by_role("link", name="Settings", exact=True).click()
    page.locator(".subnav").get_by_role("link", name="Members").click()
    page.get_by_label("Email (optional)").fill("omar@example.com")
    page.get_by_role("button", name="Create invitation link").click()
    link = page.locator("#invite-link").input_value()
    assert "/invite/" in link
    screenshot(page, "members")

    omar = open_page("omar")
    omar.goto(link)
    expect()(omar.get_by_role("heading", name="Join Nia Pictures")).to_be_visible()
    omar.locator("#main").get_by_role("link", name="Sign up").click()
    omar.get_by_label("Email").fill("omar@example.com")
    omar.get_by_label("Your name").fill("Omar")
    omar.get_by_label("Password").fill(PASSWORD)
    omar.get_by_label("Organization name").fill("Omar's Own")
    omar.get_by_role("button", name="Sign up").click()
    omar.get_by_role("button", name=re.compile("Accept as")).click()
    expect()(omar).to_have_url(re.compile(rf"/o/{org.slug}/playground/$"))
    expect()(omar.locator(".messages")).to_contain_text("You joined Nia Pictures as Member")
    omar.get_by_role("link", name="Gallery").click()
    expect()(omar.locator("article.video-card")).to_have_count(2)
    # not his videos: a member cannot delete them
    expect()(omar.get_by_role("button", name="Delete")).to_have_count(0)
    page.reload()
    expect()(page.locator("#member-table")).to_contain_text("omar@example.com")

    # --- phone width: no sideways scrolling; the gallery stacks its cards ---------------------
    phone = open_page("nia-phone", viewport=PHONE)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(f"/o/{org.slug}/playground/")
    expect()(phone.locator("article.job video").first).to_be_attached()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.goto(f"/o/{org.slug}/videos/")
    expect()(phone.locator("article.video-card video").first).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "gallery-phone")

    assert console.errors == [], console.errors


def test_outsider_gets_404_on_alice_pages(live_server, tenants, open_page, console):
    page = open_page("charlie")
    page.goto("/login/")
    page.get_by_label("Email").fill("charlie@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect()(page).to_have_url(re.compile(rf"/o/{tenants.org_b.slug}/playground/$"))
    slug = tenants.org_a.slug
    for path in ("playground/", "videos/", "usage/", "members/", "settings/", "settings/keys/"):
        response = page.goto(f"/o/{slug}/{path}")
        assert response.status == 404, path
        assert tenants.org_a.name not in page.content()
    # the browser reports each 404 document as a failed resource: those, and only those
    assert all("404" in e for e in console.errors), console.errors


class _FakePage:
    def __init__(self) -> None:
        self.saved: list[str] = []

    def evaluate(self, script: str) -> None:
        pass

    def screenshot(self, path: str) -> None:
        self.saved.append(path)


def test_screenshots_are_saved_only_on_request(monkeypatch, tmp_path):
    """A test run leaves the tracked docs/screenshots/ alone; `make screenshots` regenerates it."""
    monkeypatch.setattr(browser_conftest, "SCREENSHOTS", tmp_path / "shots")
    page = _FakePage()
    monkeypatch.delenv(browser_conftest.SCREENSHOTS_ENV, raising=False)
    screenshot(page, "usage")
    assert page.saved == [] and not (tmp_path / "shots").exists()
    monkeypatch.setenv(browser_conftest.SCREENSHOTS_ENV, "1")
    screenshot(page, "usage")
    assert page.saved == [str(tmp_path / "shots" / "usage.png")]
