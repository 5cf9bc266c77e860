"""A plain WSGI application (no framework) wrapped by ipdebug.

``gunicorn examples.wsgi_app:application`` with, for example,
``IPDEBUG_ALLOW=203.0.113.7 IPDEBUG_TRUSTED_HOSTS=app.example.com``.
"""

from __future__ import annotations

import typing as t

from ipdebug import IPDebugMiddleware


def app(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> list[bytes]:
    if environ["PATH_INFO"] == "/fail":
        orders = [120, 80, 0]
        ratios = [orders[0] / n for n in orders]  # ZeroDivisionError on the last one
        return [repr(ratios).encode()]
    body = b"hello from a plain WSGI app; /fail fails\n"
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


application = IPDebugMiddleware(app)
