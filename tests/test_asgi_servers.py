"""ipdebug's ASGI adapter under real servers: ``uvicorn --workers 4`` and
gunicorn with 4 uvicorn workers (``-c python:ipdebug.gunicorn``), FastAPI
and Starlette apps with ``async def`` and ``def`` views.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import ipdebug

from .appservers import (
    Served,
    gunicorn_uvicorn,
    is_debugger,
    open_window_first,
    uvicorn,
)
from .servers import (
    connected_elsewhere,
    console_output,
    debugger_page,
    debugger_path,
    frame_of,
    pin_cookie,
    send_on,
    wait_until,
)

pytestmark = pytest.mark.server

APPS = "tests.apps.asgi_apps"


SERVERS = [
    pytest.param("uvicorn", f"{APPS}:fastapi_app", "/fail", id="uvicorn-fastapi-async"),
    pytest.param(
        "uvicorn", f"{APPS}:starlette_app", "/fail-sync", id="uvicorn-starlette-sync"
    ),
    pytest.param(
        "gunicorn", f"{APPS}:fastapi_bare", "/fail-sync", id="gunicorn-fastapi-sync"
    ),
    pytest.param(
        "gunicorn", f"{APPS}:starlette_bare", "/fail", id="gunicorn-starlette-async"
    ),
]


def start(
    kind: str, tmp_path: Path, app: str
) -> contextlib.AbstractContextManager[Served]:
    if kind == "uvicorn":
        return uvicorn(tmp_path, app)
    return gunicorn_uvicorn(tmp_path, app)


@pytest.mark.parametrize(("kind", "app", "path"), SERVERS)
def test_thirty_console_commands_answered_by_the_owner(
    tmp_path: Path, kind: str, app: str, path: str
) -> None:
    opened = open_window_first(tmp_path, "127.0.0.1")
    with start(kind, tmp_path, app) as server:
        page = server.get(path)
        secret, _, owner = debugger_page(page)
        frame = frame_of(page.text, "asgi_apps.py")
        assert page.header("Cache-Control") == "no-store"
        cookie = pin_cookie(server, secret, opened.pin)
        expected = {
            "marker": repr("async-local-42" if path == "/fail" else "sync-local-43"),
            "__import__('os').getpid()": str(owner),
            "6 * 7": "42",
        }

        def ask(commands: list[str]) -> None:
            with ThreadPoolExecutor(6) as pool:
                replies = list(
                    pool.map(
                        lambda c: server.get(
                            debugger_path(secret, cmd=c, frm=frame), headers=cookie
                        ),
                        commands,
                    )
                )
            for command, reply in zip(commands, replies, strict=True):
                assert console_output(reply) == expected[command], (command, reply.text)
                assert reply.header("Cache-Control") == "no-store"

        ask(list(expected) * 10)
        # And on a connection that another worker accepted: it relays them.
        for command, want in expected.items():
            with connected_elsewhere(server.port, owner) as sock:
                reply = send_on(
                    sock, debugger_path(secret, cmd=command, frm=frame), cookie
                )
            assert console_output(reply) == want, (command, reply.text)
        asked = len(expected) * 11
        # Each worker writes its audit record after answering.
        wait_until(lambda: len(server.audit("console.command")) >= asked, timeout=10)
        ran = server.audit("console.command")
        assert len(ran) == asked
        assert {r["pid"] for r in ran} == {owner}
        wait_until(
            lambda: len(server.audit("debugger.relayed")) >= len(expected), timeout=10
        )
        relayed = server.audit("debugger.relayed")
        assert owner not in {r["pid"] for r in relayed}


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_denied_clients_get_the_bare_apps_bytes(tmp_path: Path, kind: str) -> None:
    open_window_first(tmp_path, "127.0.0.1")
    wrapped_app, bare_app = (
        (f"{APPS}:fastapi_app", f"{APPS}:fastapi_bare")
        if kind == "uvicorn"
        else (f"{APPS}:fastapi_bare", f"{APPS}:fastapi_bare")
    )
    with (
        start(kind, tmp_path, wrapped_app) as server,
        uvicorn(tmp_path, bare_app, workers=1, name="bare") as bare,
    ):
        paths = [
            "/",
            "/fail",
            "/fail-sync",
            "/?__debugger__=yes&cmd=resource&f=debugger.js",
            "/console",
            "/x?__debugger__=yes&cmd=1%2B1&frm=1&s=1x2",
        ]
        for path in paths * 2:
            got = server.outcome(path, source="127.0.0.2")
            want = bare.outcome(path, source="127.0.0.2")
            assert got == want, path
        assert is_debugger(server.get("/fail"))


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_disable_and_lockout_reach_every_worker(tmp_path: Path, kind: str) -> None:
    opened = open_window_first(tmp_path, "127.0.0.1")
    app = f"{APPS}:fastapi_app" if kind == "uvicorn" else f"{APPS}:fastapi_bare"
    with start(kind, tmp_path, app) as server:
        # Pages of two workers (each its own secret).
        first, _, owner = debugger_page(server.get("/fail"))
        with connected_elsewhere(server.port, owner) as sock:
            second = debugger_page(send_on(sock, "/fail", {}))[0]
        secrets = {first, second}
        assert len(secrets) == 2
        # Ten wrong PINs, spread over the workers' secrets, lock every worker.
        ordered = sorted(secrets)
        paths = [
            debugger_path(ordered[i % len(ordered)], cmd="pinauth", pin="000-000-000")
            for i in range(10)
        ]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda p: server.get(p).text, paths))
        assert answers.count('{"auth": false, "exhausted": true}') >= 1
        for secret in ordered:
            reply = server.get(debugger_path(secret, cmd="pinauth", pin=opened.pin))
            assert reply.text == '{"auth": false, "exhausted": true}'
        ipdebug.disable(server.flag, environ={})
        disabled_at = time.monotonic()
        last_gated = disabled_at
        with ThreadPoolExecutor(4) as pool:
            while time.monotonic() - disabled_at < 2.5:
                # When a batch was sent, not answered: a worker handles a
                # request after it was sent, so a busy machine only makes it
                # later (and so denied); each worker reads the flag in its
                # event loop, at least once a second.
                sent = time.monotonic()
                for reply in pool.map(lambda _: server.get("/fail"), range(8)):
                    if is_debugger(reply):
                        last_gated = sent
                    else:
                        assert reply.status == 500
                        assert reply.body == b"Internal Server Error"
        assert last_gated - disabled_at <= 1.0
        assert server.audit("window.closed")


def test_a_long_command_does_not_block_another_request(tmp_path: Path) -> None:
    opened = open_window_first(tmp_path, "127.0.0.1")
    with uvicorn(tmp_path, f"{APPS}:fastapi_app", workers=1) as server:
        secret, frame, _ = debugger_page(server.get("/fail"))
        cookie = pin_cookie(server, secret, opened.pin)
        done = threading.Event()

        def slow() -> None:
            reply = server.get(
                debugger_path(secret, cmd="__import__('time').sleep(2)", frm=frame),
                headers=cookie,
            )
            assert reply.status == 200
            done.set()

        thread = threading.Thread(target=slow)
        thread.start()
        try:
            wait_until(lambda: bool(server.audit("console.command")), timeout=10)
            # The command runs now, in the only worker; another client is
            # still answered, before the command ends.
            other = server.get("/", source="127.0.0.2")
            assert other.body == b"hello from fastapi\n"
            assert not done.is_set()
        finally:
            thread.join(30)
        assert done.is_set()
