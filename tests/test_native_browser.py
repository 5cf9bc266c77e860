"""Chromium (Debian's, through Playwright) with the native engine under
4-worker gunicorn: an exception group page, the PIN, a multi-line console
input, a local, a raising ``__repr__``, history, and the page with
JavaScript disabled. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import ipdebug

from .browser import chromium, new_page, screenshot
from .servers import gunicorn

pytestmark = [
    pytest.mark.server,
    pytest.mark.browser,
    pytest.mark.skipif(
        sys.version_info < (3, 11), reason="the page shows an exception group (3.11+)"
    ),
]


def test_native_engine_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with gunicorn(
        tmp_path,
        "-w",
        "4",
        app="tests.apps.story:app",
        env={"IPDEBUG_ENGINE": "native"},
    ) as server:
        opened = ipdebug.enable("5m", allow=["127.0.0.1"], flag=server.flag, environ={})
        url = f"http://127.0.0.1:{server.port}/group"
        with chromium() as browser:
            page = new_page(browser)
            for _ in range(30):  # the window may take a second to be seen
                response = page.goto(url)
                if page.locator("main.ipdebug").count():
                    break
                page.wait_for_timeout(100)
            assert response is not None and response.status == 500
            expect(page.locator("h1")).to_have_text("ExceptionGroup")
            expect(page.locator("header .exc-message")).to_have_text(
                "checkout failed (3 sub-exceptions)"
            )
            expect(page.locator("ul.notes li")).to_have_text(
                ["while checking apples", "while checking pears"]
            )
            expect(page.get_by_text("bank slow").first).to_be_visible()
            # The view's frame is the last of the group's own frames.
            # Before the PIN its locals are not on the page (they may be
            # other people's data); the console below reads them after.
            view = page.locator(
                "main > div.chain > section.exception > ol.frames > li.frame"
            ).last
            expect(view.locator("p.locals-locked")).to_be_visible()
            expect(view.locator("details.locals")).to_have_count(0)
            assert "'pears': 0" not in page.content()
            screenshot(page, "native-group.png")

            # The console asks for the PIN first; keyboard only.
            view.locator("button.open-console").focus()
            page.keyboard.press("Enter")
            pin = page.locator("form.pin input")
            expect(pin).to_be_focused()
            pin.fill(opened.pin)
            page.keyboard.press("Enter")
            expect(page.locator("form.pin")).to_be_hidden()
            console = view.locator("div.console")
            area = console.locator("textarea")
            expect(area).to_be_focused()
            # Multi-line input: Shift+Enter for a new line, Enter runs.
            for line in [
                "total = 0",
                "for n in range(4):",
                "    total += n",
                "",
            ]:
                area.type(line)
                area.press("Shift+Enter")
            area.type("print('sum is', total)")
            area.press("Shift+Enter")
            area.type("total * basket['apples']")
            area.press("Enter")
            transcript = console.locator(".transcript")
            expect(transcript.locator("pre.printed")).to_have_text("sum is 6")
            expect(transcript.locator("pre.result").last).to_have_text("18")
            # A local, the raising __repr__, the worker (relayed or not).
            for code, shown in [
                ("basket", "{'apples': 3, 'pears': 0}"),
                (
                    "bad",
                    "<repr() of RaisingRepr object raised ValueError: repr exploded>",
                ),
            ]:
                area.fill(code)
                area.press("Enter")
                expect(transcript.locator("pre.result").last).to_have_text(shown)
            owner = re.search(r'data-secret="(\d+)x', page.content())
            assert owner is not None
            for n in range(1, 5):
                area.fill("worker_pid")
                area.press("Enter")
                expect(transcript.locator("pre.result")).to_have_count(3 + n)
                expect(transcript.locator("pre.result").last).to_have_text(
                    owner.group(1)
                )
            # History: Up recalls the previous input.
            area.press("ArrowUp")
            expect(area).to_have_value("worker_pid")
            screenshot(page, "native-console.png")

            # Without JavaScript the page still reads, and the plain-text
            # traceback is one click away.
            context = browser.new_context(java_script_enabled=False)
            static = context.new_page()
            static.goto(url)
            expect(static.locator("h1")).to_have_text("ExceptionGroup")
            expect(static.locator("noscript")).to_have_count(1)
            static.get_by_text("Plain-text traceback", exact=True).last.click()
            plain = static.locator("#plain textarea")
            expect(plain).to_be_visible()
            assert "| ValueError: pears is out of stock" in plain.input_value()
            screenshot(static, "native-no-javascript.png")
            context.close()
