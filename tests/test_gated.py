"""Gated in: the debugger page, resources, PIN and console, with ipdebug's
PIN, bookkeeping and refusals; every test runs with both engines.
"""

from __future__ import annotations

import json
import os
import pkgutil
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor

import pytest
from webtest import TestApp
from werkzeug.debug import DebuggedApplication
from werkzeug.test import EnvironBuilder

from ipdebug import IPDebugMiddleware
from ipdebug.cli import main
from ipdebug.pin import PinHash

from .conftest import (
    OPERATOR,
    WIRE,
    Boom,
    client,
    debugger_get,
    evalex_state,
    is_debugger_page,
    open_window,
    plain_app,
    secret_and_frame,
    unlock,
)

pytestmark = pytest.mark.usefixtures("both_engines")


def enable_json(
    flag: str, capsys: pytest.CaptureFixture[str], *args: str
) -> dict[str, t.Any]:
    assert main(["enable", "--json", "--flag", flag, "--allow", OPERATOR, *args]) == 0
    return t.cast(dict[str, t.Any], json.loads(capsys.readouterr().out))


@pytest.fixture
def gated(
    make: t.Callable[..., IPDebugMiddleware],
) -> tuple[IPDebugMiddleware, TestApp]:
    middleware = make()
    return middleware, client(middleware)


def test_debugger_page_for_a_failing_route(
    gated: tuple[IPDebugMiddleware, TestApp],
) -> None:
    middleware, app = gated
    open_window(middleware)
    page = app.get("/fail", status=500, expect_errors=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert page.content_type == "text/html"
    assert is_debugger_page(page.text)
    assert "Boom: failed with local_value=42" in page.text
    assert evalex_state(page.text) == (True, False)
    secret, _ = secret_and_frame(page.text)
    assert secret.startswith(f"{os.getpid()}x")
    # The traceback also reaches the server's error log, as without ipdebug.
    assert "Boom: failed with local_value=42" in page.errors


def test_resources_are_the_engines(gated: tuple[IPDebugMiddleware, TestApp]) -> None:
    middleware, app = gated
    open_window(middleware)
    name, marker = (
        ("native.js", b"X-IPDebug-Secret")
        if WIRE.engine == "native"
        else ("debugger.js", b"")
    )
    js = app.get("/", params={"__debugger__": "yes", "cmd": "resource", "f": name})
    assert js.headers["Cache-Control"] == "no-store"
    if WIRE.engine == "native":
        assert marker in js.body
    else:  # Werkzeug's own file, whatever its version writes in it
        assert js.body == pkgutil.get_data("werkzeug.debug", "shared/debugger.js")
    for name in ["../__init__.py", "", "nope.js"]:
        missing = app.get(
            "/",
            params={"__debugger__": "yes", "cmd": "resource", "f": name},
            status=404,
        )
        assert missing.headers["Cache-Control"] == "no-store"
        assert not missing.text.startswith("app:")


def test_pin_from_enable_json_unlocks_the_console(
    make: t.Callable[..., IPDebugMiddleware],
    flag: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    middleware = make()
    app = client(middleware)
    opened = enable_json(flag, capsys)
    middleware.switch.poll_now()
    secret, frame = secret_and_frame(
        app.get("/fail", status=500, expect_errors=True).text
    )
    locked = debugger_get(app, secret, cmd="local_value", frm=frame)
    assert locked.status_int == 403 and "locked" in locked.text
    assert unlock(app, secret, "000-000-000") == {"auth": False, "exhausted": False}
    assert unlock(app, secret, opened["pin"]) == {"auth": True, "exhausted": False}
    for command, expected in [
        ("1+1", ">2<"),
        ("local_value", ">42<"),
        ("type(payload).__name__", "&#39;Payload&#39;"),
    ]:
        answer = debugger_get(app, secret, cmd=command, frm=frame)
        assert answer.status_int == 200, answer.text
        assert answer.headers["Cache-Control"] == "no-store"
        assert expected in answer.text
    # A reloaded page knows it is unlocked.
    assert evalex_state(app.get("/fail", status=500, expect_errors=True).text)[1]


def test_pin_cookie_is_strict_httponly_and_ends_with_the_window(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    app = client(middleware)
    opened = open_window(middleware, "90s")
    secret, _ = secret_and_frame(app.get("/fail", status=500, expect_errors=True).text)
    response = debugger_get(app, secret, cmd="pinauth", pin=opened.pin)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert 85 <= max_age <= 90
    assert opened.pin not in cookie and opened.pin.replace("-", "") not in cookie


def test_a_pin_or_cookie_of_an_earlier_window_does_not_unlock(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    app = client(middleware)
    old = open_window(middleware)
    secret, frame = secret_and_frame(
        app.get("/fail", status=500, expect_errors=True).text
    )
    assert unlock(app, secret, old.pin)["auth"] is True
    assert debugger_get(app, secret, cmd="1+1", frm=frame).status_int == 200
    open_window(middleware)  # a new window: new PIN, secret and frames
    secret, frame = secret_and_frame(
        app.get("/fail", status=500, expect_errors=True).text
    )
    # The browser still sends the old window's cookie: not enough.
    assert debugger_get(app, secret, cmd="1+1", frm=frame).status_int == 403
    assert unlock(app, secret, old.pin) == {"auth": False, "exhausted": False}


def test_ten_wrong_pins_lock_the_console_until_the_window_ends(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    app = client(middleware)
    opened = open_window(middleware)
    secret, frame = secret_and_frame(
        app.get("/fail", status=500, expect_errors=True).text
    )
    results = [unlock(app, secret, "999-999-999") for _ in range(10)]
    assert results[-1] == {"auth": False, "exhausted": True}
    assert all(not r["auth"] for r in results)
    assert unlock(app, secret, opened.pin) == {"auth": False, "exhausted": True}
    assert debugger_get(app, secret, cmd="1+1", frm=frame).status_int == 403
    fresh = open_window(middleware)
    secret, _ = secret_and_frame(app.get("/fail", status=500, expect_errors=True).text)
    assert unlock(app, secret, fresh.pin)["auth"] is True


def test_concurrent_wrong_pins_get_at_most_ten_checked(
    make: t.Callable[..., IPDebugMiddleware],
    monkeypatch: pytest.MonkeyPatch,
    records: t.Any,
) -> None:
    """32 guessers at once: each attempt is counted before its PIN is
    checked, so no more than ten PINs are ever checked (counted here by a
    wrapper around the real scrypt check).
    """
    middleware = make()
    opened = open_window(middleware)
    secret, _ = secret_and_frame(
        client(middleware).get("/fail", status=500, expect_errors=True).text
    )
    checked: list[str] = []
    real_verify = PinHash.verify

    def counting_verify(self: PinHash, pin: str) -> bool:
        checked.append(pin)
        return real_verify(self, pin)

    monkeypatch.setattr(PinHash, "verify", counting_verify)
    start = threading.Barrier(32)

    def guess(n: int) -> dict[str, bool]:
        app = client(middleware)
        start.wait()
        return unlock(app, secret, f"{n:03d}-000-000")

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(guess, range(32)))
    assert len(checked) <= 10
    assert records.events().count("pin.failure") == len(checked)
    assert not any(a["auth"] for a in answers)
    assert sum(a["exhausted"] for a in answers) >= 32 - 10
    # Under load some attempts within the limit may be refused unchecked
    # (counted high, never low); one at a time, the rest are checked until
    # exactly ten were, and then the console is locked.
    for n in range(10):
        if unlock(client(middleware), secret, f"{n:03d}-111-111")["exhausted"]:
            break
    assert len(checked) == 10
    # Locked now: the right PIN is not even checked.
    assert unlock(client(middleware), secret, opened.pin)["auth"] is False
    assert len(checked) == 10


def test_a_right_pin_does_not_use_up_a_failure(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    opened = open_window(middleware)
    secret, _ = secret_and_frame(
        client(middleware).get("/fail", status=500, expect_errors=True).text
    )
    window = middleware.switch.current()
    assert window is not None
    for _ in range(12):  # twelve browsers, each entering the PIN once
        assert unlock(client(middleware), secret, opened.pin)["auth"] is True
    assert middleware.store.pin_failures(window.id) == 0
    for _ in range(9):
        assert unlock(client(middleware), secret, "000-000-000")["auth"] is False
    assert middleware.store.pin_failures(window.id) == 9
    assert unlock(client(middleware), secret, opened.pin)["auth"] is True


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        pytest.param(
            {"cmd": "1+1", "frm": "FRAME"},
            403,
            "belongs to another window or process",
            id="no-secret",
        ),
        pytest.param(
            {"cmd": "1+1", "frm": "FRAME", "s": "PIDx456~INSTANCE"},
            403,
            "belongs to another",
            id="wrong-secret",
        ),
        pytest.param(
            {"cmd": "1+1", "frm": "FRAME", "s": "999999999x456~INSTANCE"},
            410,
            "belonged to a worker that has exited (pid 999999999)",
            id="secret-of-an-exited-process",
        ),
        pytest.param(
            {"cmd": "1+1", "frm": "1", "s": "SECRET"},
            410,
            "no longer held",
            id="unknown-frame",
        ),
        pytest.param(
            {"cmd": "1+1", "frm": "abc", "s": "SECRET"},
            410,
            "no longer held",
            id="bad-frame",
        ),
        pytest.param(
            {"frm": "FRAME", "s": "SECRET"}, 400, "no command", id="no-command"
        ),
        pytest.param(
            {"cmd": "1+1", "frm": "FRAME", "s": "SECRET"},
            403,
            "enter the PIN",
            id="locked",
        ),
    ],
)
def test_unmatched_debugger_requests_never_reach_the_app(
    gated: tuple[IPDebugMiddleware, TestApp],
    params: dict[str, str],
    status: int,
    reason: str,
) -> None:
    middleware, app = gated
    open_window(middleware)
    secret, frame = secret_and_frame(
        app.get("/fail", status=500, expect_errors=True).text
    )
    query = {
        k: v.replace("SECRET", secret)
        .replace("FRAME", frame)
        .replace("PID", str(os.getpid()))
        .replace("INSTANCE", middleware.settings.instance)
        for k, v in params.items()
    }
    response = debugger_get(app, query.pop("s", ""), path="/fail", **query)
    assert response.status_int == status
    assert reason in response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert "Boom" not in response.text  # the failing view did not run again


def test_printpin_never_prints_the_pin(
    gated: tuple[IPDebugMiddleware, TestApp],
    capsys: pytest.CaptureFixture[str],
    records: t.Any,
) -> None:
    middleware, app = gated
    opened = open_window(middleware)
    secret, _ = secret_and_frame(app.get("/fail", status=500, expect_errors=True).text)
    response = debugger_get(app, secret, cmd="printpin")
    assert response.status_int == 200 and response.body == b""
    captured = capsys.readouterr()
    digits = opened.pin.replace("-", "")
    for text in (captured.out, captured.err, records.text()):
        assert opened.pin not in text and digits not in text


def test_evalex_false_serves_tracebacks_without_console(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make(evalex=False)
    app = client(middleware)
    opened = open_window(middleware)
    page = app.get("/fail", status=500, expect_errors=True)
    assert evalex_state(page.text)[0] is False
    secret, frame = secret_and_frame(page.text)
    assert unlock(app, secret, opened.pin)["auth"] is True
    refused = debugger_get(app, secret, cmd="1+1", frm=frame)
    assert refused.status_int == 403 and "evalex=False" in refused.text


def test_console_path_serves_werkzeugs_console_to_gated_clients_only(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make(console_path="/console")
    opened = open_window(middleware)
    app = client(middleware)
    page = app.get("/console")
    assert page.headers["Cache-Control"] == "no-store"
    assert "CONSOLE_MODE = true" in page.text or 'id="frame-0"' in page.text
    secret, _ = secret_and_frame(
        page.text.replace('<div class="console">', '<div class="frame" id="frame-0">')
    )
    unlock(app, secret, opened.pin)
    answer = debugger_get(app, secret, cmd="app.__name__", frm="0")
    assert "plain_app" in answer.text
    assert (
        client(middleware, addr="127.0.0.2").get("/console").text == "app:GET /console?"
    )


def test_console_path_is_off_by_default(
    gated: tuple[IPDebugMiddleware, TestApp],
) -> None:
    middleware, app = gated
    open_window(middleware)
    assert app.get("/console").text == "app:GET /console?"


def test_error_after_streaming_started_aborts_instead_of_truncating(
    gated: tuple[IPDebugMiddleware, TestApp], records: t.Any
) -> None:
    middleware, app = gated
    open_window(middleware)
    # Werkzeug's own middleware ends the body cleanly: the client cannot tell
    # it was truncated.
    environ = EnvironBuilder(
        "/stream-fail", environ_base={"REMOTE_ADDR": OPERATOR}
    ).get_environ()
    calls: list[object] = []
    body = b"".join(
        DebuggedApplication(plain_app)(environ, lambda *args: calls.append(args))
    )
    assert body.startswith(b"first chunk;")  # and no exception reaches the server
    # ipdebug re-raises so that the server aborts the connection.
    with pytest.raises(Boom, match="after the first chunk"):
        app.get("/stream-fail")
    assert "debugger.stream_error" in records.events()


def test_error_before_the_first_byte_gets_the_page_with_clean_headers(
    gated: tuple[IPDebugMiddleware, TestApp],
) -> None:
    middleware, app = gated
    open_window(middleware)
    page = app.get("/late-fail", status=500, expect_errors=True)
    assert "Boom: before the first byte" in page.text
    assert [name for name, _ in page.headerlist].count("Content-Type") == 1


def test_normal_responses_of_gated_clients_are_the_apps(
    gated: tuple[IPDebugMiddleware, TestApp],
) -> None:
    middleware, app = gated
    open_window(middleware)
    bare = client(plain_app).get("/hello?x=1")
    gated_response = app.get("/hello?x=1")
    assert (gated_response.status, gated_response.headerlist, gated_response.body) == (
        bare.status,
        bare.headerlist,
        bare.body,
    )


def test_write_callable_apps_still_work_when_gated(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    def legacy(
        environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
    ) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written;")
        return [b"returned"]

    middleware = make(legacy)
    open_window(middleware)
    assert client(middleware).get("/").body == b"written;returned"


def test_gated_exception_that_is_not_an_exception_propagates(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    def exits(
        environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
    ) -> list[bytes]:
        raise KeyboardInterrupt

    middleware = make(exits)
    open_window(middleware)
    with pytest.raises(KeyboardInterrupt):
        client(middleware).get("/")


def test_a_bug_in_the_gate_fails_closed(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    """Fault injection: no input makes the gate raise, so one is planted."""
    middleware = make()
    open_window(middleware)

    def explode(environ: object, window: object) -> str:
        raise RuntimeError("bug")

    middleware._admit = explode  # type: ignore[method-assign,assignment]
    for _ in range(3):
        with pytest.raises(Boom):
            client(middleware).get("/fail")
    errors = [r for r in records.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "internal error" in errors[0].getMessage()


def test_percent_encoded_debugger_requests_are_recognised(
    gated: tuple[IPDebugMiddleware, TestApp],
) -> None:
    """Werkzeug decodes the query, so ``%5F%5Fdebugger%5F%5F`` is a debugger
    request too, and must not reach (and re-run) the app.
    """
    middleware, app = gated
    open_window(middleware)
    secret, frame = secret_and_frame(
        app.get("/fail", status=500, expect_errors=True).text
    )
    if WIRE.engine == "native":
        response = app.post(
            f"/fail?%5F%5Fdebugger%5F%5F=yes&cmd=eval&frm={frame}",
            {"frm": frame, "code": "1+1"},
            headers={"X-IPDebug-Secret": secret},
            expect_errors=True,
        )
    else:
        response = app.get(
            f"/fail?%5F%5Fdebugger%5F%5F=yes&cmd=1%2B1&frm={frame}&s={secret}",
            expect_errors=True,
        )
    assert response.status_int == 403 and "enter the PIN" in response.text


@pytest.mark.parametrize("change", ["disable", "replace"])
def test_a_window_that_ended_during_the_request_shows_no_page(
    make: t.Callable[..., IPDebugMiddleware], change: str
) -> None:
    """The request re-checks its window before the debugger page: closed or
    replaced meanwhile, the exception propagates as without ipdebug.
    """
    holder: dict[str, IPDebugMiddleware] = {}

    def ends_window_then_fails(
        environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
    ) -> list[bytes]:
        middleware = holder["mw"]
        if change == "disable":
            main(["disable", "--flag", middleware.settings.flag])
        else:
            open_window(middleware)  # a new window, another id
        middleware.switch.poll_now()
        raise Boom("failed after its window ended")

    middleware = holder["mw"] = make(ends_window_then_fails)
    open_window(middleware)
    with pytest.raises(Boom, match="failed after its window ended"):
        client(middleware).get("/")
    assert middleware.debugger.traceback_count == 0
