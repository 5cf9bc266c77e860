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
from flask import globals as flask_globals

from .middleware import IPDebugMiddleware
from .stash import CAPTURE_KEY, offer_names, stash_exception

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
    environ = request.environ
    contexts: list[object] = []
    if CAPTURE_KEY in environ:
        contexts = _active_contexts()
    if stash_exception(environ, exception, contexts):
        offer_names(environ, CONSOLE_NAMES)


def _active_contexts() -> list[object]:
    """Flask's app and request context, for the console of a captured
    error (what Flask hands to ``werkzeug.debug.preserve_context`` for a
    gated-in request). Flask internal, checked with Flask 3.1: without it,
    the console works without them.
    """
    found = []
    for name in ("_cv_app", "_cv_request"):
        var = getattr(flask_globals, name, None)
        context = var.get(None) if var is not None else None
        if context is not None:
            found.append(context)
    return found


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
