"""A real browser (Debian's Chromium, driven by Playwright) uses the debugger
under 4-worker gunicorn: page, PIN prompt, console.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import ipdebug

from .servers import ROOT, gunicorn

pytestmark = [pytest.mark.server, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"


def test_pin_prompt_and_console_in_chromium(tmp_path: Path) -> None:
    assert os.path.exists(CHROMIUM), (
        f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)"
    )
    from playwright.sync_api import expect, sync_playwright

    with gunicorn(tmp_path, "-w", "4") as server:
        opened = ipdebug.enable("5m", allow=["127.0.0.1"], flag=server.flag, environ={})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = browser.new_page(user_agent="ipdebug-test")
                url = f"http://127.0.0.1:{server.port}/fail"
                # The window may need up to a second to be seen by a worker.
                for _ in range(30):
                    response = page.goto(url)
                    if page.locator("div.debugger").count():
                        break
                    page.wait_for_timeout(100)
                assert response is not None and response.status == 500
                expect(page.locator("h1")).to_have_text("ZeroDivisionError")
                frame = page.locator("div.traceback div.frame").last
                frame.locator("pre.current").hover()
                frame.locator("pre.current img").click()
                prompt = page.locator(".pin-prompt")
                expect(prompt).to_be_visible()
                # Let the prompt finish fading in, as a person typing would:
                # Werkzeug's fade-in and fade-out animations fight otherwise.
                page.wait_for_function(
                    "parseFloat(document.querySelector('.pin-prompt').style.opacity) >= 0.95"
                )
                prompt.locator("input[name=pin]").fill(opened.pin)
                prompt.locator("input[name=btn]").click()
                expect(prompt).to_be_hidden()
                console = page.locator("pre.console")  # appended beside the frame
                command = console.locator("form input")
                command.fill("1+1")
                command.press("Enter")
                expect(console.locator(".output")).to_contain_text(">>> 1+1")
                expect(console.locator(".output")).to_contain_text(
                    re.compile(r">>> 1\+1\s*2")
                )
                # More commands, one after the other as a person types them;
                # gunicorn closes each connection, so they reach any worker.
                owner = re.search(r'SECRET = "(\d+)x', page.content())
                assert owner is not None
                for n in range(1, 6):
                    command.fill("worker_pid")
                    command.press("Enter")
                    expect(console.locator(".output")).to_contain_text(
                        re.compile(rf"(>>> worker_pid\s*{owner.group(1)}\s*){{{n}}}")
                    )
                assert (
                    console.locator(".output").inner_text().count(owner.group(1)) == 5
                )
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(
                    path=str(ARTIFACTS / "browser-console.png"), full_page=True
                )
            finally:
                browser.close()


def test_captured_error_list_pin_and_console_in_chromium(tmp_path: Path) -> None:
    """The operator (127.0.0.1) opens a customer's (127.0.0.2) captured
    error from the list, unlocks it and evaluates in its frame.
    """
    from playwright.sync_api import expect, sync_playwright

    from .test_capture_servers import CUSTOMER, spread_from

    with gunicorn(tmp_path, "-w", "4", app="tests.apps.customers:flask_app") as server:
        opened = ipdebug.enable(
            "5m", allow=["127.0.0.1"], flag=server.flag, environ={}, capture=True
        )
        page_url = f"http://127.0.0.1:{server.port}/__ipdebug__/errors"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = browser.new_page(user_agent="ipdebug-test")
                for _ in range(30):  # until the workers have seen the window
                    replies = spread_from(
                        server.port, ["/customer?v=tenant-42"], CUSTOMER
                    )
                    page.goto(page_url)
                    if page.locator("table a").count():
                        break
                    page.wait_for_timeout(100)
                assert replies[0].status == 500
                assert b"Flask's own page" in replies[0].body
                expect(page.locator("h1")).to_contain_text("Captured errors")
                expect(page.locator("table")).to_contain_text(CUSTOMER)
                page.locator("table a").first.click()
                expect(page.locator("h1")).to_have_text("OrderFailed")
                expect(page.locator(".ipdebug-capture")).to_contain_text(
                    "captures the unhandled errors of every client"
                )
                frame = page.locator("div.traceback div.frame").last
                frame.locator("pre.current").hover()
                frame.locator("pre.current img").click()
                prompt = page.locator(".pin-prompt")
                expect(prompt).to_be_visible()
                page.wait_for_function(
                    "parseFloat(document.querySelector('.pin-prompt').style.opacity) >= 0.95"
                )
                prompt.locator("input[name=pin]").fill(opened.pin)
                prompt.locator("input[name=btn]").click()
                expect(prompt).to_be_hidden()
                console = page.locator("pre.console")
                command = console.locator("form input")
                command.fill("1+1")
                command.press("Enter")
                expect(console.locator(".output")).to_contain_text(
                    re.compile(r">>> 1\+1\s*2")
                )
                command.fill("customer_value")
                command.press("Enter")
                expect(console.locator(".output")).to_contain_text("'tenant-42'")
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(
                    path=str(ARTIFACTS / "browser-capture.png"), full_page=True
                )
            finally:
                browser.close()
