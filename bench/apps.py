"""WSGI apps for the benchmarks (importable by gunicorn as bench.apps:...)."""

from __future__ import annotations

import os
import typing as t

from werkzeug.debug import DebuggedApplication
from werkzeug.middleware.proxy_fix import ProxyFix

BODY = b"hello, world\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def hello(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> list[bytes]:
    """The minimal app every in-process figure goes through."""
    start_response("200 OK", HEADERS)
    return [BODY]


def server_app(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> list[bytes]:
    """For whole-server runs: ``/`` hello, ``/big-fail`` fails holding a
    1 MiB local, ``/probe`` tells which worker answered and whether ipdebug
    gated the request in.
    """
    path = environ["PATH_INFO"]
    if path == "/big-fail":
        ballast = bytearray(1 << 20)
        raise RuntimeError(f"failed holding {len(ballast)} bytes")
    if path == "/probe":
        body = f"{os.getpid()} {environ.get('ipdebug.gated') is True}".encode()
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        )
        return [body]
    return hello(environ, start_response)


def passthrough(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> t.Iterable[bytes]:
    """The floor any middleware pays: a function that calls the app."""
    return hello(environ, start_response)


class NoopMiddleware:
    """The floor any *class-based* middleware pays (CPython calls an
    instance's ``__call__`` more slowly than a function).
    """

    def __init__(self, app: t.Callable[..., t.Any]) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
    ) -> t.Any:
        return self.app(environ, start_response)


debugged = DebuggedApplication(server_app, evalex=True)
debugged_hello = DebuggedApplication(hello, evalex=True)
proxy_fixed = ProxyFix(hello)
