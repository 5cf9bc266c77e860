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
import secrets
import time
import typing as t
from contextlib import ExitStack
from io import BytesIO
from urllib.parse import quote
from zlib import adler32

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import dump_cookie, parse_accept_header
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from ..attach import Debugpy, post_mortem
from ..audit import Auditor, LogOnce, logger
from ..config import INSTANCE_RE
from ..crosssite import is_cross_site
from ..errors import FlagError, OwnerGone, RelayError
from ..private import NotPrivate
from ..stash import EXCEPTION_KEY, GATED_KEY, NAMES_KEY
from ..stores import FlagStore, Window
from .banner import CLOSED_HTML, capture_html
from .engines import Command, Engine, Frame
from .errorpages import CAPTURES_MESSAGE, ErrorPages
from .held import HeldResponse
from .pinguard import PinGuard
from .relay import MESSAGE_KEY, Answer, Relay, owner_pid, relayed_environ, unavailable
from .sessions import Contexts, Session, Sessions
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
            response = self.command(request, window, client, relayed=True)
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
                response = self.command(request, window, client)
            elif self.settings.evalex and request.path == self.settings.console_path:
                response = self.console(request, window, client)
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

    def command(
        self, request: Request, window: Window, client: str, *, relayed: bool = False
    ) -> Response:
        """A ``__debugger__=yes`` request: resource, PIN or console command.

        :param relayed: the request was forwarded by another process; answer
            it here or refuse it, never forward it again.
        """
        command = self.engine.read_command(request)
        if command.cmd == "resource":
            return self.resource(request, command.name)
        if command.refusal is not None:
            return self.refuse(*command.refusal, client)
        session = self.sessions.get(window)
        if command.cmd == "page":
            return self.held_page(request, command, session, window, client, relayed)
        if not secrets.compare_digest(command.secret.encode(), session.secret.encode()):
            return self.elsewhere(command.secret, session, request, client, relayed)
        cmd = command.cmd
        if cmd == "close":
            return self.close_window(request, window, client)
        if cmd == "pinauth":
            return self.pins.authenticate(request, window, client, pin=command.pin)
        if cmd == "printpin":
            # Werkzeug would write its PIN to the server log here; the
            # window's PIN was shown by `ipdebug enable` and is kept nowhere.
            return Response("", mimetype="text/plain")
        if not self.settings.evalex:
            return self.refuse(403, "the console is disabled (evalex=False)", client)
        if not cmd:
            return self.refuse(400, "no command", client)
        frame = session.frames.get(-1 if command.frame is None else command.frame)
        if frame is None:
            return self.refuse(
                410,
                "this traceback is no longer held (the window changed or "
                f"{self.settings.max_tracebacks} newer errors replaced it); reload the "
                "failing page",
                client,
            )
        if not self.pins.trusted(request.environ, window):
            return self.refuse(403, "the console is locked; enter the PIN", client)
        return self.execute(session, frame, command.code, client)

    def elsewhere(
        self,
        key: str,
        session: Session,
        request: Request,
        client: str,
        relayed: bool,
    ) -> Response:
        """A request for a secret (or page) this process does not hold:
        relay it to the process named in ``key``, or say why not.
        """
        local, sep, owner = key.partition("~")
        if sep and owner != self.settings.instance and INSTANCE_RE.fullmatch(owner):
            return self.refuse(
                421,
                f"this traceback belongs to instance {owner!r} but the request "
                f"reached {self.settings.instance!r}: route __debugger__ requests by the "
                f"{ROUTE_COOKIE} cookie (see the README on fleets), or reload "
                "the failing page",
                client,
            )
        pid = owner_pid(local) if sep else None
        relay = self.relay
        if relay is not None and pid is not None and pid != session.pid and not relayed:
            return self.forward(relay, pid, request, client)
        if self.relay_problem and pid is not None and pid != session.pid:
            return self.refuse(503, self.relay_problem, client)
        return self.refuse(
            403,
            "this debugger page belongs to another window or process; reload "
            "the failing page",
            client,
        )

    def held_page(
        self,
        request: Request,
        command: Command,
        session: Session,
        window: Window,
        client: str,
        relayed: bool,
    ) -> Response:
        """The HTML page of a traceback whose JSON an API client received."""
        tb = session.pages.get(command.name)
        if tb is None:
            if command.name.startswith(f"{session.pid}x"):
                return self.refuse(
                    410,
                    "this traceback is no longer held (the window changed or "
                    f"{self.settings.max_tracebacks} newer errors replaced it)",
                    client,
                )
            return self.elsewhere(command.name, session, request, client, relayed)
        unlocked = self.pins.trusted(request.environ, window)
        html = self.with_banner(
            tb.page(
                evalex=self.settings.evalex,
                secret=session.secret,
                evalex_trusted=unlocked,
            ),
            window,
            session.secret,
            unlocked=unlocked,
        )
        self.audit("debugger.page", client, path=request.path, held=True)
        response = Response(html, mimetype="text/html")
        response.headers.add("Set-Cookie", self.route_cookie(request.environ))
        return response

    def forward(
        self,
        relay: Relay,
        pid: int,
        request: Request,
        client: str,
        *,
        what: str = "traceback",
    ) -> Response:
        """Hand a request to process ``pid``, which holds the ``what`` it
        asks for (a traceback, or a captured error for the errors pages).
        """
        again = "reload the failing page" if what == "traceback" else "list them again"
        try:
            status, headers, body = relay.forward(pid, request.environ)
        except OwnerGone:
            return self.refuse(
                410,
                f"this {what} belonged to a worker that has exited (pid {pid}); "
                f"{again}",
                client,
            )
        except (RelayError, NotPrivate):
            logger.exception(
                "ipdebug could not relay a debugger request to pid %d", pid
            )
            return self.refuse(
                504,
                f"the worker holding this {what} (pid {pid}) did not answer; {again}",
                client,
            )
        cmd = _command_name(request) if what == "traceback" else what
        self.audit("debugger.relayed", client, owner=pid, cmd=cmd)
        return Response(body, status=status, headers=headers)

    def resource(self, request: Request, name: str) -> Response:
        """A static file of Werkzeug's debugger (JavaScript, CSS, icons)."""
        data = self.engine.resource(name)
        if data is None:
            return self.refuse(404, "no such debugger resource", None)
        etag = str(adler32(data) & 0xFFFFFFFF)
        return send_file(BytesIO(data), request.environ, download_name=name, etag=etag)

    def console(self, request: Request, window: Window, client: str) -> Response:
        """Werkzeug's standalone console at ``console_path``."""
        session = self.sessions.get(window)
        self.sessions.console_frame(
            session, lambda: self.engine.console_frame({"app": self.app})
        )
        self.audit("debugger.console", client, path=request.path)
        unlocked = self.pins.trusted(request.environ, window)
        html = self.engine.console_page(secret=session.secret, evalex_trusted=unlocked)
        response = Response(
            self.with_banner(html, window, session.secret, unlocked=unlocked),
            mimetype="text/html",
        )
        response.headers.add("Set-Cookie", self.route_cookie(request.environ))
        return response

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

    def execute(
        self, session: Session, frame: Frame, cmd: str, client: str
    ) -> Response:
        """Run one console command in a frame, with the contexts (Flask's
        app and request context) that were active when it failed.
        """
        # Audited before it runs: the command may never return.
        contexts = session.contexts.get(id(frame), ())
        # A captured error's frames carry its id (ipdebug.capture).
        capture = getattr(contexts, "capture_id", None)
        self.audit(
            "console.command",
            client,
            source=cmd,
            frame=self.engine.describe(frame),
            **({"capture": capture} if capture else {}),
        )
        with ExitStack() as stack:
            for context in contexts:
                stack.enter_context(context)
            output, mimetype = self.engine.evaluate(frame, cmd)
        return Response(output, mimetype=mimetype)

    def close_window(self, request: Request, window: Window, client: str) -> Response:
        """The banner's "Close window now": removes the flag, as
        ``ipdebug disable`` does, if it still holds this window.
        """
        if request.method != "POST":
            return self.refuse(405, "closing the window takes a POST", client)
        if not self.pins.trusted(request.environ, window):
            return self.refuse(403, "enter the PIN before closing the window", client)
        if request.args.get("window") != window.id:
            return self.refuse(409, "this page belongs to an earlier window", client)
        try:
            current = self.store.load(time.time())
        except FlagError:
            current = None  # refused: the window is already over
        if current is not None and current.id != window.id:
            return self.refuse(
                409, "a newer window replaced this one; it stays open", client
            )
        if current is not None:
            self.store.clear()
        self.audit("window.disabled", client, window=window.id[:8], via="banner")
        return Response(CLOSED_HTML, mimetype="text/html")

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
        app_iter: t.Iterable[bytes] | None = None
        error: BaseException | None = None
        # A framework that turned the error into its own response (Flask's
        # 500) handed the exception over: that response is kept, unread, in
        # case the window closed before the debugger page is shown.
        handed_over = False
        skip = 0
        try:
            if window.attach == "debugpy":
                self.debugpy.break_if_asked(
                    environ, self.settings.attach_wait, self.audit, client
                )
            app_iter = self.app(environ, response.start_response)
            error = environ.pop(EXCEPTION_KEY, None)
            handed_over = error is not None
            if error is None:
                yield from _body(app_iter, response)
        except Exception as exc:
            error, skip, handed_over = exc, 1, False  # skip this frame
        finally:
            if not handed_over:
                _close(app_iter)
        if error is None:
            return
        # Read afresh: the offer holds the request up to attach_wait.
        if window.attach == "pdb" and self.still_current(window, fresh=True):
            self.offer_pdb(error, client, window)
        if not response.sent and not self.still_current(window):
            # The window closed (or changed) while the request ran: nothing
            # more is shown; the request ends as without ipdebug.
            if handed_over:
                try:
                    yield from _body(t.cast("t.Iterable[bytes]", app_iter), response)
                finally:
                    _close(app_iter)
                return
            raise error
        if handed_over:
            _close(app_iter)
        exc_info: OptExcInfo = (type(error), error, error.__traceback__)  # type: ignore[assignment]
        if response.sent:
            # The status and part of the body are on the wire: make the server
            # abort the connection rather than end a truncated body cleanly.
            self.audit(
                "debugger.stream_error", client, path=environ.get("PATH_INFO", "")
            )
            logger.error(
                "error after the response started streaming", exc_info=exc_info
            )
            start_response("500 Internal Server Error", [], exc_info)
            raise error
        as_json = self.wants_json(environ)
        try:
            body = self.render(
                error, skip, contexts, environ, window, client, as_json=as_json
            )
        except Exception:
            logger.exception("ipdebug could not render the debugger page")
            raise error from None
        start_response(
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
        yield body

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


def _body(app_iter: t.Iterable[bytes], response: HeldResponse) -> t.Iterator[bytes]:
    """The app's body, its held status and headers sent at the first bytes."""
    for chunk in app_iter:
        if chunk:
            response.send()
        elif not response.sent:
            # Nothing may be yielded before start_response, and the headers
            # stay held until real bytes arrive.
            continue
        yield chunk
    response.send()


def _close(app_iter: t.Iterable[bytes] | None) -> None:
    close = getattr(app_iter, "close", None)
    if close is not None:
        close()


def _command_name(request: Request) -> str:
    # The kind of request, for the forwarder's audit line; the command text
    # itself is audited once, by the owner that runs it.
    cmd = request.args.get("cmd", "")
    return cmd if cmd in ("pinauth", "printpin", "resource", "page") else "console"
