"""Denied means invisible: for every cause of denial alone, the response is
byte-for-byte the bare app's, and exceptions propagate as without ipdebug.
"""

from __future__ import annotations

import time
import typing as t

import pytest
from webtest import TestApp

from ipdebug import IPDebugMiddleware
from ipdebug.pin import PinHash
from ipdebug.stores.file import FileFlagStore
from ipdebug.stores.window import Window

from .conftest import HOST, OPERATOR, STRANGER, Boom, open_window, plain_app

pytestmark = pytest.mark.usefixtures("both_engines")

REQUESTS = [
    pytest.param("/", id="normal"),
    pytest.param("/fail", id="failing"),
    pytest.param(
        "/?__debugger__=yes&cmd=resource&f=debugger.js", id="debugger-resource"
    ),
    pytest.param("/?__debugger__=yes&cmd=1%2B1&frm=1&s=x", id="debugger-command"),
    pytest.param("/console", id="console-path"),
    pytest.param("/stream-fail", id="streaming-failure"),
]


def outcome(app: t.Any, path: str, environ: dict[str, t.Any]) -> tuple[object, ...]:
    """Everything a client or server can observe of one request."""
    try:
        response = TestApp(app, extra_environ=environ).get(path, expect_errors=True)
    except Exception as exc:  # what the server would see
        return ("raised", type(exc), str(exc))
    return (response.status, response.headerlist, response.body)


def expired_window(flag: str) -> None:
    now = time.time()
    window = Window.new(
        now=now - 120,
        duration=60,
        allow=(OPERATOR,),
        reason="",
        by="test",
        pin_hash=PinHash.create("1"),
    )
    FileFlagStore(flag).save(window)


CAUSES = [
    pytest.param({}, None, {}, id="flag-off"),
    pytest.param({}, "expired", {}, id="flag-expired"),
    pytest.param(
        {"allow": [OPERATOR]},
        [OPERATOR, STRANGER],
        {"REMOTE_ADDR": "127.0.0.3"},
        id="outside-deployment-allow",
    ),
    pytest.param(
        {"allow": ["127.0.0.0/8"]}, ["127.0.0.9"], {}, id="outside-window-allow"
    ),
    pytest.param({}, [OPERATOR], {"HTTP_HOST": "evil.example"}, id="untrusted-host"),
    pytest.param(
        {},
        [OPERATOR],
        {"HTTP_HOST": "127.0.0.1.evil.example:8000"},
        id="untrusted-host-suffix",
    ),
    pytest.param(
        {},
        [OPERATOR],
        {"REMOTE_ADDR": STRANGER, "HTTP_X_FORWARDED_FOR": OPERATOR},
        id="spoofed-xff-no-trusted-proxies",
    ),
    pytest.param(
        {},
        [OPERATOR],
        {"REMOTE_ADDR": STRANGER, "HTTP_FORWARDED": f"for={OPERATOR}"},
        id="spoofed-forwarded-no-trusted-proxies",
    ),
    pytest.param({}, [OPERATOR], {"REMOTE_ADDR": ""}, id="unix-socket-gunicorn"),
    pytest.param(
        {}, [OPERATOR], {"REMOTE_ADDR": "localhost"}, id="unix-socket-waitress"
    ),
    pytest.param({}, [OPERATOR], {"REMOTE_ADDR": "0.0.0.0"}, id="unix-socket-uwsgi"),
    pytest.param({"allow": None}, None, {}, id="no-allowlist-anywhere"),
    pytest.param(
        {"trusted_proxies": [OPERATOR]},
        [OPERATOR],
        {},
        id="trusted-proxy-without-header",
    ),
    # Another site's page, in an allowed operator's browser.
    pytest.param(
        {}, [OPERATOR], {"HTTP_SEC_FETCH_SITE": "cross-site"}, id="cross-site"
    ),
    pytest.param(
        {}, [OPERATOR], {"HTTP_SEC_FETCH_SITE": "same-site"}, id="same-site-sibling"
    ),
    pytest.param(
        {},
        [OPERATOR],
        {"HTTP_ORIGIN": "http://127.0.0.2:8000", "HTTP_SEC_FETCH_SITE": "none"},
        id="foreign-origin",
    ),
    pytest.param({}, [OPERATOR], {"HTTP_ORIGIN": "null"}, id="null-origin"),
    pytest.param(
        {},
        [OPERATOR],
        {"HTTP_REFERER": "http://evil.example/attack.html"},
        id="foreign-referer",
    ),
]


@pytest.mark.parametrize("path", REQUESTS)
@pytest.mark.parametrize(("options", "window", "environ"), CAUSES)
def test_denied_is_identical_to_the_bare_app(
    make: t.Callable[..., IPDebugMiddleware],
    flag: str,
    options: dict[str, t.Any],
    window: list[str] | str | None,
    environ: dict[str, str],
    path: str,
) -> None:
    middleware = make(console_path="/console", **options)
    if window == "expired":
        expired_window(flag)
    elif window is not None:
        open_window(middleware, allow=window)
    if "allow" in options and options["allow"] is None:
        open_window(middleware, allow=None)
    middleware.switch.poll_now()
    env = {"REMOTE_ADDR": OPERATOR, "HTTP_HOST": HOST, **environ}
    expected = outcome(plain_app, path, env)
    assert outcome(middleware, path, env) == expected
    if path == "/fail":
        assert expected[:2] == ("raised", Boom)
    # Denied requests leave no debugger state behind.
    assert middleware.debugger.traceback_count == 0


@pytest.mark.parametrize("path", REQUESTS)
def test_control_the_same_requests_are_gated_in_without_the_cause(
    make: t.Callable[..., IPDebugMiddleware], path: str
) -> None:
    """Guards the table above: with no denial cause, ipdebug does answer."""
    middleware = make(console_path="/console")
    open_window(middleware)
    env = {
        "REMOTE_ADDR": OPERATOR,
        "HTTP_HOST": HOST,
        # What a browser sends on the operator's own pages.
        "HTTP_SEC_FETCH_SITE": "same-origin",
        "HTTP_ORIGIN": f"http://{HOST}",
        "HTTP_REFERER": f"http://{HOST}/fail",
    }
    if path == "/":
        return  # a normal route is the app's either way
    if path == "/stream-fail":
        with pytest.raises(Boom):
            outcome_gated = TestApp(middleware, extra_environ=env).get(path)
        return
    outcome_gated = outcome(middleware, path, env)
    assert outcome_gated != outcome(plain_app, path, env)
    assert ("Cache-Control", "no-store") in outcome_gated[1]  # type: ignore[operator]


def test_decisions_do_not_leak_between_clients(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    open_window(middleware)
    for _ in range(3):
        for addr, gated in [
            (OPERATOR, True),
            (STRANGER, False),
            ("::ffff:127.0.0.1", True),
            ("127.0.0.10", False),
        ]:
            env = {"REMOTE_ADDR": addr, "HTTP_HOST": HOST}
            result = outcome(middleware, "/fail", env)
            assert (result[0] == "500 INTERNAL SERVER ERROR") is gated, addr
            assert (result[:2] == ("raised", Boom)) is not gated, addr
