"""The requests of a debugger page: ``__debugger__=yes`` (its resources,
the PIN, console input, the banner's "Close window now", the page of a
traceback held for an API client) and the standalone console.

A command is answered by the process whose secret it carries
(``<pid>x<random>~<instance>``): this one dispatches it; another worker of
this host gets it over the relay; another instance of a fleet is named in a
``421`` so that the load balancer can be fixed. Nothing here falls through
to the app, which would re-run the failing view.
"""

from __future__ import annotations

import secrets
import time
import typing as t
from contextlib import ExitStack
from io import BytesIO
from zlib import adler32

from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from ..audit import logger
from ..config import INSTANCE_RE
from ..errors import FlagError, OwnerGone, RelayError
from ..private import NotPrivate
from .banner import CLOSED_HTML
from .relay import owner_pid
from .settings import ROUTE_COOKIE

if t.TYPE_CHECKING:
    from ..stores import Window
    from .dispatch import Debugger
    from .engines import Command, Frame
    from .relay import Relay
    from .sessions import Session


class Commands:
    """Answers the requests of a debugger page for ``debugger``, whose
    sessions, PIN guard, engine and relay it uses.
    """

    def __init__(self, debugger: Debugger) -> None:
        self.debugger = debugger
        self.app = debugger.app
        self.settings = debugger.settings
        self.engine = debugger.engine
        self.sessions = debugger.sessions
        self.pins = debugger.pins
        self.store = debugger.store
        self.audit = debugger.audit
        self.refuse = debugger.refuse

    def command(
        self, request: Request, window: Window, client: str, *, relayed: bool = False
    ) -> Response:
        """A ``__debugger__=yes`` request: a resource, the page of a held
        traceback, or a command for the process whose secret it carries
        (this one: :meth:`dispatch`; another: :meth:`elsewhere`).

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
        return self.dispatch(request, command, session, window, client)

    def dispatch(
        self,
        request: Request,
        command: Command,
        session: Session,
        window: Window,
        client: str,
    ) -> Response:
        """A command that carries this process's secret: close the window,
        check the PIN, or run console input in a held frame.
        """
        cmd = command.cmd
        if cmd == "close":
            return self.close_window(request, command.window, window, client)
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
                f"{ROUTE_COOKIE} cookie (see docs/fleet.md, Behind a load balancer), or reload "
                "the failing page",
                client,
            )
        pid = owner_pid(local) if sep else None
        relay = self.debugger.relay
        if relay is not None and pid is not None and pid != session.pid and not relayed:
            return self.forward(relay, pid, request, client)
        if self.debugger.relay_problem and pid is not None and pid != session.pid:
            return self.refuse(503, self.debugger.relay_problem, client)
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
        html = self.debugger.pages.with_banner(
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
        response.headers.add(
            "Set-Cookie", self.debugger.pages.route_cookie(request.environ)
        )
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
            self.debugger.pages.with_banner(
                html, window, session.secret, unlocked=unlocked
            ),
            mimetype="text/html",
        )
        response.headers.add(
            "Set-Cookie", self.debugger.pages.route_cookie(request.environ)
        )
        return response

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

    def close_window(
        self, request: Request, meant: str, window: Window, client: str
    ) -> Response:
        """The banner's "Close window now" (a POST, read by the engine):
        removes the flag, as ``ipdebug disable`` does, if it still holds
        ``window`` and that is the window the page was ``meant`` for.
        """
        if not self.pins.trusted(request.environ, window):
            return self.refuse(403, "enter the PIN before closing the window", client)
        if not secrets.compare_digest(meant.encode(), window.id.encode()):
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


def _command_name(request: Request) -> str:
    # The kind of request, for the forwarder's audit line; the command text
    # itself is audited once, by the owner that runs it.
    cmd = request.args.get("cmd", "")
    return cmd if cmd in ("pinauth", "printpin", "resource", "page") else "console"
