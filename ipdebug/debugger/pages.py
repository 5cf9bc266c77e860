"""The app for a gated-in request, and the debugger page for its error.

A gated-in request runs the app as usual, its response held until its first
body bytes (:mod:`ipdebug.debugger.held`). When the app fails, or a
framework hands its error over (Flask's and Django's 500), the request gets
the debugger page instead: drawn by the engine, topped with the window's
banner, its frames held for the console. An error after the body started
is re-raised to the server, which aborts the connection rather than end a
truncated body cleanly; a window that closed while the request ran shows
nothing more.
"""

from __future__ import annotations

import typing as t
from urllib.parse import quote

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import dump_cookie, parse_accept_header

from ..attach import post_mortem
from ..audit import logger
from ..stash import EXCEPTION_KEY, GATED_KEY, NAMES_KEY
from .banner import capture_html
from .held import AppRun, HeldResponse, close_iterable
from .settings import INSTANCE_HEADER, ROUTE_COOKIE

if t.TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..stores import Window
    from .dispatch import Debugger
    from .sessions import Contexts

_NO_STORE = ("Cache-Control", "no-store")


class Pages:
    """Runs the app for ``debugger`` and serves its debugger pages, with
    its sessions, PIN guard, engine and external debuggers.
    """

    def __init__(self, debugger: Debugger) -> None:
        self.app = debugger.app
        self.settings = debugger.settings
        self.engine = debugger.engine
        self.sessions = debugger.sessions
        self.pins = debugger.pins
        self.audit = debugger.audit
        self.captures = debugger.captures
        self.debugpy = debugger.debugpy
        self.gate = debugger.gate

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
