"""Quart integration.

Quart, like Flask, turns an unhandled view exception into its own 500
response (unless ``PROPAGATE_EXCEPTIONS``, debug or testing is on, which are
app-wide), so an ASGI middleware never sees it. ipdebug listens to Quart's
``got_request_exception`` signal and, for gated-in requests only, hands the
exception to :class:`~ipdebug.asgi.IPDebugASGIMiddleware`, which serves the
debugger page instead of the 500 it receives. Every other request keeps
Quart's error handling unchanged. The middleware connects the signal itself
when Quart is imported:

.. code-block:: python

    from ipdebug.asgi import IPDebugASGIMiddleware

    app = IPDebugASGIMiddleware(quart_app)

or, keeping ``app`` the Quart object, :func:`init_app`.
"""

from __future__ import annotations

import typing as t

from quart import Quart, got_request_exception, request

from .asgi import IPDebugASGIMiddleware
from .stash import stash_exception


async def _on_exception(
    sender: object, exception: BaseException, **extra: object
) -> None:
    # The scope is the one the middleware passed down: marked when gated in.
    stash_exception(t.cast("dict[str, object]", request.scope), exception)


def connect_signal() -> None:
    """Connect ipdebug's receiver to ``got_request_exception`` for every
    Quart app (idempotent). It acts only on gated-in requests.
    """
    got_request_exception.connect(_on_exception)


def init_app(app: Quart, **options: t.Any) -> IPDebugASGIMiddleware:
    """Wrap ``app.asgi_app`` in :class:`~ipdebug.asgi.IPDebugASGIMiddleware`,
    keeping ``app`` itself the ASGI entry point; returns the middleware.

    :param options: keyword arguments of :class:`~ipdebug.IPDebugMiddleware`.
    """
    connect_signal()
    middleware = IPDebugASGIMiddleware(app.asgi_app, **options)
    app.asgi_app = middleware  # type: ignore[method-assign,assignment]
    return middleware
