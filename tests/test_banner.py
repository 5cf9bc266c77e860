"""The banner: who, until when, why, and "Close window now"."""

from __future__ import annotations

import os
import re
import typing as t
from pathlib import Path

import pytest
from webtest import TestApp

import ipdebug
from ipdebug import IPDebugMiddleware

from .conftest import client, open_window, secret_and_frame, unlock


def banner_of(html: str) -> str:
    start = html.index('<div class="ipdebug-banner"')
    return html[start : html.index("</div>", start)]


#: Both engines draw the same banner and read its form the same way.
both_engines = pytest.mark.usefixtures("both_engines")


def close(app: TestApp, secret: str, window: str, method: str = "post") -> t.Any:
    """The banner's form, as a browser submits it."""
    url = "/?__debugger__=yes&ipdebug=close"
    if method == "get":
        return app.get(f"{url}&window={window}&s={secret}", expect_errors=True)
    return app.post(url, {"s": secret, "window": window}, expect_errors=True)


@both_engines
def test_the_page_says_for_whom_until_when_and_why(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    opened = open_window(middleware, "10m", reason="INC-42 <script>alert(1)</script>")
    page = client(middleware).get("/fail", status=500, expect_errors=True).text
    banner = banner_of(page)
    assert "debugging window open for 127.0.0.1" in banner
    assert f"until {opened.until:%H:%M:%S} UTC" in banner
    assert "left)" in banner
    assert "INC-42 &lt;script&gt;" in banner and "<script>alert" not in page
    # Locked: no button that could only be refused, but how to close.
    assert "<button" not in banner
    assert "<code>ipdebug disable</code>" in banner


@both_engines
def test_close_window_now_is_offered_once_unlocked(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    opened = open_window(middleware)
    app = client(middleware)
    secret, _ = secret_and_frame(app.get("/fail", status=500, expect_errors=True).text)
    unlock(app, secret, opened.pin)
    banner = banner_of(app.get("/fail", status=500, expect_errors=True).text)
    assert "Close window now</button>" in banner and "ipdebug disable" not in banner
    # The secret and window go in the POST body, never the URL (access logs).
    (action,) = re.findall(r'<form method="post" action="([^"]*)"', banner)
    assert action == "?__debugger__=yes&amp;ipdebug=close"
    assert f'<input type="hidden" name="s" value="{secret}">' in banner
    assert f'name="window" value="{opened.window_id}"' in banner


def test_the_pin_prompt_says_where_the_pin_comes_from(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make(console_path="/console")
    open_window(middleware)
    for path in ("/fail", "/console"):
        page = client(middleware).get(path, expect_errors=True).text
        assert "Console Locked" in page
        assert "The PIN was printed by <code>ipdebug enable</code>" in page
        assert "standard output" not in page


@both_engines
def test_close_window_now_needs_post_and_the_pin_and_closes_it(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    middleware = make()
    app = client(middleware)
    opened = open_window(middleware)
    secret, _ = secret_and_frame(app.get("/fail", status=500, expect_errors=True).text)
    assert close(app, secret, opened.window_id, "get").status_int == 405
    # The secret in the URL instead of the body is not this page's: refused.
    in_url = app.post(
        f"/?__debugger__=yes&ipdebug=close&window={opened.window_id}&s={secret}",
        expect_errors=True,
    )
    assert in_url.status_int >= 400 and os.path.exists(middleware.settings.flag)
    assert close(app, secret, opened.window_id).status_int == 403  # no PIN yet
    unlock(app, secret, opened.pin)
    assert close(app, secret, "0" * 32).status_int == 409
    assert close(app, "1x2~other", opened.window_id).status_int == 421
    closed = close(app, secret, opened.window_id)
    assert closed.status_int == 200 and "window is closed" in closed.text
    assert closed.headers["Cache-Control"] == "no-store"
    assert not os.path.exists(middleware.settings.flag)
    disabled = [
        r
        for r in records.records
        if getattr(r, "ipdebug_event", "") == "window.disabled"
    ]
    assert (
        len(disabled) == 1
        and disabled[0].ipdebug_client == "127.0.0.1"
        and "via='banner'" in disabled[0].getMessage()
    )
    middleware.switch.poll_now()
    assert ipdebug.status(middleware.settings.flag, environ={}).enabled is False


@both_engines
def test_closing_leaves_a_newer_window_alone(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    app = client(middleware)
    old = open_window(middleware)
    secret, _ = secret_and_frame(app.get("/fail", status=500, expect_errors=True).text)
    unlock(app, secret, old.pin)
    newer = ipdebug.enable(
        "5m", allow=["127.0.0.1"], flag=middleware.settings.flag, environ={}
    )
    refused = close(app, secret, old.window_id)  # this process still serves the old one
    assert (
        refused.status_int == 409 and "a newer window replaced this one" in refused.text
    )
    assert ipdebug.status(middleware.settings.flag, environ={}).enabled
    assert newer.window_id in Path(middleware.settings.flag).read_text()
