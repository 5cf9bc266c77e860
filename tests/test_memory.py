"""ipdebug keeps at most ``max_tracebacks`` tracebacks (with their locals)
and none once the window ends; Werkzeug keeps every one forever.
"""

from __future__ import annotations

import gc
import typing as t
import weakref

import ipdebug
from ipdebug import IPDebugMiddleware

from .conftest import Payload, client, open_window


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
