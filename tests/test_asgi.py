"""The ASGI adapter in-process: pass-through, the gate, the debugger page for
FastAPI and Starlette (with their own 500 handling), console commands in an
``async def`` view's frame, and a differential: denied clients see exactly
the bare app's messages.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import typing as t
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ipdebug
from ipdebug import IPDebugMiddleware
from ipdebug.asgi import IPDebugASGIMiddleware
from ipdebug.asgiscope import gate_environ
from ipdebug.errors import ConfigError

from .apps.asgi_apps import build_fastapi, build_starlette
from .asgi_driver import (
    Outcome,
    call,
    get,
    page_secret,
    run,
    scope,
    unlock,
)
from .attaching import read_until, wait_for_session
from .conftest import OPERATOR, secret_and_frame
from .servers import debugger_path, frame_of

OTHER = "127.0.0.2"


@pytest.fixture
def amake(flag: str, clean_env: None) -> t.Callable[..., IPDebugASGIMiddleware]:
    def make(app: t.Any, **options: t.Any) -> IPDebugASGIMiddleware:
        options.setdefault("flag", flag)
        options.setdefault("allow", [OPERATOR])
        return IPDebugASGIMiddleware(app, **options)

    return make


def open_window(middleware: IPDebugASGIMiddleware, **options: t.Any) -> ipdebug.Enabled:
    options.setdefault("allow", [OPERATOR])
    opened = ipdebug.enable(
        "5m", flag=middleware.core.settings.flag, environ={}, **options
    )
    middleware.core.switch.poll_now()
    return opened


def console(outcome: Outcome) -> str:
    assert outcome.status == 200, outcome
    text = html.unescape(re.sub(r"<[^>]+>", "", outcome.text))
    return text.strip().splitlines()[-1]


# Settings


def test_takes_the_same_options_as_the_wsgi_middleware(
    flag: str, clean_env: None
) -> None:
    with pytest.raises(ConfigError, match="max_tracebacks"):
        IPDebugASGIMiddleware(build_starlette(), flag=flag, max_tracebacks=0)
    with pytest.raises(TypeError):
        IPDebugASGIMiddleware(build_starlette(), flag=flag, bogus=1)
    with pytest.raises(ConfigError, match="ASGI"):
        IPDebugASGIMiddleware(t.cast(t.Any, 42), flag=flag)
    middleware = IPDebugASGIMiddleware(
        build_starlette(), flag=flag, allow="10.0.0.0/8", trusted_hosts="a.example"
    )
    assert isinstance(middleware.core, IPDebugMiddleware)
    assert middleware.core.settings.trusted_hosts is not None


def test_reads_the_same_environment_variables(
    flag: str, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPDEBUG_MAX_TRACEBACKS_IS_NOT_A_SETTING", "1")
    monkeypatch.setenv("IPDEBUG_MAX_WINDOW", "nonsense")
    with pytest.raises(ConfigError, match="nonsense"):
        IPDebugASGIMiddleware(build_starlette(), flag=flag)


# Gate input


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        pytest.param(("203.0.113.7", 1), "203.0.113.7", id="tcp"),
        pytest.param(["::1", 1], "::1", id="list"),
        pytest.param(None, None, id="unix-socket-uvicorn"),
        pytest.param(("", 0), "", id="empty"),
        pytest.param((None, 0), None, id="none-host"),
        pytest.param((), None, id="empty-tuple"),
        pytest.param("127.0.0.1", None, id="bare-string"),
    ],
)
def test_remote_addr_from_the_client(client: t.Any, expected: t.Any) -> None:
    environ = gate_environ(scope(client=client))
    assert environ["REMOTE_ADDR"] == expected


def test_gate_headers_are_latin1_and_joined() -> None:
    environ = gate_environ(
        scope(
            host="a.example",
            headers=[
                (b"x-forwarded-for", b"198.51.100.1"),
                (b"x-forwarded-for", b"203.0.113.7"),
                (b"host", b"evil.example"),
                # ASGI header names are lower-case; others are not read.
                (b"Host", b"127.0.0.1"),
                (b"forwarded", "for=\xe9".encode("latin-1")),
            ],
        )
    )
    assert environ["HTTP_X_FORWARDED_FOR"] == "198.51.100.1,203.0.113.7"
    assert environ["HTTP_HOST"] == "a.example,evil.example"
    assert environ["HTTP_FORWARDED"] == "for=\xe9"


# Pass-through


def test_other_scopes_pass_through_untouched(amake: t.Any) -> None:
    seen: list[tuple[t.Any, t.Any, t.Any]] = []

    async def app(scope: t.Any, receive: t.Any, send: t.Any) -> None:
        seen.append((scope, receive, send))

    middleware = amake(app)
    open_window(middleware)

    async def receive() -> dict[str, t.Any]:
        return {}

    async def send(message: t.Any) -> None:
        pass

    for kind in ("websocket", "lifespan"):
        original = {"type": kind, "client": (OPERATOR, 1), "headers": []}
        asyncio.run(middleware(original, receive, send))
        assert seen[-1][0] is original
        assert seen[-1][1] is receive and seen[-1][2] is send


def test_denied_and_closed_requests_get_the_original_callables(amake: t.Any) -> None:
    seen: list[tuple[t.Any, t.Any, t.Any]] = []

    async def app(scope: t.Any, receive: t.Any, send: t.Any) -> None:
        seen.append((scope, receive, send))
        raise LookupError("the app's own")

    middleware = amake(app)
    request = scope(client=(OTHER, 1))
    for opened in (False, True):
        if opened:
            open_window(middleware)
        outcome = run(middleware, request)
        assert isinstance(outcome.error, LookupError)
        assert seen[-1][0] is request
        assert "ipdebug.gated" not in request


def test_missing_client_is_denied(amake: t.Any) -> None:
    middleware = amake(build_starlette())
    open_window(middleware)
    outcome = get(middleware, "/fail", client=None)
    assert outcome.status == 500
    assert outcome.body == b"Internal Server Error"
    assert type(outcome.error).__name__ == "Boom"


# Gated in


@pytest.mark.parametrize("build", [build_fastapi, build_starlette])
@pytest.mark.parametrize("path", ["/fail", "/fail-sync"])
def test_gated_in_client_gets_the_debugger(
    amake: t.Any, build: t.Any, path: str
) -> None:
    middleware = amake(build())
    open_window(middleware)
    outcome = get(middleware, path)
    assert outcome.error is None
    assert outcome.status == 500
    assert "Werkzeug Debugger" in outcome.text
    assert "ipdebug" in outcome.text  # the banner
    assert outcome.headers["cache-control"] == "no-store"
    assert outcome.headers["x-ipdebug-instance"]
    assert "ipdebug_route=" in outcome.headers["set-cookie"]
    # Exactly one response: Starlette's own 500 was replaced, not appended.
    starts = [m for m in outcome.messages if m["type"] == "http.response.start"]
    assert len(starts) == 1
    assert b"Internal Server Error" not in outcome.body


def test_a_denied_client_keeps_starlettes_500(amake: t.Any) -> None:
    middleware = amake(build_fastapi())
    open_window(middleware)
    bare = get(build_fastapi(), "/fail", client=(OTHER, 1))
    denied = get(middleware, "/fail", client=(OTHER, 1))
    assert denied.comparable() == bare.comparable()
    assert denied.status == 500 and denied.body == b"Internal Server Error"


def test_exception_handler_still_runs_for_everybody_else(amake: t.Any) -> None:
    middleware = amake(build_fastapi(handler=True))
    open_window(middleware)
    denied = get(middleware, "/fail", client=(OTHER, 1))
    assert denied.body == b'{"error":"handled by the app"}'
    assert type(denied.error).__name__ == "Boom"  # Starlette re-raises
    gated = get(middleware, "/fail")
    assert "Werkzeug Debugger" in gated.text
    assert b"handled by the app" not in gated.body


def test_error_after_the_body_started_is_reraised(amake: t.Any, records: t.Any) -> None:
    middleware = amake(build_fastapi())
    open_window(middleware)
    outcome = get(middleware, "/stream")
    assert type(outcome.error).__name__ == "Boom"
    assert outcome.status == 200
    assert outcome.body == b"first chunk\n"
    assert "debugger.stream_error" in records.events()


def test_successful_responses_are_unchanged_for_gated_in(amake: t.Any) -> None:
    middleware = amake(build_fastapi())
    open_window(middleware)
    assert get(middleware, "/").comparable() == get(build_fastapi(), "/").comparable()


def test_untrusted_host_is_denied(amake: t.Any) -> None:
    middleware = amake(build_fastapi())
    open_window(middleware)
    outcome = get(middleware, "/fail", host="evil.example")
    assert outcome.body == b"Internal Server Error"


def test_forwarded_for_only_from_trusted_proxies(amake: t.Any) -> None:
    middleware = amake(
        build_fastapi(), allow=["203.0.113.7"], trusted_proxies=["127.0.0.1"]
    )
    open_window(middleware, allow=["203.0.113.7"])
    spoof = [(b"x-forwarded-for", b"203.0.113.7")]
    assert get(middleware, "/fail", client=("198.51.100.9", 1), headers=spoof).body == (
        b"Internal Server Error"
    )
    gated = get(middleware, "/fail", client=("127.0.0.1", 1), headers=spoof)
    assert "Werkzeug Debugger" in gated.text


# The console


@pytest.mark.parametrize("path", ["/fail", "/fail-sync"])
def test_pin_and_console_in_the_views_frame(
    amake: t.Any, records: t.Any, path: str
) -> None:
    middleware = amake(build_fastapi())
    opened = open_window(middleware)
    page = get(middleware, path)
    secret, _ = page_secret(page)
    frame = frame_of(page.text, "asgi_apps.py")
    locked = get(middleware, debugger_path(secret, cmd="marker", frm=frame))
    assert locked.status == 403 and locked.headers["cache-control"] == "no-store"
    cookie = unlock(middleware, secret, opened)
    out = get(
        middleware, debugger_path(secret, cmd="marker", frm=frame), headers=cookie
    )
    expected = "'async-local-42'" if path == "/fail" else "'sync-local-43'"
    assert console(out) == expected
    out = get(middleware, debugger_path(secret, cmd="1+1", frm=frame), headers=cookie)
    assert console(out) == "2"
    assert "console.command" in records.events()
    # A denied client's __debugger__ request reaches the app.
    denied = get(
        middleware, debugger_path(secret, cmd="1+1", frm=frame), client=(OTHER, 1)
    )
    assert denied.body == b"hello from fastapi\n"


def test_resources_are_served(amake: t.Any) -> None:
    middleware = amake(build_fastapi())
    open_window(middleware)
    secret, _ = page_secret(get(middleware, "/fail"))
    res = get(middleware, debugger_path(secret, cmd="resource", f="debugger.js"))
    assert res.status == 200
    assert b"function" in res.body
    assert res.headers["cache-control"] == "no-store"


def test_a_slow_command_does_not_block_the_event_loop(amake: t.Any) -> None:
    middleware = amake(build_fastapi())
    opened = open_window(middleware)
    page = get(middleware, "/fail")
    secret, frame = page_secret(page)
    cookie = unlock(middleware, secret, opened)
    started = threading.Event()

    async def both() -> tuple[Outcome, Outcome, list[str]]:
        order: list[str] = []

        async def slow() -> Outcome:
            started.set()
            out = await call(
                middleware,
                scope(
                    "/",
                    query=debugger_path(
                        secret, cmd="__import__('time').sleep(2)", frm=frame
                    )[2:],
                    headers=cookie,
                ),
            )
            order.append("command")
            return out

        async def other() -> Outcome:
            await asyncio.sleep(0.2)
            out = await call(middleware, scope("/", client=(OTHER, 1)))
            order.append("other")
            return out

        a, b = await asyncio.gather(slow(), other())
        return a, b, order

    command, other, order = asyncio.run(both())
    assert started.is_set()
    assert command.status == 200
    assert other.body == b"hello from fastapi\n"
    assert order == ["other", "command"]


# The differential: denied clients see the bare app's messages


def _script_app(script: list[t.Any]) -> t.Any:
    async def app(scope: t.Any, receive: t.Any, send: t.Any) -> None:
        await receive()
        for step in script:
            if step == "raise":
                raise LookupError("scripted")
            await send(dict(step))

    return app


MESSAGES = st.lists(
    st.one_of(
        st.just("raise"),
        st.builds(
            lambda status, headers: {
                "type": "http.response.start",
                "status": status,
                "headers": headers,
            },
            st.sampled_from([200, 204, 302, 404, 500, 503]),
            st.lists(
                st.tuples(st.binary(max_size=8), st.binary(max_size=16)), max_size=3
            ),
        ),
        st.builds(
            lambda body, more: {
                "type": "http.response.body",
                "body": body,
                "more_body": more,
            },
            st.binary(max_size=32),
            st.booleans(),
        ),
        st.just(
            {"type": "http.response.trailers", "headers": [], "more_trailers": False}
        ),
    ),
    max_size=6,
)

CLIENTS = st.one_of(
    st.sampled_from(
        [
            (OTHER, 1),
            None,
            ("", 0),
            ("::ffff:127.0.0.2", 1),
            ("127.0.0.10", 1),
            ("unix", 0),
        ]
    ),
    st.tuples(st.ip_addresses(v=4).map(str), st.integers(0, 65535)).filter(
        lambda c: c[0] != OPERATOR
    ),
)
HEADERS = st.lists(
    st.tuples(
        st.sampled_from(
            [b"host", b"x-forwarded-for", b"forwarded", b"cookie", b"x-other"]
        ),
        st.sampled_from(
            [
                b"127.0.0.1",
                b"127.0.0.1:8000",
                b"evil.example",
                b"for=127.0.0.1",
                b"\xff",
            ]
        ),
    ),
    max_size=4,
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    script=MESSAGES,
    client=CLIENTS,
    headers=HEADERS,
    query=st.sampled_from(["", "__debugger__=yes&cmd=resource&f=debugger.js", "%41"]),
    host=st.sampled_from(["127.0.0.1:8000", "evil.example", None]),
)
def test_denied_clients_see_the_bare_apps_messages(
    tmp_path_factory: pytest.TempPathFactory,
    script: list[t.Any],
    client: t.Any,
    headers: list[tuple[bytes, bytes]],
    query: str,
    host: str | None,
) -> None:
    middleware = _differential_middleware(tmp_path_factory)
    app = _script_app(script)
    middleware.app = app
    request = scope(client=client, headers=headers, host=host)
    request["query_string"] = query.encode()
    # Either an address that is not allowed, or an untrusted/missing Host.
    if client == (OPERATOR, 1) and host == "127.0.0.1:8000":
        return
    bare = run(app, dict(request))
    wrapped = run(middleware, dict(request))
    assert wrapped.comparable() == bare.comparable()


_DIFFERENTIAL: dict[str, IPDebugASGIMiddleware] = {}


def _differential_middleware(factory: pytest.TempPathFactory) -> IPDebugASGIMiddleware:
    middleware = _DIFFERENTIAL.get("m")
    if middleware is None:
        flag = str(Path(factory.mktemp("differential")) / "state" / "flag.json")
        middleware = IPDebugASGIMiddleware(
            _script_app([]), flag=flag, allow=[OPERATOR], environ={}
        )
        open_window(middleware)
        _DIFFERENTIAL["m"] = middleware
    return middleware


# Held responses, in detail


def _raw_app(*messages: dict[str, t.Any], fail: bool = True) -> t.Any:
    async def app(scope: t.Any, receive: t.Any, send: t.Any) -> None:
        for message in messages:
            await send(message)
        if fail:
            raise LookupError("raw app failed")

    return app


START = {"type": "http.response.start", "status": 200, "headers": []}
START_500 = {"type": "http.response.start", "status": 500, "headers": []}


@pytest.mark.parametrize(
    ("messages", "debugger"),
    [
        pytest.param([], True, id="nothing-sent"),
        pytest.param([START], True, id="start-only"),
        pytest.param(
            [START, {"type": "http.response.body", "body": b"", "more_body": True}],
            True,
            id="start-and-empty-chunk",
        ),
        pytest.param(
            [START, {"type": "http.response.body", "body": b"x", "more_body": True}],
            False,
            id="first-bytes-streamed",
        ),
        pytest.param(
            [START_500, {"type": "http.response.body", "body": b"oops"}],
            True,
            id="complete-500",
        ),
        pytest.param(
            [
                START_500,
                {
                    "type": "http.response.body",
                    "body": b"x" * (1 << 20),
                    "more_body": True,
                },
                {"type": "http.response.body", "body": b"y", "more_body": True},
            ],
            False,
            id="500-streaming-past-the-hold-limit",
        ),
    ],
)
def test_what_can_still_become_a_debugger_page(
    amake: t.Any, messages: list[dict[str, t.Any]], debugger: bool
) -> None:
    middleware = amake(_raw_app(*messages))
    open_window(middleware)
    outcome = get(middleware)
    if debugger:
        assert outcome.error is None
        assert "Werkzeug Debugger" in outcome.text
        assert (
            len([m for m in outcome.messages if m["type"] == "http.response.start"])
            == 1
        )
    else:
        assert isinstance(outcome.error, LookupError)
        assert outcome.messages == messages


def test_a_complete_500_without_error_is_sent_when_the_app_returns(
    amake: t.Any,
) -> None:
    messages = [START_500, {"type": "http.response.body", "body": b"oops"}]
    middleware = amake(_raw_app(*messages, fail=False))
    open_window(middleware)
    outcome = get(middleware)
    assert outcome.error is None and outcome.messages == messages


def test_standalone_console(amake: t.Any) -> None:
    middleware = amake(build_fastapi(), console_path="/console")
    opened = open_window(middleware)
    page = get(middleware, "/console")
    assert page.status == 200 and "Console" in page.text
    secret, _ = page_secret(get(middleware, "/fail"))
    assert secret
    cookie = unlock(middleware, secret, opened)
    console_secret = re.search(r'SECRET = "([^"]+)"', page.text)
    assert console_secret
    out = get(
        middleware,
        debugger_path(console_secret.group(1), cmd="app is not None", frm="0"),
        headers=cookie,
    )
    assert console(out) == "True"


def test_quart_init_app_keeps_the_quart_object(flag: str, clean_env: None) -> None:
    # Installed everywhere but in `nox -s lowest`: quart needs Werkzeug >= 3.0.
    pytest.importorskip("quart", reason="quart is not in the lowest profile")
    from quart import Quart

    import ipdebug.quart

    quart_app = Quart("init_app_test")

    @quart_app.get("/fail")
    async def fail() -> str:
        raise LookupError("quart")

    middleware = ipdebug.quart.init_app(quart_app, flag=flag, allow=[OPERATOR])
    assert quart_app.asgi_app is middleware
    open_window(middleware)
    assert "Werkzeug Debugger" in get(quart_app, "/fail").text
    denied = get(quart_app, "/fail", client=(OTHER, 1))
    assert denied.status == 500 and "Werkzeug" not in denied.text


def test_attach_pdb_post_mortem_in_the_async_view(amake: t.Any, records: t.Any) -> None:
    import socket

    middleware = amake(build_fastapi(), attach_wait=10)
    open_window(middleware, attach="pdb")
    result: dict[str, Outcome] = {}
    thread = threading.Thread(
        target=lambda: result.update(page=get(middleware, "/fail"))
    )
    thread.start()
    try:
        path = wait_for_session(middleware.debugger.attach_dir)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(path)
            read_until(sock, b"(Pdb) ")
            # The traceback's last frame is the async view's.
            sock.sendall(b"p marker\n")
            assert b"'async-local-42'" in read_until(sock, b"(Pdb) ")
            sock.sendall(b"c\n")
            read_until(sock, b"never")
    finally:
        thread.join(20)
    assert "Werkzeug Debugger" in result["page"].text
    assert "attach.connected" in records.events()


def test_attach_debugpy_is_refused_with_a_warning(amake: t.Any, records: t.Any) -> None:
    middleware = amake(build_fastapi())
    open_window(middleware, attach="debugpy")
    assert "Werkzeug Debugger" in get(middleware, "/fail").text
    assert "does not start debugpy for ASGI" in records.text()
    assert (
        "debugpy" not in __import__("sys").modules
        or not middleware.debugger.debugpy.started
    )


def test_an_app_that_waits_for_the_disconnect_after_its_500(amake: t.Any) -> None:
    """Quart 0.23 ends a request only once the client is gone. A gated-in
    500 is held, so the server never says so: ipdebug tells the app itself
    (``http.disconnect`` once its response is complete), else the request
    would hang for ever.
    """

    async def app(scope: t.Any, receive: t.Any, send: t.Any) -> None:
        assert (await receive())["type"] == "http.request"
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"our 500"})
        while (await receive())["type"] != "http.disconnect":
            pass
        raise LookupError("after the 500")

    middleware = amake(app)
    open_window(middleware)
    outcome = asyncio.run(asyncio.wait_for(call(middleware, scope("/fail")), 20))
    assert outcome.status == 500
    assert "LookupError: after the 500" in outcome.text


def test_capture_of_other_clients_errors_and_the_errors_pages(amake: t.Any) -> None:
    """A capturing window: a customer's failure in a Starlette app is
    captured (the customer gets Starlette's own 500 and the same exception
    propagates); the operator lists it and opens its live frames.
    """
    bare = build_starlette()
    middleware = amake(bare)
    opened = open_window(middleware, capture=True)
    customer = get(middleware, "/fail", client=(OTHER, 1))
    expected = get(bare, "/fail", client=(OTHER, 1))
    assert customer.messages == expected.messages
    assert type(customer.error).__name__ == "Boom"
    assert len(middleware.core.captures) == 1
    # Errors pages: for the operator; anybody else reaches the app.
    listed = get(middleware, "/__ipdebug__/errors.json")
    assert listed.status == 200
    (entry,) = json.loads(listed.body)["errors"]
    assert entry["client"] == OTHER and entry["path"] == "/fail"
    assert get(middleware, "/__ipdebug__/errors.json", client=(OTHER, 1)).status == 404
    page = get(middleware, entry["url"])
    assert page.status == 200 and "async-local-42" in page.text
    secret, frame = secret_and_frame(page.text)
    cookie = unlock(middleware, secret, opened)
    base = entry["url"].split("?")[0]
    marker = get(
        middleware,
        base + debugger_path(secret, cmd="marker", frm=frame)[1:],
        headers=cookie,
    )
    assert console(marker) == "'async-local-42'"


def test_a_debugger_post_ipdebug_cannot_serve_reaches_the_app_with_its_body(
    amake: t.Any,
) -> None:
    """Every debugger thread busy: the request goes to the app, as without
    ipdebug, with the body ipdebug had already read.
    """
    received: list[bytes] = []

    async def echo(scope: t.Any, receive: t.Any, send: t.Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    middleware = amake(echo, engine="native")
    open_window(middleware)
    middleware._pending = threading.BoundedSemaphore(1)
    middleware._pending.acquire()  # every debugger slot taken
    request = scope("/", query="__debugger__=yes&cmd=pinauth", method="POST")
    chunks = [b"pin=123-", b"456-789"]

    async def drive() -> list[t.Any]:
        messages: list[t.Any] = []

        async def receive() -> dict[str, t.Any]:
            if chunks:
                chunk = chunks.pop(0)
                return {
                    "type": "http.request",
                    "body": chunk,
                    "more_body": bool(chunks),
                }
            return {"type": "http.disconnect"}

        async def send(message: t.Any) -> None:
            messages.append(message)

        await middleware(request, receive, send)
        return messages

    messages = asyncio.run(asyncio.wait_for(drive(), 20))
    assert received == [b"pin=123-456-789"]
    assert messages[-1]["body"] == b"app"


# The denied path's shortcut: the gate's denial of a peer, decided from its
# address alone, is kept for the rest of that window only.


def test_a_peer_denied_in_one_window_is_let_in_by_the_next(amake: t.Any) -> None:
    middleware = amake(build_starlette(), allow=[OPERATOR, OTHER])
    open_window(middleware)  # the operator only
    for _ in range(3):
        denied = get(middleware, "/fail", client=(OTHER, 1))
        assert denied.status == 500 and "Werkzeug Debugger" not in denied.text
    assert OTHER in middleware._denied
    open_window(middleware, allow=[OTHER])  # a new window for that peer
    page = get(middleware, "/fail", client=(OTHER, 1))
    assert page.status == 500 and "Werkzeug Debugger" in page.text
    assert get(middleware, "/fail").text == "Internal Server Error"  # now denied


def test_a_denial_that_read_a_header_is_not_kept(amake: t.Any) -> None:
    """An allowed peer denied for its ``Host``, or a trusted proxy's client
    denied for its ``X-Forwarded-For``, is decided again next time.
    """
    middleware = amake(build_starlette(), trusted_proxies=["127.0.0.3"])
    open_window(middleware)
    assert get(middleware, "/fail", host="evil.example").text == (
        "Internal Server Error"
    )
    assert "Werkzeug Debugger" in get(middleware, "/fail").text
    proxied = {"client": ("127.0.0.3", 1)}
    spoofed = [(b"x-forwarded-for", b"198.51.100.7")]
    forwarded = [(b"x-forwarded-for", OPERATOR.encode())]
    assert get(middleware, "/fail", headers=spoofed, **proxied).text == (
        "Internal Server Error"
    )
    assert (
        "Werkzeug Debugger"
        in get(middleware, "/fail", headers=forwarded, **proxied).text
    )
    assert middleware._denied == set()


def test_kept_denials_are_bounded(amake: t.Any) -> None:
    from ipdebug.asgi import MAX_DENIED

    async def ok(scope: t.Any, receive: t.Any, send: t.Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = amake(ok)
    open_window(middleware)
    for n in range(MAX_DENIED + 10):
        peer = f"2001:db8::{n:x}"
        # Twice: a peer's first request may read the headers (the gate
        # looks once per window for a forwarding header from an unknown
        # proxy); its second is decided from the gate's own cache.
        assert get(middleware, "/", client=(peer, 1)).status == 204
        assert get(middleware, "/", client=(peer, 1)).status == 204
    assert 0 < len(middleware._denied) <= MAX_DENIED
