"""The ASGI middleware: the same debugger, gate and guarantees for ASGI apps.

.. code-block:: python

    from fastapi import FastAPI
    from ipdebug.asgi import IPDebugASGIMiddleware

    api = FastAPI()
    app = IPDebugASGIMiddleware(api, allow=["203.0.113.7"])

One gate, two adapters: this module turns an ASGI ``http`` scope into the
few WSGI environ keys the gate reads (``REMOTE_ADDR`` from
``scope["client"]``, ``Host`` and the forwarding headers from
``scope["headers"]``, Latin-1) and hands them to the *same*
:class:`~ipdebug.IPDebugMiddleware` core (settings, flag store, switch,
gate, PIN, lockout, audit, relay, debugger) that the WSGI side uses. It
decides nothing about security itself.

- ``websocket`` and ``lifespan`` scopes, denied clients and requests while
  no window is open reach the app with the original ``scope``, ``receive``
  and ``send``: the same messages, exceptions propagated unchanged.
- For a gated-in request the response start is held until its first body
  bytes, and a 5xx response (up to :data:`~ipdebug.asgiscope.MAX_HELD` bytes) until the app
  returns, so that the 500 page Starlette's ``ServerErrorMiddleware`` (or an
  exception handler for ``Exception``/500) sends before re-raising, or the
  500 of Quart or Django (whose ``got_request_exception`` signals hand the
  exception over), is replaced by the debugger page. An error after body
  bytes were sent is re-raised: the server aborts the connection.
- Debugger requests (resources, PIN, console commands) and page rendering
  run in a small pool of worker threads (asyncio's executor; an asyncio
  event loop is required), so a slow console command does not stall the
  event loop; at most :data:`MAX_PENDING` wait at once.

**Security:** the debugger runs arbitrary Python in the server process.
Under uvicorn, configure exactly one trusted walk of ``X-Forwarded-For``:
see docs/asgi.md (``--no-proxy-headers`` with
``trusted_proxies``, never ``--forwarded-allow-ips '*'``).
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import sys
import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

from . import middleware as _core
from .asgidebugger import (
    answer,
    page_headers,
    read_body,
    render_page,
    route_of,
    send_response,
)
from .asgiscope import GateEnviron, HeldSend, full_environ, remote_addr
from .audit import logger
from .stash import CAPTURE_KEY, EXCEPTION_KEY, GATED_KEY

if t.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from _typeshed.wsgi import WSGIApplication

    from .debugger.dispatch import Debugger
    from .stores import Window

    Scope = MutableMapping[str, t.Any]
    Message = MutableMapping[str, t.Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    # Any: frameworks type their scopes as TypedDicts of their own.
    ASGIApp = Callable[[t.Any, t.Any, t.Any], Awaitable[None]]

#: Threads per process that run debugger work (commands, pages).
MAX_THREADS = 4
#: Peers whose denial is kept per window (see ``_remember_denied``).
MAX_DENIED = 4096
#: Debugger jobs running or queued at once; beyond that a request is served
#: as if ipdebug were not there (fail closed), and a warning logged.
MAX_PENDING = 16


class IPDebugASGIMiddleware:
    """Serve the debugger to allowed clients of an ASGI 3 app while a window
    is open.

    Takes exactly the keyword arguments (and reads the same ``IPDEBUG_*``
    environment variables) as :class:`~ipdebug.IPDebugMiddleware`, and
    builds one as its core: the gate, PIN, lockout, audit trail and relay
    are that core's.

    :param app: the ASGI 3 application (FastAPI, Starlette, Quart, Django's
        ``ASGIHandler``, ...).
    :param options: keyword arguments of :class:`~ipdebug.IPDebugMiddleware`.
    :raises ValueError: (:class:`~ipdebug.errors.ConfigError`) naming the
        bad setting and value.
    """

    __slots__ = (
        "__weakref__",
        "_admit",
        "_denied",
        "_denied_in",
        "_hand_over",
        "_handed",
        "_pending",
        "_pool",
        "_pool_pid",
        "_switch",
        "app",
        "core",
    )

    def __init__(self, app: ASGIApp, **options: t.Any) -> None:
        if not callable(app):
            from .errors import ConfigError

            raise ConfigError("app", app, "is not an ASGI application (not callable)")
        self.app = app
        # The core never calls ``app``: it is there for the standalone
        # console's namespace (``app``) and for ``ipdebug doctor``'s walk.
        self.core = _core.IPDebugMiddleware(t.cast("WSGIApplication", app), **options)
        self._switch = self.core.switch
        self._admit = self.core._admit
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pending = threading.BoundedSemaphore(MAX_PENDING)
        if "quart" in sys.modules:
            from .quart import connect_signal

            connect_signal()
        #: Whether a framework's signal receiver may hand errors over (Quart
        #: or Django is loaded): only then do requests carry the hook.
        self._hand_over = "quart" in sys.modules or "django" in sys.modules
        # Bound once: put in the scope of every request not gated in.
        self._handed = self._capture_handed
        #: Peers the gate denied by their address alone, in ``_denied_in``.
        self._denied: set[str | None] = set()
        self._denied_in: Window | None = None

    @property
    def debugger(self) -> Debugger:
        return self.core.debugger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        core = self.core
        # The hot path: no window open, and no flag check due before the
        # ticker's next tick (see ipdebug.ticker): one attribute read.
        if core.quiet:
            return await self.app(scope, receive, send)
        mono = _monotonic()
        # No window open and no flag check due, or not HTTP.
        if core.closed_until > mono:
            core._quieten(mono)
            return await self.app(scope, receive, send)
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        window = client = None
        try:
            peer = scope.get("client")
            addr = (
                peer[0]
                if type(peer) is tuple and peer and type(peer[0]) is str
                else remote_addr(peer)
            )
            window = self._switch.current(mono)
            if window is not None and (
                window is not self._denied_in or addr not in self._denied
            ):
                gate = GateEnviron(REMOTE_ADDR=addr)
                gate._headers = scope.get("headers") or ()
                client = self._admit(gate, window)
                if client is None and gate._headers is not None:
                    self._remember_denied(window, addr)
        except Exception:
            # Fail closed: a bug in ipdebug serves the request as without it.
            self.core._log_once(
                logging.ERROR,
                "ipdebug denied a request after an internal error",
                exc_info=True,
            )
            client = None
        if client is None or window is None:
            if (window is None or not window.capture) and not self._switch.changing():
                return await self.app(scope, receive, send)
            # Not gated in, and the window captures (or may: another thread
            # is reading the flag, and capture() asks again): record an
            # unhandled error (Starlette's ServerErrorMiddleware re-raises
            # after its 500; Quart's and Django's signal receivers hand over
            # the errors they turn into their own 500, through the hook in a
            # copy of the scope, as the WSGI side does in the environ), then
            # re-raise the very same exception.
            if self._hand_over:
                scope = {**scope, CAPTURE_KEY: self._handed}
            try:
                return await self.app(scope, receive, send)
            except Exception as exc:
                self._capture_handed(exc, scope, skip=1)
                raise
        await self._gated(scope, receive, send, gate.loaded(), window, client)

    def _remember_denied(self, window: Window, addr: str | None) -> None:
        """Keep the gate's denial of ``addr`` for the rest of ``window``.

        Only for a denial the gate made from the peer address alone (it read
        no header: :class:`GateEnviron` loads them on the first read of any
        other key), which the gate decides the same way for as long as the
        window is the same object; so the next request from that peer skips
        building the gate's view of the scope. Only denials are kept: at
        worst a request is denied, never let in. Bounded.
        """
        if window is not self._denied_in:
            self._denied = set()
            self._denied_in = window
        elif len(self._denied) >= MAX_DENIED:
            self._denied.clear()
        self._denied.add(addr)

    def _capture_handed(
        self,
        error: BaseException,
        scope: Scope,
        *,
        contexts: t.Sequence[object] = (),
        skip: int = 0,
    ) -> None:
        """Hand a failing request that is not gated in to the core's
        capture, given its scope: the error it raised (``skip=1``: this
        middleware's frame), or the one Quart's or Django's signal receiver
        hands over (see :func:`~ipdebug.stash.stash_exception`). Never
        raises (the core's capture neither).
        """
        try:
            gate = GateEnviron(REMOTE_ADDR=remote_addr(scope.get("client")))
            gate._headers = scope.get("headers") or ()
            environ = gate.loaded()
            full_environ(scope, environ)
            self.core.capture(error, environ, skip=skip, contexts=contexts)
        except Exception:
            self.core._log_once(
                logging.ERROR, "ipdebug could not capture an error", exc_info=True
            )

    async def _gated(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        environ: dict[str, t.Any],
        window: Window,
        client: str,
    ) -> None:
        if window.attach == "debugpy":
            self.core._log_once(
                logging.WARNING,
                "ipdebug does not start debugpy for ASGI apps (the window asks "
                "for --attach debugpy); use --attach pdb or the browser console",
            )
        try:
            full_environ(scope, environ)
            cross = self.debugger.cross_site(environ)
            errors = self.core.errors
            if cross:
                route = None
            elif errors is not None and errors.handles(environ.get("PATH_INFO")):
                # The captured errors' list and pages, with their consoles.
                route = "errors"
            else:
                route = route_of(self.debugger, environ)
        except Exception:
            # Fail closed, as the WSGI side: served as without ipdebug.
            logger.exception("ipdebug failed to serve a debugger request")
            cross, route = True, None
        if cross:
            # Another site's page sent it (or ipdebug failed): not gated in.
            await self.app(scope, receive, send)
            return
        if route is None:
            await self._run_app(scope, receive, send, environ, window, client)
            return
        if environ["REQUEST_METHOD"] == "POST":
            # The native engine's PIN and console input, and the banner's
            # "Close window now", come in the body.
            body, receive = await read_body(receive)
            environ["wsgi.input"] = io.BytesIO(body)
        response = await self._in_thread(
            answer, self.core, route, environ, window, client
        )
        if response is None:
            # Fail closed, as the WSGI side: the app answers (with the body).
            await self.app(scope, receive, send)
            return
        await send_response(send, response, environ)

    async def _run_app(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        environ: dict[str, t.Any],
        window: Window,
        client: str,
    ) -> None:
        scope = {**scope, GATED_KEY: True}
        held = HeldSend(send)
        error: BaseException | None
        skip = 0
        try:
            await self.app(scope, held.receive(receive), held)
        except Exception as exc:
            error, skip = exc, 1  # skip this frame in the traceback
        else:
            # Quart and Django hand over the exceptions they turned into a 500.
            error = scope.pop(EXCEPTION_KEY, None)
            if error is None or held.sent:
                await held.flush()
                return
        if held.sent:
            # Body bytes are on the wire: let the server abort the connection
            # rather than end a truncated body cleanly.
            self.core.audit(
                "debugger.stream_error", client, path=environ.get("PATH_INFO", "")
            )
            raise error
        page = await self._in_thread(
            render_page, self.debugger, error, skip, environ, window, client
        )
        if page is None:
            # The window closed meanwhile, or ipdebug failed: as without it.
            if skip:
                raise error
            await held.flush()  # the framework's own 500
            return
        body, as_json = page
        headers = page_headers(self.debugger, body, environ, as_json=as_json)
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _in_thread(self, func: Callable[..., _T], *args: t.Any) -> _T | None:
        """Run ``func`` in this process's debugger threads; ``None`` when
        too many jobs wait already, or when it failed (logged).
        """
        if not self._pending.acquire(blocking=False):
            logger.warning("ipdebug: too many debugger requests at once; one refused")
            return None
        try:
            if self._pool is None or self._pool_pid != os.getpid():
                # Created lazily, in the process that serves (after a fork).
                self._pool = ThreadPoolExecutor(MAX_THREADS, "ipdebug")
                self._pool_pid = os.getpid()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._pool, functools.partial(func, *args)
            )
        except Exception:
            logger.exception("ipdebug failed to serve a debugger request")
            return None
        finally:
            self._pending.release()

    def close(self) -> None:
        """Stop relaying, drop every traceback, stop the threads."""
        self.core.close()
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.shutdown(wait=False)
        self._pool = None


_T = t.TypeVar("_T")
#: The switch's clock (``IPDebugMiddleware`` gives it ``time.monotonic``).
_monotonic = time.monotonic


def wrap_asgi(app: ASGIApp, **options: t.Any) -> IPDebugASGIMiddleware:
    """Wrap an ASGI app loaded by a server (gunicorn's uvicorn workers): a
    Django ``ASGIHandler`` as :func:`ipdebug.django.get_asgi_application`
    does, anything else as is.
    """
    if type(app).__module__.startswith("django."):
        from .django import wrap_asgi as wrap_django

        return wrap_django(app, **options)
    return IPDebugASGIMiddleware(app, **options)
