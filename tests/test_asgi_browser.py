"""Chromium (Debian's, driven by Playwright) uses the debugger of a FastAPI
app under ``uvicorn --workers 2``: page, PIN prompt, console ``1+1`` and a
local of the failing ``async def`` view.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ipdebug

from .appservers import uvicorn
from .browser import chromium, new_page, screenshot

pytestmark = [pytest.mark.server, pytest.mark.browser]


def test_fastapi_console_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    opened = ipdebug.enable(
        "5m",
        allow=["127.0.0.1"],
        flag=str(tmp_path / "state" / "flag.json"),
        environ={},
    )
    with (
        uvicorn(tmp_path, "tests.apps.asgi_apps:fastapi_app", workers=2) as server,
        chromium() as browser,
    ):
        page = new_page(browser)
        response = page.goto(f"http://127.0.0.1:{server.port}/fail")
        assert response is not None and response.status == 500
        expect(page.locator("h1")).to_have_text("Boom")
        frame = page.locator("div.traceback div.frame").filter(has_text="asgi_apps.py")
        expect(frame).to_have_count(1)
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
        expect(console.locator(".output")).to_contain_text(re.compile(r">>> 1\+1\s*2"))
        command.fill("marker")
        command.press("Enter")
        expect(console.locator(".output")).to_contain_text(
            re.compile(r">>> marker\s*'async-local-42'")
        )
        screenshot(page, "asgi-fastapi-console.png")
