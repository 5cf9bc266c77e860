"""A Quart app for the tests: ``bare``, and ``app`` wrapped by ipdebug from
the ``IPDEBUG_*`` environment variables. Quart turns the exception of
``/fail`` into its own 500; ipdebug takes it over for gated-in requests
through ``got_request_exception``.
"""

from __future__ import annotations

import typing as t

from quart import Quart

bare = Quart(__name__)


@bare.get("/")
async def index() -> str:
    return "hello from quart\n"


@bare.get("/fail")
async def fail() -> str:
    marker = "quart-local-44"  # read by the console test
    raise LookupError(f"quart view failed with {marker}")


def __getattr__(name: str) -> t.Any:
    if name != "app":
        raise AttributeError(name)
    from ipdebug.asgi import IPDebugASGIMiddleware

    wrapped = IPDebugASGIMiddleware(bare)
    globals()["app"] = wrapped
    return wrapped
