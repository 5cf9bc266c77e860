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
  (:mod:`ipdebug.crosssite`) is not gated in: it reaches the app as is.

What the browser sees (page, resources, console output) comes from an
engine (:mod:`ipdebug.debugger.engines`: Werkzeug's, through :mod:`ipdebug.internals`,
or ipdebug's native one); the PIN is :mod:`ipdebug.debugger.pinguard`, the held
response :mod:`ipdebug.debugger.held`. Both engines get the same gate, PIN, lockout,
relay, banner, audit and memory bounds from this module.
"""

from __future__ import annotations

import json
import logging
import os
import typing as t
from urllib.parse import quote

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import dump_cookie, parse_accept_header
from werkzeug.wrappers import Request, Response

from ..attach import Debugpy, post_mortem
from ..audit import Auditor, LogOnce, logger
from ..crosssite import is_cross_site
from ..stash import EXCEPTION_KEY, GATED_KEY, NAMES_KEY
from ..stores import FlagStore, Window
from .banner import capture_html
from .commands import Commands
from .engines import Engine
from .errorpages import CAPTURES_MESSAGE, ErrorPages
from .held import AppRun, HeldResponse, close_iterable
from .pinguard import PinGuard
from .relay import MESSAGE_KEY, Answer, Relay, relayed_environ, unavailable
from .sessions import Contexts, Sessions
from .settings import (
    INSTANCE_HEADER,
    ROUTE_COOKIE,
    DebuggerSettings,
    Gatekeeper,
)

if t.TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..capture import Captures

_NO_STORE = ("Cache-Control", "no-store")
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
            if not self._for_debugger(environ):
                return self.run_app(environ, start_response, window, client)
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
                return self.run_app(environ, start_response, window, client)
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
        request (:mod:`ipdebug.crosssite`): then it is not gated in (no
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

    def _for_debugger(self, environ: WSGIEnvironment) -> bool:
        """Whether the request may be for the debugger, without parsing it:
        most gated-in requests are the app's own. A percent sign may hide an
        encoded ``__debugger__``, so such queries are parsed like the rest.
        """
        query = environ.get("QUERY_STRING", "")
        if "__debugger__" in query or "%" in query:
            return True
        return self.settings.evalex and self.settings.console_path is not None

    def with_banner(
        self, html: str, window: Window, secret: str, *, unlocked: bool
    ) -> str:
        """Put the window's banner at the top of a debugger page."""
        banner = self.settings.banner.html(window, secret, unlocked=unlocked)
        if window.capture:
            banner += capture_html(
                len(self.captures),
                self.settings.errors_path,
                where="held by this worker",
            )
        return self.engine.with_banner(html, banner)

    def capture_banner(self, window: Window, count: int) -> str:
        """The banner of the captured errors' list (``count`` of them)."""
        banner = self.settings.banner.html(window, self.sessions.get(window).secret)
        if not window.capture:
            return banner
        return banner + capture_html(count, None, where="captured, listed below")

    def route_cookie(self, environ: WSGIEnvironment) -> str:
        """The routing hint for a load balancer in front of a fleet."""
        return dump_cookie(
            ROUTE_COOKIE,
            self.settings.instance,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=environ.get("wsgi.url_scheme") == "https",
        )

    # The application, with the debugger page for its errors

    def run_app(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        window: Window,
        client: str,
    ) -> t.Iterator[bytes]:
        """Run the app; on an unhandled exception (raised, or handed over by
        a framework integration) serve the debugger page instead.
        """
        contexts: Contexts = []
        if self.settings.evalex:
            environ["werkzeug.debug.preserve_context"] = contexts.append
        environ[GATED_KEY] = True
        response = HeldResponse(start_response)
        run = AppRun()
        yield from self._run(run, environ, response, window, client)
        if run.error is not None:
            yield from self._after_error(
                run, environ, response, contexts, window, client
            )

    def _run(
        self,
        run: AppRun,
        environ: WSGIEnvironment,
        response: HeldResponse,
        window: Window,
        client: str,
    ) -> t.Iterator[bytes]:
        """The app's own response, as long as it does not fail; what failed
        is left in ``run``.
        """
        try:
            if window.attach == "debugpy":
                self.debugpy.break_if_asked(
                    environ, self.settings.attach_wait, self.audit, client
                )
            run.app_iter = self.app(environ, response.start_response)
            run.error = environ.pop(EXCEPTION_KEY, None)
            # A framework that turned the error into its own response
            # (Flask's 500) handed the exception over: that response is
            # kept, unread, in case the window closed before the debugger
            # page is shown.
            run.handed_over = run.error is not None
            if run.error is None:
                yield from response.body(run.app_iter)
        except Exception as exc:
            run.error, run.skip, run.handed_over = exc, 1, False  # skip this frame
        finally:
            if not run.handed_over:
                close_iterable(run.app_iter)

    def _after_error(
        self,
        run: AppRun,
        environ: WSGIEnvironment,
        response: HeldResponse,
        contexts: Contexts,
        window: Window,
        client: str,
    ) -> t.Iterator[bytes]:
        """What follows an error: an external debugger if the window asks
        for one, then the debugger page; or, once the window closed, the
        response as without ipdebug; or, once the body started, an abort.
        """
        error = t.cast(BaseException, run.error)
        # Read afresh: the offer holds the request up to attach_wait.
        if window.attach == "pdb" and self.still_current(window, fresh=True):
            self.offer_pdb(error, client, window)
        if not response.sent and not self.still_current(window):
            # The window closed (or changed) while the request ran: nothing
            # more is shown; the request ends as without ipdebug.
            if run.handed_over:
                try:
                    yield from response.body(t.cast("t.Iterable[bytes]", run.app_iter))
                finally:
                    close_iterable(run.app_iter)
                return
            raise error
        if run.handed_over:
            close_iterable(run.app_iter)
        if response.sent:
            # The status and part of the body are on the wire: make the server
            # abort the connection rather than end a truncated body cleanly.
            self.audit(
                "debugger.stream_error", client, path=environ.get("PATH_INFO", "")
            )
            exc_info: OptExcInfo = (type(error), error, error.__traceback__)  # type: ignore[assignment]
            logger.error(
                "error after the response started streaming", exc_info=exc_info
            )
            response.abort(exc_info)
            raise error
        yield self._page(error, run.skip, contexts, environ, response, window, client)

    def _page(
        self,
        error: BaseException,
        skip: int,
        contexts: Contexts,
        environ: WSGIEnvironment,
        response: HeldResponse,
        window: Window,
        client: str,
    ) -> bytes:
        """Start the debugger page's response (or its JSON's); its body."""
        as_json = self.wants_json(environ)
        try:
            body = self.render(
                error, skip, contexts, environ, window, client, as_json=as_json
            )
        except Exception:
            logger.exception("ipdebug could not render the debugger page")
            raise error from None
        response.replace(
            "500 INTERNAL SERVER ERROR",
            [
                (
                    "Content-Type",
                    "application/json" if as_json else "text/html; charset=utf-8",
                ),
                ("Content-Length", str(len(body))),
                _NO_STORE,
                (INSTANCE_HEADER, self.settings.instance),
                ("Set-Cookie", self.route_cookie(environ)),
            ],
        )
        return body

    def still_current(self, window: Window, *, fresh: bool = False) -> bool:
        """Whether ``window`` is still the open one (``fresh``: read from
        the store now); in doubt, it is not.
        """
        try:
            return self.gate.window(fresh=fresh) == window
        except Exception:
            logger.exception("ipdebug could not check the window: treated as closed")
            return False

    def offer_pdb(self, error: BaseException, client: str, window: Window) -> None:
        """``--attach pdb``: wait (bounded) for ``ipdebug attach``."""
        try:
            post_mortem(
                error,
                directory=self.settings.attach_dir,
                wait=self.settings.attach_wait,
                audit=self.audit,
                client=client,
                still_open=lambda: self.still_current(window, fresh=True),
            )
        except Exception:
            logger.exception("ipdebug could not offer a pdb session")

    def render(
        self,
        error: BaseException,
        skip: int,
        contexts: Contexts,
        environ: WSGIEnvironment,
        window: Window,
        client: str,
        *,
        as_json: bool = False,
        capture: str | None = None,
    ) -> bytes:
        """The debugger page for ``error`` (or its JSON, ``as_json``); keeps
        its frames for the console.

        :param capture: the id of the captured error of another client
            being shown (see :mod:`ipdebug.capture`), or ``None`` for the
            gated-in request's own error.
        """
        tb = self.engine.traceback(error, skip=skip, names=environ.get(NAMES_KEY))
        session = self.sessions.get(window)
        ref = self.sessions.keep(session, tb.frames, contexts, page=tb)
        unlocked = self.pins.trusted(environ, window)
        document = (
            tb.json(self.page_url(environ, ref), show_locals=unlocked)
            if as_json
            else None
        )
        html = document or self.with_banner(
            tb.page(
                evalex=self.settings.evalex,
                secret=session.secret,
                evalex_trusted=unlocked,
            ),
            window,
            session.secret,
            unlocked=unlocked,
        )
        self.audit(
            "debugger.page",
            client,
            path=environ.get("PATH_INFO", ""),
            exception=type(error).__name__,
            forwarded="HTTP_X_FORWARDED_FOR" in environ or "HTTP_FORWARDED" in environ,
            **({"json": True} if document else {}),
            **({"capture": capture} if capture else {}),
        )
        if skip and capture is None:
            # Like Werkzeug (and like the server without ipdebug), put the
            # traceback in the server's error log.
            environ["wsgi.errors"].write(tb.text())
        return html.encode("utf-8")

    def wants_json(self, environ: WSGIEnvironment) -> bool:
        """Whether the client prefers JSON to HTML and the engine has it."""
        accept = environ.get("HTTP_ACCEPT")
        if not accept or not self.engine.json_api:
            return False
        best = parse_accept_header(accept, MIMEAccept).best_match(
            ["text/html", "application/json"]
        )
        return best == "application/json"

    @staticmethod
    def page_url(environ: WSGIEnvironment, ref: str) -> str:
        """Where the HTML page of a held traceback is (gated like the rest
        of the debugger): the failing path with ``cmd=page``.
        """
        path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        return f"{path or '/'}?__debugger__=yes&cmd=page&tb={quote(ref)}"
