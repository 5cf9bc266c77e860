"""Flask integration.

Flask turns an unhandled view exception into its own 500 response (unless
``PROPAGATE_EXCEPTIONS``, debug or testing is on, which are app-wide), so the
middleware never sees it. ipdebug listens to Flask's ``got_request_exception``
signal and, for gated-in requests only, hands the exception to the middleware,
which serves the debugger page instead of the 500 it receives. Every other
request keeps Flask's error handling (``@app.errorhandler(500)``, logging)
unchanged. The middleware connects the signal itself when Flask is imported,
so both forms work:

.. code-block:: python

    app = IPDebugMiddleware(flask_app)
    flask_app.wsgi_app = IPDebugMiddleware(flask_app.wsgi_app)

or, equivalently, :func:`init_app`.
"""

from __future__ import annotations

import typing as t

from flask import Flask, current_app, g, got_request_exception, request, session

from .middleware import IPDebugMiddleware
from .stash import offer_names, stash_exception

#: What the console offers in a frame that does not define these names:
#: Flask's proxies, which resolve to the failing request's objects because
#: the console runs its commands inside that request's preserved contexts.
CONSOLE_NAMES: dict[str, object] = {
    "request": request,
    "g": g,
    "current_app": current_app,
    "session": session,
}


def _on_exception(sender: object, exception: BaseException, **extra: object) -> None:
    if stash_exception(request.environ, exception):
        offer_names(request.environ, CONSOLE_NAMES)


def connect_signal() -> None:
    """Connect ipdebug's receiver to ``got_request_exception`` for every
    Flask app (idempotent). It acts only on gated-in requests.
    """
    # A module-level function lives as long as the module: a weak
    # reference is enough, and connecting twice keeps one receiver.
    got_request_exception.connect(_on_exception)


def init_app(app: Flask, **options: t.Any) -> IPDebugMiddleware:
    """Wrap ``app.wsgi_app`` in :class:`~ipdebug.IPDebugMiddleware`, keeping
    ``app`` itself the WSGI entry point; returns the middleware.

    :param options: keyword arguments of ``IPDebugMiddleware``.
    """
    middleware = IPDebugMiddleware(app.wsgi_app, **options)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    return middleware
