"""The interactive debugger, served by ipdebug to gated-in requests.

The page, its resources and the console's wire protocol come from an engine
(Werkzeug's own, or ipdebug's native one). What this module owns is the
dispatcher around them, shared by both, because Werkzeug's
``DebuggedApplication`` was built for one developer on one process:

- the PIN is the window's one-time PIN, checked against the flag's scrypt
  hash; the cookie is signed for that window only; failures are counted by
  the flag store across every worker, and Werkzeug's ``printpin`` (which
  writes the PIN to the server's log) does nothing;
- at most ``max_tracebacks`` tracebacks are kept (Werkzeug keeps every one,
  with every local variable, for the life of the process), all dropped when
  the window changes;
- the secret is per process and per window, ``<pid>x<random>~<instance>``;
- a ``__debugger__`` request that matches nothing gets a 4xx with a reason,
  never the app (which would re-run the failing view);
- an error after the body has started is re-raised to the server, which
  aborts the connection, instead of ending a truncated body cleanly;
- every response of the debugger carries ``Cache-Control: no-store``;
- a request that another site's page made the operator's browser send
  (:mod:`ipdebug.gate.crosssite`) is not gated in: it reaches the app as is.

The :class:`Debugger` is the entry point: the middleware hands it the
gated-in requests, tells it of window changes, and answers its
:class:`~ipdebug.debugger.settings.Gatekeeper` questions. It sends the
page's own requests to :mod:`~ipdebug.debugger.commands` and the rest to
:mod:`~ipdebug.debugger.pages` (the app, and the page for its error), and
answers what other workers relay to it. What the browser sees (page,
resources, console output) comes from an engine
(:mod:`ipdebug.debugger.engines`); the PIN is
:mod:`ipdebug.debugger.pinguard`. Both engines get the same gate, PIN,
lockout, relay, banner, audit and memory bounds.
"""

from __future__ import annotations

import json
import logging
import os
import typing as t

from werkzeug.wrappers import Request, Response

from ..attach import Debugpy
from ..audit import Auditor, LogOnce, logger
from ..gate import is_cross_site
from ..stores import FlagStore, Window
from .commands import Commands
from .engines import Engine
from .errorpages import CAPTURES_MESSAGE, ErrorPages
from .pages import Pages
from .pinguard import PinGuard
from .relay import MESSAGE_KEY, Answer, Relay, relayed_environ, unavailable
from .sessions import Sessions
from .settings import INSTANCE_HEADER, DebuggerSettings, Gatekeeper

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..capture import Captures

_NOT_OPEN: Answer = (
    "403 Forbidden",
    [("Content-Type", "text/plain"), ("Cache-Control", "no-store")],
    b"ipdebug: not open for this client\n",
)


class Debugger:
    """Serves the debugger for ``app`` to requests already gated in.

    :param app: the wrapped WSGI application.
    :param settings: how it behaves (:class:`DebuggerSettings`).
    :param store: the flag store (PIN failures are counted there).
    :param audit: where events go.
    :param captures: this process's captured errors (``enable --capture``),
        listed by the errors pages and counted on the banner.
    :param gate: the middleware in front: whether a window is still the
        open one, and the gate for requests relayed from another worker. A
        request re-checks the window it started with before it shows a
        debugger page, and a pdb session before each command, so nothing
        more is served once a window closed.
    :param engine: draws the pages and runs the console
        (:mod:`ipdebug.debugger.engines`).
    """

    def __init__(
        self,
        app: WSGIApplication,
        settings: DebuggerSettings,
        *,
        store: FlagStore,
        audit: Auditor,
        captures: Captures,
        gate: Gatekeeper,
        engine: Engine,
    ) -> None:
        self.app = app
        self.settings = settings
        self.engine = engine
        self.audit = audit
        self.store = store
        self.captures = captures
        self.gate = gate
        self.pins = PinGuard(store, audit)
        self.sessions = Sessions(settings.instance, settings.max_tracebacks)
        #: Set by a server integration that can replace this process
        #: gracefully (gunicorn); needed by ``--attach debugpy``.
        self.recycle: t.Callable[[], None] | None = None
        self.debugpy = Debugpy(settings.attach_dir, can_recycle=self._can_recycle)
        #: Why console requests cannot reach the worker holding their
        #: traceback in this server, if they cannot.
        self.relay_problem = unavailable() if settings.relay_dir else None
        if self.relay_problem:
            logger.warning("ipdebug: %s", self.relay_problem)
        self.relay = (
            Relay(
                settings.relay_dir,
                handler=self.answer_relayed,
                still_open=self._window_open,
            )
            if settings.relay_dir and not self.relay_problem
            else None
        )
        self.errors = (
            ErrorPages(settings.errors_path, self)
            if settings.errors_path is not None
            else None
        )
        self._log_once = LogOnce(limit=4)
        #: The app, and the debugger page for its errors.
        self.pages = Pages(self)
        #: The requests of its pages (``__debugger__=yes``, the console).
        self.commands = Commands(self)

    @property
    def instance(self) -> str:
        """This server's name in a fleet (``settings.instance``)."""
        return self.settings.instance

    @property
    def max_tracebacks(self) -> int:
        """Tracebacks kept per process (``settings.max_tracebacks``)."""
        return self.settings.max_tracebacks

    @property
    def attach_dir(self) -> str:
        """Where pdb sessions listen (``settings.attach_dir``)."""
        return self.settings.attach_dir

    # What the middleware tells the debugger

    def window_changed(self, old: Window | None, new: Window | None) -> None:
        """Forget everything of the ``old`` window (tracebacks, secret), and
        listen for relayed requests only while a window is open.
        """
        self.sessions.reset(new)
        if self.relay is not None:
            if new is None:
                self.relay.stop()
            else:
                self.relay.start()
        if old is not None and self.debugpy.started and self.recycle is not None:
            # debugpy cannot stop listening: replace the whole process.
            self.audit("attach.recycle", debugger="debugpy", pid=os.getpid())
            self.debugpy.forget()
            self.recycle()

    def close(self) -> None:
        """Stop relaying and drop every traceback (for server shutdown)."""
        if self.relay is not None:
            self.relay.stop()
        self.sessions.reset(None)

    def answer_relayed(self, forwarded: dict[str, t.Any]) -> Answer:
        """Answer a request another process forwarded to this one (the
        relay's handler), after checking the window and the gate again
        here: a debugger or errors page request, or the listing of this
        process's captures.
        """
        window = self.gate.window()
        if forwarded.get(MESSAGE_KEY) == CAPTURES_MESSAGE[MESSAGE_KEY]:
            # Metadata only, to a process of this user (SO_PEERCRED): another
            # worker listing for a gated-in client, or `ipdebug errors`.
            return self.answer_listing(window)
        environ = relayed_environ(forwarded)
        client = None if window is None else self.gate.admit(environ, window)
        if window is None or client is None:
            return _NOT_OPEN
        request = Request(environ)
        errors = self.errors
        if errors is not None and errors.handles(environ.get("PATH_INFO")):
            response = errors.respond(request, window, client, relayed=True)
        else:
            response = self.commands.command(request, window, client, relayed=True)
            response.headers["Cache-Control"] = "no-store"
        app_iter, status, headers = response.get_wsgi_response(environ)
        return status, list(headers), b"".join(app_iter)

    def answer_listing(self, window: Window | None) -> Answer:
        """This process's captures of ``window`` as JSON (relay answer)."""
        entries = self.captures.listing(window)
        if self.errors is not None:
            for entry in entries:
                entry["url"] = self.errors.url_for(entry)
        body = json.dumps({"window": window.id if window else None, "errors": entries})
        return "200 OK", [("Content-Type", "application/json")], body.encode()

    def _window_open(self) -> bool:
        return self.gate.window() is not None

    def _can_recycle(self) -> bool:
        return self.recycle is not None

    def refuse(self, status: int, message: str, client: str | None) -> Response:
        """A debugger request ipdebug will not serve, with the reason."""
        self.audit("debugger.refused", client, status=status, reason=message)
        return Response(f"ipdebug: {message}\n", status=status, mimetype="text/plain")

    @property
    def traceback_count(self) -> int:
        return self.sessions.traceback_count

    # Dispatch

    def __call__(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        window: Window,
        client: str,
    ) -> t.Iterable[bytes]:
        try:
            if window.attach == "debugpy":
                self.debugpy.ensure(self.audit, client)
            if not self.for_debugger(environ):
                return self.pages.run_app(environ, start_response, window, client)
            request = Request(environ)
            try:
                is_command = request.args.get("__debugger__") == "yes"
            except UnicodeDecodeError:
                is_command = False  # not UTF-8: not from the debugger's JavaScript
            if is_command:
                response = self.commands.command(request, window, client)
            elif self.settings.evalex and request.path == self.settings.console_path:
                response = self.commands.console(request, window, client)
            else:
                return self.pages.run_app(environ, start_response, window, client)
            response.headers["Cache-Control"] = "no-store"
            response.headers[INSTANCE_HEADER] = self.settings.instance
        except Exception:
            # Fail closed: an ipdebug bug serves the request as if ipdebug
            # were not installed.
            logger.exception("ipdebug failed to serve a debugger request")
            return self.app(environ, start_response)
        return response(environ, start_response)

    def cross_site(self, environ: WSGIEnvironment) -> bool:
        """Whether another site's page in the operator's browser sent this
        request (:mod:`ipdebug.gate.crosssite`): then it is not gated in (no
        page, resource, command or external debugger for it). In doubt, it
        is.
        """
        try:
            cross = is_cross_site(environ)
        except Exception:
            logger.exception("ipdebug could not tell where a request came from")
            return True
        if cross:
            self._log_once(
                logging.WARNING,
                "ipdebug passed a cross-site request to the app as if it were "
                "not gated in: a page of another site made an allowed browser "
                "send it (Sec-Fetch-Site, Origin or Referer)",
            )
        return cross

    def for_debugger(self, environ: WSGIEnvironment) -> bool:
        """Whether the request may be for the debugger, without parsing it:
        most gated-in requests are the app's own. A percent sign may hide an
        encoded ``__debugger__``, so such queries are parsed like the rest.
        """
        query = environ.get("QUERY_STRING", "")
        if "__debugger__" in query or "%" in query:
            return True
        return self.settings.evalex and self.settings.console_path is not None
