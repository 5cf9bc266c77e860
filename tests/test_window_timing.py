"""Real time: a running middleware sees flags written, replaced and deleted
within a second, ends windows on time, and survives flags changing under
concurrent requests.
"""

from __future__ import annotations

import os
import threading
import time
import typing as t
from pathlib import Path

import pytest
from webtest import TestApp

import ipdebug
from ipdebug import IPDebugMiddleware

from .conftest import HOST, OPERATOR, Boom, is_gated, seconds_until


def test_write_replace_and_delete_are_seen_within_a_second(
    make: t.Callable[..., IPDebugMiddleware], flag: str
) -> None:
    middleware = make()
    app = TestApp(
        middleware, extra_environ={"REMOTE_ADDR": OPERATOR, "HTTP_HOST": HOST}
    )
    assert not is_gated(app)
    ipdebug.enable("5m", allow=[OPERATOR], flag=flag, environ={})
    assert seconds_until(app, gated=True) <= 1.05
    ipdebug.enable(
        "5m", allow=["127.0.0.9"], flag=flag, environ={}
    )  # replaced: no longer for us
    assert seconds_until(app, gated=False) <= 1.05
    ipdebug.enable("5m", allow=[OPERATOR], flag=flag, environ={})
    assert seconds_until(app, gated=True) <= 1.05
    ipdebug.disable(flag, environ={})
    assert seconds_until(app, gated=False) <= 1.05


def test_a_two_second_window_ends_on_time(
    make: t.Callable[..., IPDebugMiddleware], flag: str
) -> None:
    middleware = make()
    app = TestApp(
        middleware, extra_environ={"REMOTE_ADDR": OPERATOR, "HTTP_HOST": HOST}
    )
    opened = ipdebug.enable("2s", allow=[OPERATOR], flag=flag, environ={})
    middleware.switch.poll_now()
    assert is_gated(app)
    # Denied from the expiry on, not a poll interval later: the switch reads
    # the flag just before the end, and the first request after the end is
    # denied. (No bound on how late that request comes: a busy machine can
    # only make it later, which cannot make it gated.)
    while time.time() < opened.until.timestamp() - 0.3:
        time.sleep(0.02)
    middleware.switch.poll_now()
    while time.time() < opened.until.timestamp():
        time.sleep(0.005)
    assert not is_gated(app)


def test_flag_churn_under_concurrent_requests_never_errors(
    make: t.Callable[..., IPDebugMiddleware], flag: str
) -> None:
    middleware = make()
    stop = threading.Event()
    outcomes: list[str] = []

    def churn() -> None:
        ipdebug.enable("5m", allow=[OPERATOR], flag=flag, environ={})
        while not stop.is_set():
            action = len(outcomes) % 4
            if action == 0:
                ipdebug.enable("5m", allow=[OPERATOR], flag=flag, environ={})
            elif action == 1:
                Path(flag).write_text(
                    '{"ipdebug": 1, "id": "trunc'
                )  # corrupt, in place
            elif action == 2:
                ipdebug.disable(flag, environ={})
            else:
                ipdebug.enable("5m", allow=[OPERATOR], flag=flag, environ={})
                os.chmod(flag, 0o666)
            middleware.switch.poll_now()
            time.sleep(0.005)

    def requests() -> None:
        app = TestApp(
            middleware, extra_environ={"REMOTE_ADDR": OPERATOR, "HTTP_HOST": HOST}
        )
        for _ in range(60):
            try:
                page = app.get("/fail", expect_errors=True)
            except Boom:
                outcomes.append("denied")
            else:
                outcomes.append(
                    "gated"
                    if "Werkzeug Debugger" in page.text
                    else f"other {page.status}"
                )

    writer = threading.Thread(target=churn)
    readers = [threading.Thread(target=requests) for _ in range(4)]
    writer.start()
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    stop.set()
    writer.join()
    assert len(outcomes) == 240
    assert set(outcomes) <= {"gated", "denied"}, {
        o for o in outcomes if o.startswith("other")
    }


@pytest.mark.parametrize("remote_addr", ["127.0.0.1", "127.0.0.2"])
def test_no_file_is_opened_per_request(
    make: t.Callable[..., IPDebugMiddleware], remote_addr: str
) -> None:
    """Counted with an audit hook on open(): no file is opened per request."""
    import sys

    middleware = make()
    app = TestApp(
        middleware, extra_environ={"REMOTE_ADDR": remote_addr, "HTTP_HOST": HOST}
    )
    opened: list[object] = []
    active = [False]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if (
            active[0]
            and event == "open"
            and str(args[0]).startswith(os.path.dirname(middleware.settings.flag))
        ):
            opened.append(args[0])

    sys.addaudithook(hook)
    ipdebug.enable("5m", allow=[OPERATOR], flag=middleware.settings.flag, environ={})
    active[0] = True
    for _ in range(200):
        app.get("/")
    active[0] = False
    assert len(opened) <= 2  # the first poll, and perhaps one more a second later
