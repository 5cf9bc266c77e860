"""A plain WSGI app for real-server tests (not wrapped: servers wrap it)."""

from __future__ import annotations

import os
import typing as t


def app(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> list[bytes]:
    path = environ["PATH_INFO"]
    if path == "/fail":
        worker_pid = os.getpid()
        total = 0.0
        for n in [1, 2, 0]:
            total += 1 / n
        return [str(total + worker_pid).encode()]
    if path == "/big-fail":
        ballast = bytearray(1 << 20)  # a 1 MiB local, kept with the frame
        raise RuntimeError(f"failed holding {len(ballast)} bytes")
    body = f"hello {path}?{environ.get('QUERY_STRING', '')}".encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def make_app(
    global_conf: dict[str, str], **local_conf: str
) -> t.Callable[..., list[bytes]]:
    """PasteDeploy ``paste.app_factory`` for ``use = call:tests.apps.plain:make_app``."""
    return app
