"""The flag-off hot path's ticker (ipdebug.ticker), with real threads and
real time: the skip engages, a window written while requests skip the
clock is still seen (not missed), an open window never skips its expiry
check, a forked child reads the clock until its own thread ticks, and
without threads nothing skips.
"""

from __future__ import annotations

import os
import sys
import time
import types
import typing as t

import pytest
from webtest import TestApp

import ipdebug
from ipdebug import IPDebugMiddleware

from .conftest import HOST, OPERATOR, is_gated


def wait_for(predicate: t.Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def operator(middleware: IPDebugMiddleware) -> TestApp:
    return TestApp(
        middleware, extra_environ={"REMOTE_ADDR": OPERATOR, "HTTP_HOST": HOST}
    )


def quiet_after_requests(middleware: IPDebugMiddleware, app: TestApp) -> bool:
    """Requests (window closed) until one leaves the skip on."""
    is_gated(app)
    return middleware.quiet


def test_a_window_written_while_requests_skip_the_clock_is_seen(
    make: t.Callable[..., IPDebugMiddleware], flag: str
) -> None:
    middleware = make()
    app = operator(middleware)
    wait_for(lambda: quiet_after_requests(middleware, app))
    ipdebug.enable("5m", allow=[OPERATOR], flag=flag, environ={})
    # Not missed: a stuck skip would serve the app alone for ever. (The
    # figure, within the poll interval, is test_window_timing's.)
    wait_for(lambda: is_gated(app))
    assert middleware.quiet is False
    ipdebug.disable(flag, environ={})
    wait_for(lambda: not is_gated(app))
    wait_for(lambda: quiet_after_requests(middleware, app))


def test_an_open_window_never_skips_its_expiry_check(
    make: t.Callable[..., IPDebugMiddleware], flag: str
) -> None:
    middleware = make()
    app = operator(middleware)
    wait_for(lambda: quiet_after_requests(middleware, app))
    opened = ipdebug.enable("2s", allow=[OPERATOR], flag=flag, environ={})
    middleware.switch.poll_now()
    assert middleware.quiet is False  # the switch's change cleared it
    while time.time() < opened.until.timestamp() - 0.2:
        assert is_gated(app)
        assert middleware.quiet is False
        time.sleep(0.02)
    while time.time() < opened.until.timestamp():
        time.sleep(0.005)
    # The first request after the end is denied, however the ticks fall.
    assert not is_gated(app)


def test_a_forked_child_reads_the_clock_until_its_own_thread_ticks(
    make: t.Callable[..., IPDebugMiddleware], flag: str
) -> None:
    middleware = make()
    app = operator(middleware)
    wait_for(lambda: quiet_after_requests(middleware, app))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no parent's thread runs here
        code = 1
        try:
            cleared = middleware.quiet is False
            ipdebug.enable("5m", allow=[OPERATOR], flag=flag, environ={})
            wait_for(lambda: is_gated(app), timeout=20)
            os.write(
                write, f"{cleared} {middleware._ticker._pid == os.getpid()}".encode()
            )
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        answer = os.read(read, 100).decode()
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == "True True"


def test_without_python_threads_nothing_skips(
    make: t.Callable[..., IPDebugMiddleware],
    flag: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under a uWSGI started without ``--enable-threads`` a thread would not
    run while the worker waits for requests: the clock is read every time.
    """
    uwsgi = types.ModuleType("uwsgi")
    uwsgi.has_threads = 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uwsgi", uwsgi)
    middleware = make(relay=False)
    app = operator(middleware)
    for _ in range(50):
        assert not is_gated(app)
        assert middleware.quiet is False
        time.sleep(0.01)
    ipdebug.enable("5m", allow=[OPERATOR], flag=flag, environ={})
    wait_for(lambda: is_gated(app))
