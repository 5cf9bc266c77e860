"""External debuggers for one address: a post-mortem pdb over a unix socket
(``ipdebug enable --attach pdb`` and ``ipdebug attach``).
"""

from __future__ import annotations

import io
import os
import socket
import stat
import threading
import time
import typing as t

import ipdebug
import ipdebug.attach
from ipdebug import IPDebugMiddleware
from ipdebug.attach import attach_terminal, sessions
from ipdebug.cli import main

from .attaching import read_until, wait_for_session
from .conftest import STRANGER, Boom, client, open_window


def fail_in_background(
    middleware: IPDebugMiddleware, **environ: str
) -> tuple[threading.Thread, dict[str, t.Any]]:
    result: dict[str, t.Any] = {}

    def run() -> None:
        try:
            result["page"] = client(middleware, **environ).get(
                "/fail", status=500, expect_errors=True
            )
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_pdb_session_over_the_socket_then_the_browser_page(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    middleware = make(attach_wait=10)
    open_window(middleware, attach="pdb")
    thread, result = fail_in_background(middleware)
    path = wait_for_session(middleware.debugger.attach_dir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        assert b"Boom: failed with local_value=42" in read_until(sock, b"(Pdb) ")
        sock.sendall(b"p local_value\n")
        assert b"42" in read_until(sock, b"(Pdb) ")
        sock.sendall(b"p type(payload).__name__\n")
        assert b"'Payload'" in read_until(sock, b"(Pdb) ")
        sock.sendall(b"c\n")
        read_until(sock, b"never")  # until pdb closes the connection
    thread.join(10)
    assert "Werkzeug Debugger" in result["page"].text  # the request went on
    assert not os.path.exists(path)
    events = [e for e in records.events() if e.startswith("attach.")]
    assert events == [
        "attach.waiting",
        "attach.connected",
        "attach.command",
        "attach.command",
        "attach.command",
        "attach.ended",
    ]
    commands = [
        r.getMessage()
        for r in records.records
        if getattr(r, "ipdebug_event", "") == "attach.command"
    ]
    assert "source='p local_value'" in commands[0] and "source='c'" in commands[2]


def test_nobody_attaches_the_request_goes_on_in_bounded_time(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    middleware = make(attach_wait=0.5)
    open_window(middleware, attach="pdb")
    start = time.monotonic()
    page = client(middleware).get("/fail", status=500, expect_errors=True)
    assert 0.5 <= time.monotonic() - start < 10  # bounded; generous when busy
    assert "Werkzeug Debugger" in page.text
    assert "attach.timeout" in records.events()
    assert sessions(middleware.debugger.attach_dir) == []


def test_denied_requests_never_start_a_debugger(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    middleware = make(attach_wait=30)
    open_window(middleware, attach="pdb")
    start = time.monotonic()
    thread, result = fail_in_background(middleware, REMOTE_ADDR=STRANGER)
    thread.join(30)
    assert isinstance(result["error"], Boom)
    assert time.monotonic() - start < 10  # far below the 30 s wait
    assert not [e for e in records.events() if e.startswith("attach.")]


def test_ipdebug_attach_bridges_a_terminal(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make(attach_wait=10)
    open_window(middleware, attach="pdb")
    out = io.StringIO()
    code: list[int] = []
    # The operator runs `ipdebug attach` first; it waits for a session.
    terminal = threading.Thread(
        target=lambda: code.append(
            attach_terminal(
                middleware.debugger.attach_dir,
                wait=10,
                stdin=io.StringIO("p local_value * 2\nc\n"),
                stdout=out,
            )
        )
    )
    terminal.start()
    thread, result = fail_in_background(middleware)
    thread.join(15)
    terminal.join(15)
    assert code == [0]
    assert "attached to" in out.getvalue() and "84" in out.getvalue()
    assert "Werkzeug Debugger" in result["page"].text


def test_attach_without_a_session_says_so(tmp_path: t.Any, capsys: t.Any) -> None:
    assert attach_terminal(str(tmp_path / "none"), wait=0.2) == 1
    assert "no debugger waiting" in capsys.readouterr().err


def test_a_command_after_disable_does_not_run_and_the_session_ends(
    make: t.Callable[..., IPDebugMiddleware],
    records: t.Any,
    tmp_path: t.Any,
    monkeypatch: t.Any,
    capsys: t.Any,
) -> None:
    """Checked before each command (the idle watch is slowed down here, so
    only that check can stop it).
    """
    monkeypatch.setattr(ipdebug.attach, "WATCH_INTERVAL", 3600.0, raising=False)
    marker = tmp_path / "ran"
    middleware = make(attach_wait=10)
    open_window(middleware, attach="pdb")
    thread, result = fail_in_background(middleware)
    path = wait_for_session(middleware.debugger.attach_dir)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        read_until(sock, b"(Pdb) ")
        sock.sendall(b"p local_value\n")
        assert b"42" in read_until(sock, b"(Pdb) ")
        assert main(["disable", "--flag", middleware.settings.flag]) == 0
        sock.sendall(f"!open({str(marker)!r}, 'w').close()\n".encode())
        said = read_until(sock, b"never")  # until the session closes
    thread.join(10)
    assert b"the debugging window closed; this session ends" in said
    assert not marker.exists()
    # The request ends as without ipdebug: its exception propagates.
    assert isinstance(result.get("error"), Boom)
    assert "attach.closed" in records.events()
    commands = [
        r.getMessage()
        for r in records.records
        if getattr(r, "ipdebug_event", "") == "attach.command"
    ]
    assert len(commands) == 1 and "p local_value" in commands[0]


def test_an_idle_session_ends_soon_after_disable(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any, capsys: t.Any
) -> None:
    middleware = make(attach_wait=10)
    open_window(middleware, attach="pdb")
    thread, result = fail_in_background(middleware)
    path = wait_for_session(middleware.debugger.attach_dir)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(path)
        read_until(sock, b"(Pdb) ")
        assert main(["disable", "--flag", middleware.settings.flag]) == 0
        # Nothing is typed: the session's watch notices on its own.
        said = read_until(sock, b"this session ends")
    thread.join(20)
    assert b"the debugging window closed" in said
    assert isinstance(result.get("error"), Boom)
    assert "attach.closed" in records.events()


def test_a_window_closed_before_anyone_attached_offers_no_session(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    """The view itself closes the window before failing."""

    def closes_then_fails(environ: t.Any, start_response: t.Any) -> list[bytes]:
        ipdebug.disable(middleware.settings.flag, environ={})
        raise Boom("failed after the window closed")

    middleware = make(closes_then_fails, attach_wait=10)
    open_window(middleware, attach="pdb")
    start = time.monotonic()
    thread, result = fail_in_background(middleware)
    thread.join(10)
    assert time.monotonic() - start < 5  # did not wait for an attach
    assert isinstance(result.get("error"), Boom)
    assert not [e for e in records.events() if e.startswith("attach.")]
