"""Debian's Chromium driven by Playwright (no browser downloads): one way to
launch it, the same flags everywhere, screenshots in one folder.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
from collections.abc import Iterator

from .servers import ROOT

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Screenshots of what the browser tests saw, for people to look at.
ARTIFACTS = ROOT / "test-artifacts"


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed (with Playwright) whatever happens."""
    assert os.path.exists(CHROMIUM), (
        f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)"
    )
    # Here, not at import: the fast suite collects the browser tests
    # without Playwright installed.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser) -> Page:
    return browser.new_page(user_agent="ipdebug-test")


def screenshot(page: Page, name: str) -> None:
    """Save the whole page as ``test-artifacts/<name>``."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def pin_prompt(page: Page, frame: Locator) -> Locator:
    """Click the console icon of ``frame`` on Werkzeug's page: the PIN
    prompt, shown.
    """
    from playwright.sync_api import expect

    frame.locator("pre.current").hover()
    frame.locator("pre.current img").click()
    prompt = page.locator(".pin-prompt")
    expect(prompt).to_be_visible()
    return prompt


def enter_pin(page: Page, prompt: Locator, pin: str) -> Locator:
    """Enter ``pin`` in the shown prompt: the console (appended beside the
    frame), unlocked.
    """
    from playwright.sync_api import expect

    # Let the prompt finish fading in, as a person typing would: Werkzeug's
    # fade-in and fade-out animations fight otherwise.
    page.wait_for_function(
        "parseFloat(document.querySelector('.pin-prompt').style.opacity) >= 0.95"
    )
    prompt.locator("input[name=pin]").fill(pin)
    prompt.locator("input[name=btn]").click()
    expect(prompt).to_be_hidden()
    return page.locator("pre.console")
