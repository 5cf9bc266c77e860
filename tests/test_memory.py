"""ipdebug keeps at most ``max_tracebacks`` tracebacks (with their locals)
and none once the window ends; Werkzeug keeps every one forever.
"""

from __future__ import annotations

import gc
import typing as t
import weakref

import pytest

import ipdebug
from ipdebug import IPDebugMiddleware

from .conftest import Payload, client, open_window

pytestmark = pytest.mark.usefixtures("both_engines")


def fail_holding(middleware: IPDebugMiddleware) -> weakref.ref[Payload]:
    refs: list[weakref.ref[Payload]] = []
    client(middleware, **{"test.hold": lambda p: refs.append(weakref.ref(p))}).get(
        "/fail", status=500, expect_errors=True
    )
    return refs[0]


def test_a_local_dies_after_max_tracebacks_newer_errors(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make(max_tracebacks=3)
    open_window(middleware)
    watched = fail_holding(middleware)
    for count in range(1, 4):
        gc.collect()
        assert watched() is not None, f"dropped after only {count - 1} newer errors"
        fail_holding(middleware)
    gc.collect()
    assert watched() is None
    assert middleware.debugger.traceback_count == 3


def test_every_local_dies_when_the_window_is_disabled(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    middleware = make()
    open_window(middleware)
    watched = [fail_holding(middleware) for _ in range(5)]
    gc.collect()
    assert all(ref() is not None for ref in watched)
    ipdebug.disable(middleware.settings.flag, environ={})
    middleware.switch.poll_now()  # the next request notices
    gc.collect()
    assert [ref() for ref in watched] == [None] * 5
    assert middleware.debugger.traceback_count == 0


def test_a_request_in_flight_when_the_window_ends_keeps_nothing(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    """The window closes while a gated-in request runs (here: the request
    itself closes it); its traceback must not be kept for a closed window.
    """
    holder: dict[str, IPDebugMiddleware] = {}

    def closes_then_fails(
        environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
    ) -> list[bytes]:
        middleware = holder["mw"]
        ipdebug.disable(middleware.settings.flag, environ={})
        middleware.switch.poll_now()
        raise RuntimeError("failed after the window closed")

    middleware = holder["mw"] = make(closes_then_fails)
    open_window(middleware)
    # Gated in when it started, it gets no debugger page now: the exception
    # propagates as without ipdebug.
    with pytest.raises(RuntimeError, match="failed after the window closed"):
        client(middleware).get("/")
    gc.collect()
    assert middleware.debugger.traceback_count == 0


def test_thousands_of_errors_hold_exactly_max_tracebacks_frames(
    make: t.Callable[..., IPDebugMiddleware],
) -> None:
    """Tracebacks were once keyed by the id() of a temporary object: when
    the id was reused, the older entry's frames were orphaned (never
    evicted) until the window ended.
    """
    middleware = make(max_tracebacks=20)
    open_window(middleware)
    app = client(middleware)
    window = middleware.switch.current()
    assert window is not None
    app.get("/fail", status=500, expect_errors=True)
    per_traceback = len(middleware.debugger.sessions.get(window).frames)
    assert per_traceback >= 1
    for _ in range(2000):
        app.get("/fail", status=500, expect_errors=True)
    session = middleware.debugger.sessions.get(window)
    assert len(session.tracebacks) == 20
    assert len(session.frames) == 20 * per_traceback
    assert len(session.contexts) == 20 * per_traceback
