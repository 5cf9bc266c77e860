"""Capture (``ipdebug enable --capture``), in process: the flag field, the
CLI and the API, what is captured and what the failing client gets, the
errors pages, bounds and audit events.
"""

from __future__ import annotations

import gc
import json
import os
import re
import threading
import time
import typing as t
import weakref
from pathlib import Path

import pytest
from werkzeug.exceptions import Forbidden, InternalServerError, NotFound

import ipdebug
from ipdebug import IPDebugMiddleware
from ipdebug.cli import main
from ipdebug.errors import ConfigError
from ipdebug.gate.decisions import CACHE_BYTES
from ipdebug.pin import PinHash
from ipdebug.stores.file import FileFlagStore
from ipdebug.stores.window import Window

from .conftest import (
    CUSTOMER,
    OPERATOR,
    Boom,
    Payload,
    Records,
    client,
    debugger_get,
    open_window,
    plain_app,
    secret_and_frame,
    unlock,
)
from .servers import wait_until


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# The flag, the CLI and the API


def test_capture_round_trips_and_old_flags_do_not_capture() -> None:
    window = Window.new(
        now=time.time(),
        duration=60,
        allow=("127.0.0.1",),
        reason="",
        by="me",
        pin_hash=PinHash.create("123-456-789"),
        capture=True,
    )
    data = json.loads(window.to_json())
    assert data["capture"] is True
    assert Window.from_json(window.to_json(), now=time.time()).capture is True
    del data["capture"]  # a flag written before capture existed
    assert Window.from_json(json.dumps(data), now=time.time()).capture is False


@pytest.mark.parametrize(
    "value", [pytest.param(v, id=repr(v)) for v in (1, 0, "true", None, [], {})]
)
def test_a_capture_that_is_not_a_bool_is_refused(value: object) -> None:
    window = Window.new(
        now=time.time(),
        duration=60,
        allow=(),
        reason="",
        by="me",
        pin_hash=PinHash.create("123-456-789"),
    )
    data = json.loads(window.to_json())
    data["capture"] = value
    with pytest.raises(ValueError, match="'capture'"):
        Window.from_json(json.dumps(data), now=time.time())


def test_cli_enable_capture_json_and_status(
    flag: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    code, out, _ = run(
        capsys, "enable", "--allow", "127.0.0.1", "--capture", "--flag", flag, "--json"
    )
    assert code == 0 and json.loads(out)["capture"] is True
    code, out, _ = run(capsys, "status", "--flag", flag, "--json")
    assert code == 0 and json.loads(out)["capture"] is True
    code, out, _ = run(capsys, "status", "--flag", flag)
    assert "capture: on" in out
    window = FileFlagStore(flag).load(time.time())
    assert window is not None and window.capture is True

    code, out, _ = run(capsys, "enable", "--allow", "127.0.0.1", "--flag", flag)
    assert code == 0 and "Capturing" not in out
    code, out, _ = run(capsys, "status", "--flag", flag, "--json")
    assert json.loads(out)["capture"] is False
    assert "capture: off" in run(capsys, "status", "--flag", flag)[1]


def test_api_enable_capture_and_status(flag: str, clean_env: None) -> None:
    opened = ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, capture=True)
    assert opened.capture is True
    assert ipdebug.status(flag).capture is True
    ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag)
    assert ipdebug.status(flag).capture is False
    with pytest.raises(ValueError, match="capture"):
        ipdebug.enable("5m", flag=flag, capture="yes")  # type: ignore[arg-type]


def test_audit_trail_records_capture_on_enable(flag: str, clean_env: None) -> None:
    ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, capture=True)
    lines = (Path(flag).parent / "audit.log").read_text().splitlines()
    assert json.loads(lines[-1])["capture"] is True


# Capture in process: what the failing client gets, what the operator sees


def bare_outcome(app: t.Any, path: str, addr: str = CUSTOMER) -> tuple[object, ...]:
    try:
        response = client(app, addr).get(path, expect_errors=True)
    except Exception as exc:
        return ("raised", type(exc), str(exc))
    return (response.status, sorted(response.headerlist), response.body)


def test_denied_error_is_captured_and_propagates_unchanged(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    opened = open_window(middleware, capture=True)
    seen: list[BaseException] = []

    def server(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
        try:
            return middleware(environ, start_response)
        except Boom as exc:
            seen.append(exc)
            raise

    # The failing client: the bare app's exception, the very same object.
    assert bare_outcome(server, "/fail") == bare_outcome(plain_app, "/fail")
    assert bare_outcome(server, "/") == bare_outcome(plain_app, "/")
    assert len(middleware.captures) == 1
    (entry,) = middleware.captures.listing(middleware.switch.current())
    assert (
        middleware.captures.get(str(entry["id"]), opened_window(middleware)).error
        is seen[0]
    )  # type: ignore[union-attr]
    assert entry["method"] == "GET" and entry["path"] == "/fail"
    assert entry["client"] == CUSTOMER and entry["pid"] == os.getpid()
    assert entry["exception"] == "Boom: failed with local_value=42"

    operator = client(middleware)
    listed = operator.get("/__ipdebug__/errors.json").json
    assert [e["id"] for e in listed["errors"]] == [entry["id"]]
    assert listed["unanswered"] == []
    assert listed["errors"][0]["url"].startswith(f"/__ipdebug__/errors/{entry['id']}")
    html = operator.get("/__ipdebug__/errors").text
    assert "Boom: failed with local_value=42" in html and CUSTOMER in html

    page = operator.get(listed["errors"][0]["url"])
    assert page.status_int == 200 and "Werkzeug Debugger" in page.text
    assert "local_value" in page.text and "ipdebug-capture" in page.text
    assert "IPDebugMiddleware.__call__" not in page.text  # ipdebug's frame skipped
    secret, frame = secret_and_frame(page.text)
    assert unlock(operator, secret, opened.pin)["auth"] is True
    result = debugger_get(operator, secret, cmd="local_value", frm=frame)
    assert result.status_int == 200 and "42" in result.text


def opened_window(middleware: IPDebugMiddleware) -> t.Any:
    window = middleware.switch.current()
    assert window is not None
    return window


def test_without_capture_nothing_is_kept(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    open_window(middleware)
    assert bare_outcome(middleware, "/fail") == bare_outcome(plain_app, "/fail")
    assert len(middleware.captures) == 0
    listed = client(middleware).get("/__ipdebug__/errors")
    assert "does not capture" in listed.text


def test_the_errors_pages_reach_the_app_for_everybody_else(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    open_window(middleware, capture=True)
    with pytest.raises(Boom):
        client(middleware, CUSTOMER).get("/fail")
    for path in (
        "/__ipdebug__/errors",
        "/__ipdebug__/errors.json",
        "/__ipdebug__/errors/x",
    ):
        assert bare_outcome(middleware, path) == bare_outcome(plain_app, path)
        # Allowed address, untrusted Host: the app too.
        denied = client(middleware, host="evil.example").get(path)
        assert denied.body == client(plain_app, host="evil.example").get(path).body
    ipdebug.disable(middleware.settings.flag, environ={})
    middleware.switch.poll_now()
    assert client(middleware).get("/__ipdebug__/errors").text.startswith("app:GET")


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(NotFound(), id="werkzeug-404"),
        pytest.param(Forbidden(), id="werkzeug-403"),
    ],
)
def test_client_errors_are_not_captured(
    make: t.Callable[..., IPDebugMiddleware], error: Exception
) -> None:
    def app(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
        raise error

    middleware = make(app)
    open_window(middleware, capture=True)
    with pytest.raises(type(error)):
        client(middleware, CUSTOMER).get("/")
    assert len(middleware.captures) == 0


def test_server_http_errors_and_odd_exceptions_are_captured(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    errors: list[Exception] = [InternalServerError(), Unprintable()]

    def app(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
        raise errors.pop(0)

    middleware = make(app)
    open_window(middleware, capture=True)
    with pytest.raises(InternalServerError):
        client(middleware, CUSTOMER).get("/")
    with pytest.raises(Unprintable):
        client(middleware, CUSTOMER).get("/")
    listed = middleware.captures.listing(opened_window(middleware))
    assert [e["exception"] for e in listed] == [
        "Unprintable: (the message could not be read)",
        "InternalServerError: 500 Internal Server Error: The server encountered an "
        "internal error and was unable to complete your request. Either the server "
        "is overloaded or there is an error in the application."[:213],
    ]


def test_bounded_by_max_captured_and_dropped_with_the_window(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make(max_captured=3)
    open_window(middleware, capture=True)
    alive: weakref.WeakSet[Payload] = weakref.WeakSet()
    customer = client(middleware, CUSTOMER, **{"test.hold": alive.add})
    for _ in range(5):
        with pytest.raises(Boom):
            customer.get("/fail")
    gc.collect()
    assert len(middleware.captures) == 3 and len(alive) == 3
    open_window(middleware, capture=True)  # replaced: everything dropped
    gc.collect()
    assert len(middleware.captures) == 0 and len(alive) == 0
    with pytest.raises(Boom):
        customer.get("/fail")
    ipdebug.disable(middleware.settings.flag, environ={})
    middleware.switch.poll_now()
    gc.collect()
    assert len(middleware.captures) == 0 and len(alive) == 0


def test_max_captured_setting(
    make: t.Callable[..., IPDebugMiddleware], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert make().settings.max_captured == 50
    monkeypatch.setenv("IPDEBUG_MAX_CAPTURED", "7")
    assert make().settings.max_captured == 7
    for bad in ("0", "1001", "ten"):
        monkeypatch.setenv("IPDEBUG_MAX_CAPTURED", bad)
        with pytest.raises(ConfigError, match=f"IPDEBUG_MAX_CAPTURED: '{bad}'"):
            make()
    monkeypatch.delenv("IPDEBUG_MAX_CAPTURED")
    with pytest.raises(ConfigError, match="max_captured: True"):
        make(max_captured=True)
    for path in ("errors", "/errors/", "/a?b"):
        with pytest.raises(ConfigError, match="errors_path"):
            make(errors_path=path)


def test_gone_captures_are_410_and_pages_off_with_none(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    open_window(middleware, capture=True)
    with pytest.raises(Boom):
        client(middleware, CUSTOMER).get("/fail")
    (entry,) = middleware.captures.listing(opened_window(middleware))
    open_window(middleware, capture=True)
    gone = client(middleware).get(
        f"/__ipdebug__/errors/{entry['id']}", expect_errors=True
    )
    assert gone.status_int == 410 and "no longer held" in gone.text
    dead = client(middleware).get(
        "/__ipdebug__/errors/999999999x00", expect_errors=True
    )
    assert dead.status_int == 410
    other = client(middleware).get(
        "/__ipdebug__/errors/1x00?ipdebug_route=elsewhere", expect_errors=True
    )
    assert other.status_int == 421 and "'elsewhere'" in other.text

    off = make(errors_path=None)
    open_window(off, capture=True)
    assert client(off).get("/__ipdebug__/errors").text.startswith("app:GET")


def test_flask_customer_gets_flasks_500_and_the_error_is_captured(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    flask = pytest.importorskip("flask")
    logged: list[str] = []
    app = flask.Flask("capture_test")

    @app.route("/fail")
    def fail() -> str:
        customer_value = "tenant-7"
        flask_module = flask  # noqa: F841 (read by the console below)
        raise Boom(f"view failed for {customer_value}")

    @app.errorhandler(500)
    def on_500(error: Exception) -> tuple[str, int]:
        logged.append(type(getattr(error, "original_exception", error)).__name__)
        return "our own 500 page", 500

    bare = bare_outcome(app, "/fail")
    middleware = make(app.wsgi_app)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    opened = open_window(middleware, capture=True)
    assert bare_outcome(app, "/fail") == bare
    assert logged == ["Boom", "Boom"]
    (entry,) = middleware.captures.listing(opened_window(middleware))
    assert entry["exception"] == "Boom: view failed for tenant-7"
    operator = client(app)
    page = operator.get(f"/__ipdebug__/errors/{entry['id']}")
    secret, frame = secret_and_frame(page.text)
    unlock(operator, secret, opened.pin)
    result = debugger_get(operator, secret, cmd="customer_value", frm=frame)
    assert "tenant-7" in result.text
    # Flask's request context is there, as for the operator's own errors.
    result = debugger_get(operator, secret, cmd="flask_module.request.path", frm=frame)
    assert "/fail" in result.text


def test_audit_events_of_capture(
    make: t.Callable[..., IPDebugMiddleware], records: Records
) -> None:
    middleware = make()
    opened = open_window(middleware, capture=True)
    with pytest.raises(Boom):
        client(middleware, CUSTOMER).get("/fail")
    wait_until(lambda: "error.captured" in records.events(), timeout=10)
    captured = next(
        r
        for r in records.records
        if getattr(r, "ipdebug_event", "") == "error.captured"
    )
    assert captured.ipdebug_client == CUSTOMER  # type: ignore[attr-defined]
    fields = captured.ipdebug  # type: ignore[attr-defined]
    assert fields["path"] == "/fail" and fields["exception"] == "Boom"
    operator = client(middleware)
    url = operator.get("/__ipdebug__/errors.json").json["errors"][0]["url"]
    page = operator.get(url)
    secret, frame = secret_and_frame(page.text)
    unlock(operator, secret, opened.pin)
    debugger_get(operator, secret, cmd="1+1", frm=frame)
    events = records.events()
    assert {"error.listed", "error.viewed"} <= set(events)
    command = [
        r
        for r in records.records
        if getattr(r, "ipdebug_event", "") == "console.command"
    ][-1]
    assert command.ipdebug["capture"] == fields["id"]  # type: ignore[attr-defined]
    lines = (Path(middleware.settings.flag).parent / "audit.log").read_text()
    assert '"event": "error.captured"' in lines and fields["id"] in lines


def test_banner_of_a_capturing_window_counts_and_links(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    open_window(middleware, capture=True)
    with pytest.raises(Boom):
        client(middleware, CUSTOMER).get("/fail")
    page = client(middleware).get("/fail", expect_errors=True).text
    assert "captures the unhandled errors of every client" in page
    assert "1 held by this worker" in page and 'href="/__ipdebug__/errors"' in page


def test_errors_command_lists_the_captures_of_this_host(
    make: t.Callable[..., IPDebugMiddleware], capsys: pytest.CaptureFixture[str]
) -> None:
    middleware = make()
    flag = middleware.settings.flag
    code, out, _ = run(capsys, "errors", "--flag", flag)
    assert code == 0 and "no window is open" in out
    open_window(middleware, capture=True)
    for path in ("/fail", "/fail"):
        with pytest.raises(Boom):
            client(middleware, CUSTOMER).get(path)
    code, out, _ = run(capsys, "errors", "--flag", flag, "--json")
    listed = json.loads(out)
    assert code == 0 and listed["capture"] is True and listed["unanswered"] == []
    expected = middleware.captures.listing(opened_window(middleware))
    assert [e["id"] for e in listed["errors"]] == [e["id"] for e in expected]
    assert all(e["url"].startswith("/__ipdebug__/errors/") for e in listed["errors"])
    code, out, _ = run(capsys, "errors", "--flag", flag)
    assert "2 captured error(s)" in out and "Boom: failed with local_value=42" in out
    assert listed["errors"][0]["url"] in out


def test_the_pages_own_javascript_requests_reach_the_debugger(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    # Werkzeug's JavaScript asks "?__debugger__=yes&..." relative to the
    # page, so console requests arrive on the capture's own URL.
    middleware = make()
    opened = open_window(middleware, capture=True)
    with pytest.raises(Boom):
        client(middleware, CUSTOMER).get("/fail")
    operator = client(middleware)
    url = operator.get("/__ipdebug__/errors.json").json["errors"][0]["url"]
    page = operator.get(url)
    secret, frame = secret_and_frame(page.text)
    path = url.split("?")[0]
    style = operator.get(f"{path}?__debugger__=yes&cmd=resource&f=style.css")
    assert style.status_int == 200 and style.content_type == "text/css"
    auth = operator.get(
        path,
        params={
            "__debugger__": "yes",
            "cmd": "pinauth",
            "pin": opened.pin,
            "s": secret,
        },
    )
    assert auth.json["auth"] is True
    result = operator.get(
        path,
        params={"__debugger__": "yes", "cmd": "local_value", "frm": frame, "s": secret},
    )
    assert "42" in result.text


def test_the_readme_walkthrough_runs_as_written(
    flag: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
) -> None:
    page = (Path(__file__).parent.parent / "docs" / "capture.md").read_text()
    block = page.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].split() for line in block.splitlines()]
    assert [c[:2] for c in commands] == [
        ["ipdebug", "enable"],
        ["ipdebug", "errors"],
        ["ipdebug", "errors"],
        ["ipdebug", "disable"],
    ]
    monkeypatch.setenv("IPDEBUG_FLAG", flag)
    monkeypatch.setenv("SSH_CLIENT", "127.0.0.1 50000 22")
    middleware = IPDebugMiddleware(plain_app)
    outputs = []
    for command in commands:
        code, out, _ = run(capsys, *command[1:])
        assert code == 0, out
        outputs.append(out)
        if command[1] == "enable":
            middleware.switch.poll_now()
            with pytest.raises(Boom):
                client(middleware, CUSTOMER).get("/fail?token=secret")
    assert "PIN:" in outputs[0] and "Capturing" in outputs[0]
    assert "1 captured error(s)" in outputs[1] and "token" not in outputs[1]
    assert json.loads(outputs[2])["errors"][0]["path"] == "/fail"
    middleware.switch.poll_now()
    assert len(middleware.captures) == 0


@pytest.mark.parametrize("peer", ["198.51.100.9", "127.0.0.1"], ids=["direct", "proxy"])
def test_failing_clients_headers_are_not_kept(
    make: t.Callable[..., IPDebugMiddleware], peer: str
) -> None:
    """A capture resolves its client's address; nothing keyed by the
    client's forwarding headers stays behind (issue 11's memory finding,
    for failing requests while a window captures).
    """
    import tracemalloc

    from werkzeug.test import create_environ

    middleware = make(trusted_proxies=["127.0.0.1"], max_captured=1)
    open_window(middleware, capture=True)

    def fail(n: int) -> None:
        environ = create_environ("/fail", "http://localhost/")
        environ["REMOTE_ADDR"] = peer
        environ["HTTP_X_FORWARDED_FOR"] = f"203.0.113.{n % 250}, " + "7" * 2000
        with pytest.raises(Boom):
            middleware(environ, lambda *a: None)

    for n in range(20):  # warm up: the one capture kept, caches, logging
        fail(n)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(300):
            fail(n)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(middleware.captures) == 1
    # Through a trusted proxy the gate keeps its own decisions by header,
    # bounded in bytes (ipdebug.gate.decisions.CACHE_BYTES); nothing else may grow.
    allowed = 256 * 1024 + (CACHE_BYTES if peer == "127.0.0.1" else 0)
    assert grown < allowed, grown


def test_a_captured_errors_locals_need_the_pin_with_the_native_engine(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    """Another client's data (a local of its failing view) is not on the
    capture page, nor in its JSON, until the window's PIN unlocked the
    operator's browser.
    """

    def app(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
        card_token = environ["QUERY_STRING"].upper()  # the customer's data
        raise Boom(f"payment failed ({len(card_token)})")

    middleware = make(app, engine="native")
    opened = open_window(middleware, capture=True)
    with pytest.raises(Boom):
        client(middleware, CUSTOMER).get("/pay?token=tok_live_abcxyz")
    operator = client(middleware)
    (entry,) = operator.get("/__ipdebug__/errors.json").json["errors"]
    locked = operator.get(entry["url"])
    assert locked.status_int == 200 and "payment failed" in locked.text
    assert "TOKEN=TOK_LIVE_ABCXYZ" not in locked.text
    as_json = operator.get(entry["url"], headers={"Accept": "application/json"})
    assert "TOKEN=TOK_LIVE_ABCXYZ" not in as_json.text
    secret = re.search(r'data-secret="([^"]+)"', locked.text) or re.search(
        r'SECRET = "([^"]+)"', locked.text
    )
    assert secret is not None
    url = entry["url"].split("?")[0]
    assert unlock(operator, secret.group(1), opened.pin, url, "native")["auth"]
    assert "TOKEN=TOK_LIVE_ABCXYZ" in operator.get(entry["url"]).text


def test_a_capture_racing_the_end_of_its_window_is_not_kept(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    """A failing request read the window just before it ended; its capture
    arrives after the reset: nothing is kept (no other client's frames
    alive until the next window).
    """
    middleware = make()
    open_window(middleware, capture=True)
    window = opened_window(middleware)
    middleware.captures.reset(None)  # the window ended meanwhile
    kept = middleware.captures.add(
        window, Boom("late"), method="GET", path="/fail", client=CUSTOMER
    )
    assert kept is None and len(middleware.captures) == 0


def test_links_to_captures_keep_the_apps_prefix(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    """Mounted under a prefix (SCRIPT_NAME), the HTML list and the JSON
    link to the same, working, capture URL.
    """
    middleware = make()
    open_window(middleware, capture=True)
    with pytest.raises(Boom):
        client(middleware, CUSTOMER, SCRIPT_NAME="/shop").get("/fail")
    operator = client(middleware, SCRIPT_NAME="/shop")
    (entry,) = operator.get("/__ipdebug__/errors.json").json["errors"]
    assert entry["url"].startswith("/shop/__ipdebug__/errors/")
    assert f'href="{entry["url"]}"' in operator.get("/__ipdebug__/errors").text.replace(
        "&amp;", "&"
    )
    page = operator.get(entry["url"][len("/shop") :])
    assert page.status_int == 200 and "Werkzeug Debugger" in page.text


def test_a_capture_that_beats_the_switchs_news_is_kept(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    """Under a threaded server a failing request can see a new window (and
    be captured) before the switch tells the store of it: the store's
    reset for that same window keeps the capture, and later ones too.
    """
    middleware = make()
    open_window(middleware, capture=True)
    window = opened_window(middleware)
    worker = make()  # another process of the app: it has not polled yet
    first = worker.captures.add(
        window, Boom("first"), method="GET", path="/fail", client=CUSTOMER
    )
    worker.switch.poll_now()  # the switch's news, late: reset to this window
    second = worker.captures.add(
        window, Boom("second"), method="GET", path="/fail", client=CUSTOMER
    )
    assert first is not None and second is not None
    assert len(worker.captures) == 2


def test_a_failure_racing_the_processs_first_look_at_the_window_is_captured(
    make: t.Callable[..., IPDebugMiddleware], flag: str
) -> None:
    """Under a threaded server one thread reads the flag (and finds the
    capturing window) while another's request starts with the state from
    before: its failure is still captured (capture asks the switch again).
    """
    reading, release = threading.Event(), threading.Event()

    class SlowStore(FileFlagStore):
        def load(self, now: float) -> Window | None:
            reading.set()
            release.wait(10)
            return super().load(now)

    def app(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
        release.set()  # the other thread's read ends while this one runs
        poller.join(10)
        local_value = 42
        raise Boom(f"failed with {local_value=}")

    middleware = make(app)
    middleware.switch.store = SlowStore(flag)
    ipdebug.enable("5m", allow=[OPERATOR], flag=flag, environ={}, capture=True)
    poller = threading.Thread(target=middleware.switch.poll_now)
    poller.start()
    assert reading.wait(10)
    with pytest.raises(Boom):
        client(middleware, CUSTOMER).get("/fail")
    assert not poller.is_alive()
    (entry,) = middleware.captures.listing(middleware.switch.current())
    assert entry["client"] == CUSTOMER and entry["path"] == "/fail"


# The capture's own costs (bench/hotpath.py): what is kept between requests
# must not change what a capture records.


def test_client_error_decision_reads_each_instances_code() -> None:
    """``is_client_error`` keeps what it learns of a type, not of an
    instance: an instance's own ``code`` decides every time.
    """
    from werkzeug.exceptions import HTTPException

    from ipdebug.capture import is_client_error

    class Teapot(HTTPException):
        code = 418

    first, odd = Teapot(), Teapot()
    odd.code = 503
    assert is_client_error(first) is True  # the type is now known
    assert is_client_error(odd) is False
    assert is_client_error(Teapot()) is True
    renamed = InternalServerError()
    renamed.code = 404
    assert is_client_error(renamed) is True
    assert is_client_error(InternalServerError()) is False
    assert is_client_error(Boom()) is False


@pytest.mark.parametrize(
    ("peer", "forwarded", "recorded"),
    [
        pytest.param("127.0.0.1", "203.0.113.5", "203.0.113.5", id="proxied-1"),
        # Same proxy, another client: not the first one's address again.
        pytest.param("127.0.0.1", "203.0.113.6", "203.0.113.6", id="proxied-2"),
        pytest.param("198.51.100.9", "203.0.113.7", "198.51.100.9", id="direct"),
        pytest.param("::ffff:198.51.100.10", None, "198.51.100.10", id="mapped"),
        pytest.param("localhost", None, "localhost", id="unparsed"),
    ],
)
def test_a_capture_records_each_requests_client(
    make: t.Callable[..., IPDebugMiddleware],
    peer: str,
    forwarded: str | None,
    recorded: str,
) -> None:
    middleware = make(trusted_proxies=["127.0.0.1"])
    open_window(middleware, capture=True)
    extra = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    others = [("127.0.0.1", "203.0.113.99"), ("198.51.100.9", None)]
    # Other failing requests first, from the same peers: whatever they left
    # behind must not decide this one's address.
    for other, header in others:
        with pytest.raises(Boom):
            client(
                middleware,
                other,
                **({} if header is None else {"HTTP_X_FORWARDED_FOR": header}),
            ).get("/fail")
    with pytest.raises(Boom):
        client(middleware, peer, **extra).get("/fail")
    newest = middleware.captures.listing(opened_window(middleware))[0]
    assert newest["client"] == recorded


def test_the_writer_records_captures_after_it_parked(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    """The background writer parks after a quiet second; the next capture
    wakes it and is audited.
    """
    from ipdebug.capture import PARK_AFTER

    middleware = make()
    open_window(middleware, capture=True)
    trail = Path(middleware.settings.flag).parent / "audit.log"

    def captured() -> int:
        return trail.read_text().count('"event": "error.captured"')

    with pytest.raises(Boom):
        client(middleware, CUSTOMER).get("/fail")
    wait_until(lambda: captured() == 1)
    writer = middleware.captures._writer
    assert writer is not None
    wait_until(lambda: writer._parked, timeout=PARK_AFTER + 10)
    with pytest.raises(Boom):
        client(middleware, CUSTOMER).get("/fail")
    wait_until(lambda: captured() == 2)
    assert len(middleware.captures) == 2


def test_capture_ids_are_unique_and_a_forked_child_draws_its_own() -> None:
    from ipdebug.capture import new_id

    ids = {new_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(re.fullmatch(rf"{os.getpid()}x[0-9a-f]{{24}}", i) for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, then out without pytest's cleanup
        try:
            os.write(write, new_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 100).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    mine = new_id()
    assert child.startswith(f"{pid}x")
    # Read ahead before the fork, the parent's next random part would be
    # the child's first one if the child did not draw its own.
    assert child.split("x")[1] != mine.split("x")[1]
