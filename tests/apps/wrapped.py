"""A WSGI module for servers that load an app by name (waitress, uWSGI):
``app`` is the bare app, ``application`` the same app wrapped by ipdebug,
configured from the ``IPDEBUG_*`` environment variables as a deployment
would be.

``app`` is ``tests.apps.plain:app`` plus one route, ``/environ``, that
answers with what the server put in the environ for the client address, as
JSON, so tests can check what a server really reports.
"""

from __future__ import annotations

import json
import os
import typing as t

from ipdebug import IPDebugMiddleware

from . import plain

#: The environ keys ``/environ`` reports.
REPORTED = ("REMOTE_ADDR", "REMOTE_PORT", "HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED")


def app(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> t.Iterable[bytes]:
    if environ["PATH_INFO"] != "/environ":
        return plain.app(environ, start_response)
    report = {key: environ.get(key) for key in REPORTED}
    report["pid"] = os.getpid()
    body = json.dumps(report).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


application = IPDebugMiddleware(app)
