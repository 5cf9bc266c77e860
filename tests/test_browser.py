"""A real browser (Debian's Chromium, driven by Playwright) uses the debugger
under 4-worker gunicorn: page, PIN prompt, console.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import ipdebug
from ipdebug.stores.file import FileFlagStore

from .browser import chromium, enter_pin, new_page, pin_prompt, screenshot
from .conftest import CUSTOMER
from .servers import gunicorn, spread

pytestmark = [pytest.mark.server, pytest.mark.browser]


def test_pin_prompt_and_console_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with gunicorn(tmp_path, "-w", "4") as server:
        opened = ipdebug.enable("5m", allow=["127.0.0.1"], flag=server.flag, environ={})
        with chromium() as browser:
            page = new_page(browser)
            url = f"http://127.0.0.1:{server.port}/fail"
            # The window may need up to a second to be seen by a worker.
            for _ in range(30):
                response = page.goto(url)
                if page.locator("div.debugger").count():
                    break
                page.wait_for_timeout(100)
            assert response is not None and response.status == 500
            expect(page.locator("h1")).to_have_text("ZeroDivisionError")
            prompt = pin_prompt(page, page.locator("div.traceback div.frame").last)
            # Where the PIN comes from, and no close button while locked.
            expect(prompt).to_contain_text("The PIN was printed by ipdebug enable")
            banner = page.locator(".ipdebug-banner")
            expect(banner).to_contain_text("ipdebug disable")
            assert banner.locator("button").count() == 0
            console = enter_pin(page, prompt, opened.pin)
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
            assert console.locator(".output").inner_text().count(owner.group(1)) == 5
            screenshot(page, "browser-console.png")
            # Unlocked: a reload offers "Close window now", which closes it.
            page.goto(url)
            close = page.locator(".ipdebug-banner button")
            expect(close).to_have_text("Close window now")
            close.click()
            expect(page.locator("body")).to_contain_text(
                "the debugging window is closed"
            )
            assert not ipdebug.status(server.flag, environ={}).enabled


ATTACKER_PAGE = """<!doctype html>
<title>another site</title>
<img id="probe" src="{app}/?__debugger__=yes&cmd=resource&f=console.png"
     onload="document.title = 'probe:load'" onerror="document.title = 'probe:error'">
<iframe id="victim" src="{app}/fail"></iframe>
<a id="link" href="{app}/fail">the failing page</a>
"""


@contextlib.contextmanager
def attacker_site(html: str) -> Iterator[str]:
    """Another site: a page served from 127.0.0.2, a different site from
    127.0.0.1 for the browser, on a loopback address.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_another_sites_page_cannot_probe_or_trigger_the_debugger(
    tmp_path: Path,
) -> None:
    """While a window is open for 127.0.0.1, a page of another site (here
    127.0.0.2) in the operator's browser neither learns it (the debugger's
    image does not load) nor gets a debugger page rendered for its request.
    """
    with gunicorn(tmp_path, "-w", "2") as server:
        ipdebug.enable("5m", allow=["127.0.0.1"], flag=server.flag, environ={})
        app = f"http://127.0.0.1:{server.port}"
        with (
            attacker_site(ATTACKER_PAGE.format(app=app)) as attacker,
            chromium() as browser,
        ):
            page = new_page(browser)
            # Control: typed by the operator, the failing page is the
            # debugger (once every worker has seen the window).
            for _ in range(30):
                page.goto(f"{app}/fail")
                if page.locator("div.debugger").count():
                    break
                page.wait_for_timeout(100)
            assert page.locator("div.debugger").count() == 1
            # Control: on the app's own page, the image loads.
            page.goto(f"{app}/")
            assert (
                page.evaluate(
                    "src => new Promise(done => { const i = new Image();"
                    " i.onload = () => done('load');"
                    " i.onerror = () => done('error'); i.src = src; })",
                    f"{app}/?__debugger__=yes&cmd=resource&f=console.png",
                )
                == "load"
            )
            pages_before = audit_events(server.flag).count("debugger.page")

            page.goto(attacker)
            page.wait_for_function("document.title.startsWith('probe:')")
            assert page.title() == "probe:error"
            victim = page.frame_locator("#victim")
            victim.locator("body").wait_for()
            framed = next(f for f in page.frames if f.url.endswith("/fail"))
            assert "Werkzeug Debugger" not in framed.content()
            assert "Internal Server Error" in framed.content()
            # A link followed from the other site: the app's own error.
            with page.expect_navigation():
                page.click("#link")
            assert "Werkzeug Debugger" not in page.content()
            assert "Internal Server Error" in page.content()
            assert audit_events(server.flag).count("debugger.page") == pages_before
            # Typed again by the operator: the debugger.
            page.goto(f"{app}/fail")
            assert page.locator("div.debugger").count() == 1


def audit_events(flag: str) -> list[str]:
    with open(FileFlagStore(flag).audit_path) as log:
        return [json.loads(line)["event"] for line in log]


def test_captured_error_list_pin_and_console_in_chromium(tmp_path: Path) -> None:
    """The operator (127.0.0.1) opens a customer's (127.0.0.2) captured
    error from the list, unlocks it and evaluates in its frame.
    """
    from playwright.sync_api import expect

    with gunicorn(tmp_path, "-w", "4", app="tests.apps.customers:flask_app") as server:
        opened = ipdebug.enable(
            "5m", allow=["127.0.0.1"], flag=server.flag, environ={}, capture=True
        )
        page_url = f"http://127.0.0.1:{server.port}/__ipdebug__/errors"
        with chromium() as browser:
            page = new_page(browser)
            for _ in range(30):  # until the workers have seen the window
                replies = spread(
                    server.port, ["/customer?v=tenant-42"], {}, source=CUSTOMER
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
            prompt = pin_prompt(page, page.locator("div.traceback div.frame").last)
            console = enter_pin(page, prompt, opened.pin)
            command = console.locator("form input")
            command.fill("1+1")
            command.press("Enter")
            expect(console.locator(".output")).to_contain_text(
                re.compile(r">>> 1\+1\s*2")
            )
            command.fill("customer_value")
            command.press("Enter")
            expect(console.locator(".output")).to_contain_text("'tenant-42'")
            screenshot(page, "browser-capture.png")
