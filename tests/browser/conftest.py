"""Playwright (sync API) driving Debian's Chromium against pytest-django's ``live_server``.

Chromium is never downloaded: the system's ``/usr/bin/chromium`` is launched headless; each
``launch()`` gets a fresh temporary profile from Playwright. Every page records console errors
and uncaught exceptions, and a test fails if any page logged one it did not expect.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.utils import ROOT

CHROMIUM = Path(os.environ.get("MEDIAROUTER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
# The README's screenshots are tracked files: the suite never writes them. `make screenshots` sets
# this to regenerate them from the journey.
SCREENSHOTS_ENV = "MEDIAROUTER_SCREENSHOTS"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per test module (Playwright gives each launch a fresh profile)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run browser tests")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while it is started; the
    # tests' own ORM calls are synchronous, so Django's async-safety guard must not trip on them.
    # Only for this module: the loop is stopped, and the variable removed, when it ends.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    """Console errors and page errors of every page opened through ``open``."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page, who: str) -> None:
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"[{who}] console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"[{who}] pageerror: {exc}"))


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def open_page(request, browser, console, live_server, tmp_path):
    """``open_page(who, viewport=LAPTOP)`` → a page in a fresh browser context (its own cookies).
    When the test fails, each page's screenshot and HTML are kept (the path is printed)."""
    contexts = []

    def open_(who: str, viewport: dict | None = None):
        context = browser.new_context(viewport=viewport or LAPTOP, base_url=live_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        console.watch(page, who)
        return page

    yield open_
    if getattr(request.node, "failed_call", False):
        for i, context in enumerate(contexts):
            for j, page in enumerate(context.pages):
                page.screenshot(path=str(tmp_path / f"page-{i}-{j}.png"), full_page=True)
                (tmp_path / f"page-{i}-{j}.html").write_text(page.content())
        print(f"browser state saved in {tmp_path}")
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    """Save the page as docs/screenshots/<name>.png, only when MEDIAROUTER_SCREENSHOTS=1 (`make
    screenshots`); otherwise nothing is written."""
    if os.environ.get(SCREENSHOTS_ENV) != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.failed_call = True
    return report


def choose_option(page, select: str, value: str) -> None:
    """Select ``value`` in one of the playground's model-option selects and wait until htmx has
    swapped in the options it re-renders (the old ``#playground-options`` is detached).

    Waiting for the response is not enough: Playwright reports it when the headers arrive, before
    htmx has read the body and swapped. A second select changed in that gap re-triggers the
    fragment, and ``hx-sync="this:replace"`` aborts the first request, which htmx logs as a console
    error (``htmx:sendAbort``). A person cannot click that fast; a test can."""
    old = page.locator("#playground-options").element_handle()
    page.locator(select).select_option(value)
    page.wait_for_function("el => !el.isConnected", arg=old)
