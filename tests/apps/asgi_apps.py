"""ASGI apps for the tests: the same routes as a FastAPI app and as a
Starlette app, each bare (``fastapi_bare``, ``starlette_bare``) and wrapped
by ipdebug from the ``IPDEBUG_*`` environment variables as a deployment
would be (``fastapi_app``, ``starlette_app``), plus a FastAPI app with an
exception handler for ``Exception`` (``fastapi_handled``).

Routes: ``/`` says hello; ``/fail`` (``async def``) and ``/fail-sync``
(``def``) raise with a local ``marker`` set; ``/stream`` sends a chunk then
raises; ``/client`` reports ``scope["client"]``, the forwarding headers and
the pid as JSON; ``/pid`` the pid.
"""

from __future__ import annotations

import os
import typing as t

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ipdebug.asgi import IPDebugASGIMiddleware


class Boom(Exception):
    pass


def _report(request: Request) -> dict[str, t.Any]:
    return {
        "client": list(request.client) if request.client else None,
        "x_forwarded_for": request.headers.get("x-forwarded-for"),
        "forwarded": request.headers.get("forwarded"),
        "pid": os.getpid(),
    }


async def _chunks() -> t.AsyncIterator[bytes]:
    yield b"first chunk\n"
    raise Boom("after the first chunk")


def build_fastapi(*, handler: bool = False) -> FastAPI:
    api = FastAPI()

    @api.get("/", response_class=PlainTextResponse)
    async def index() -> str:
        return "hello from fastapi\n"

    @api.get("/fail")
    async def fail() -> None:
        marker = "async-local-42"  # read by the console tests
        raise Boom(f"async view failed with {marker}")

    @api.get("/fail-sync")
    def fail_sync() -> None:
        marker = "sync-local-43"
        raise Boom(f"sync view failed with {marker}")

    @api.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(_chunks(), media_type="text/plain")

    @api.get("/client")
    async def client(request: Request) -> dict[str, t.Any]:
        return _report(request)

    @api.get("/pid", response_class=PlainTextResponse)
    def pid() -> str:
        return str(os.getpid())

    if handler:

        @api.exception_handler(Exception)
        async def on_error(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"error": "handled by the app"}, status_code=500)

    return api


async def _index(request: Request) -> Response:
    return Response("hello from starlette\n", media_type="text/plain")


async def _fail(request: Request) -> Response:
    marker = "async-local-42"
    raise Boom(f"async view failed with {marker}")


def _fail_sync(request: Request) -> Response:
    marker = "sync-local-43"
    raise Boom(f"sync view failed with {marker}")


async def _stream(request: Request) -> Response:
    return StreamingResponse(_chunks(), media_type="text/plain")


async def _client(request: Request) -> Response:
    return JSONResponse(_report(request))


def _pid(request: Request) -> Response:
    return Response(str(os.getpid()), media_type="text/plain")


def build_starlette() -> Starlette:
    return Starlette(
        routes=[
            Route("/", _index),
            Route("/fail", _fail),
            Route("/fail-sync", _fail_sync),
            Route("/stream", _stream),
            Route("/client", _client),
            Route("/pid", _pid),
        ]
    )


fastapi_bare = build_fastapi()
starlette_bare = build_starlette()
fastapi_handled_bare = build_fastapi(handler=True)


def __getattr__(name: str) -> t.Any:
    # Wrapped lazily, so importing the bare apps reads no settings.
    bare = {
        "fastapi_app": fastapi_bare,
        "starlette_app": starlette_bare,
        "fastapi_handled": fastapi_handled_bare,
    }.get(name)
    if bare is None:
        raise AttributeError(name)
    wrapped = IPDebugASGIMiddleware(bare)
    globals()[name] = wrapped
    return wrapped
