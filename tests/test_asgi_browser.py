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
from .browser import chromium, enter_pin, new_page, pin_prompt, screenshot

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
        console = enter_pin(page, pin_prompt(page, frame), opened.pin)
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
