"""The audit trail: every event of a window, never a PIN or secret."""

from __future__ import annotations

import re
import typing as t

import ipdebug
from ipdebug import IPDebugMiddleware

from .conftest import (
    OPERATOR,
    client,
    debugger_get,
    open_window,
    secret_and_frame,
    unlock,
)
from .servers import wait_until


def test_a_window_leaves_a_complete_trail_without_secrets(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    middleware = make()
    app = client(middleware)
    opened = open_window(middleware, reason="INC-42")
    page = app.get("/fail", status=500, expect_errors=True)
    secret, frame = secret_and_frame(page.text)
    unlock(app, secret, "000-000-000")
    unlock(app, secret, opened.pin)
    debugger_get(app, secret, cmd="local_value * 2", frm=frame)
    ipdebug.disable(middleware.settings.flag, environ={})
    middleware.switch.poll_now()

    events = records.events()
    assert events == [
        "window.enabled",  # by ipdebug.enable (the CLI's code)
        "window.opened",  # seen by this process
        "debugger.page",
        "pin.failure",
        "pin.success",
        "console.command",
        "window.disabled",
        "window.closed",
    ]
    by_event = {
        r.ipdebug_event: r for r in records.records if hasattr(r, "ipdebug_event")
    }
    assert "reason='INC-42'" in by_event["window.opened"].getMessage()
    assert "allow=[127.0.0.1]" in by_event["window.opened"].getMessage()
    assert by_event["debugger.page"].ipdebug_client == OPERATOR
    assert "path='/fail'" in by_event["debugger.page"].getMessage()
    command = by_event["console.command"].getMessage()
    assert "source='local_value * 2'" in command and "in plain_app" in command
    assert all(r.created > 0 for r in records.records)
    text = records.text()
    for secret_value in (
        opened.pin,
        opened.pin.replace("-", ""),
        "000-000-000",
        secret,
    ):
        assert secret_value not in text


def test_console_commands_cannot_forge_audit_lines(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    middleware = make()
    app = client(middleware)
    opened = open_window(middleware)
    secret, frame = secret_and_frame(
        app.get("/fail", status=500, expect_errors=True).text
    )
    unlock(app, secret, opened.pin)
    debugger_get(app, secret, cmd="1\nevent=window.closed client=1.2.3.4", frm=frame)
    line = next(
        r.getMessage()
        for r in records.records
        if getattr(r, "ipdebug_event", "") == "console.command"
    )
    assert "\n" not in line
    assert re.search(r"source='1\\nevent=window.closed", line)


def test_expiry_is_audited(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    middleware = make()
    open_window(middleware, "1s")
    # Each request checks the window's end; the first after it audits it.
    wait_until(
        lambda: (
            client(middleware).get("/") is not None
            and "window.expired" in records.events()
        )
    )
    assert records.events()[-1] == "window.expired"


def test_the_durable_trail_beside_the_flag_holds_every_event(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    import json
    import os
    import stat

    middleware = make()
    app = client(middleware)
    opened = open_window(middleware, reason="INC-9")
    secret, frame = secret_and_frame(
        app.get("/fail", status=500, expect_errors=True).text
    )
    unlock(app, secret, opened.pin)
    debugger_get(app, secret, cmd="local_value", frm=frame)
    ipdebug.disable(middleware.settings.flag, environ={})
    middleware.switch.poll_now()
    path = os.path.join(os.path.dirname(middleware.settings.flag), "audit.log")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as trail:
        text = trail.read()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["event"] for line in lines] == records.events()
    assert lines[0]["reason"] == "INC-9" and lines[0]["allow"] == [OPERATOR]
    command = next(line for line in lines if line["event"] == "console.command")
    assert (
        command["source"] == "local_value"
        and command["client"] == OPERATOR
        and command["pid"] == os.getpid()
    )
    assert (
        opened.pin not in text
        and opened.pin.replace("-", "") not in text
        and secret not in text
    )


def test_a_forwarding_header_without_trusted_proxies_is_noted_once(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    middleware = make()
    open_window(middleware)
    for addr in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        client(middleware, addr=addr, HTTP_X_FORWARDED_FOR="203.0.113.7").get("/")
    noted = [
        r
        for r in records.records
        if getattr(r, "ipdebug_event", "") == "request.forwarded"
    ]
    assert len(noted) == 1 and "peer='127.0.0.1'" in noted[0].getMessage()
    warnings = [
        r.getMessage()
        for r in records.records
        if r.levelname == "WARNING" and "trusted_proxies is unset" in r.getMessage()
    ]
    assert len(warnings) == 1
