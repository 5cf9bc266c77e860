"""The errors pages: the captured errors, for gated-in clients only.

With a capturing window (``ipdebug enable --capture``), and ``errors_path``
(default ``/__ipdebug__/errors``), a gated-in client with a trusted Host
gets:

- ``GET <errors_path>``: an HTML list of the captures of every worker of
  this host (asked over the relay's private unix sockets, at most
  :data:`~ipdebug.debugger.relay.ASK_ALL_TIMEOUT` seconds; a worker that does not
  answer is named), and, with a flag in Redis, of every instance of the
  fleet; newest first, each linking to its page;
- ``GET <errors_path>.json``: ``{"errors": [...], "unanswered": [...]}``;
- ``GET <errors_path>/<id>``: Werkzeug's debugger page for that capture,
  rendered by the process that holds it (relayed there), whose console
  works after the window's PIN; ``410`` with the reason when it is gone.

Every other client's request for these paths reaches the app, byte for
byte: the middleware routes here only after the gate.
"""

from __future__ import annotations

import json
import os
import typing as t
from urllib.parse import quote

from markupsafe import escape
from werkzeug.wrappers import Request, Response

from ..audit import logger
from ..capture import CaptureContexts
from ..config import INSTANCE_RE
from .relay import MESSAGE_KEY, ask_all, owner_pid
from .settings import INSTANCE_HEADER

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from ..stores import FlagStore, Window
    from .dispatch import Debugger
    from .relay import Relay

#: The relay message that asks a process for its captures.
CAPTURES_MESSAGE = {MESSAGE_KEY: "captures"}
#: Fleet captures read from the store at most.
MAX_FLEET = 500


#: What every listed capture carries (``errors.json``, ``ipdebug errors``).
FIELDS = ("id", "time", "method", "path", "client", "exception", "pid", "instance")


class ErrorPages:
    """Serves ``errors_path`` to gated-in clients. See the module docs.

    :param path: the URL path of the list (``errors_path``).
    :param debugger: renders the pages (the same machinery as for the
        operator's own errors), holds their frames for the console, and
        has what the pages list: this process's captures, the relay to the
        other workers of this host, and the flag store (a Redis store also
        keeps the fleet's captures). Its app gets the request should
        ipdebug fail (fail closed).
    """

    def __init__(self, path: str, debugger: Debugger) -> None:
        self.path = path.rstrip("/") or "/"
        self.debugger = debugger
        self.app = debugger.app
        self.captures = debugger.captures
        self.store = debugger.store
        self.audit = debugger.audit
        self.instance = debugger.settings.instance
        self._prefix = self.path + "/"
        self._json = self.path + ".json"

    @property
    def relay(self) -> Relay | None:
        return self.debugger.relay

    def handles(self, path_info: object) -> bool:
        """Whether a (gated-in) request's ``PATH_INFO`` is for these pages."""
        return isinstance(path_info, str) and (
            path_info == self.path
            or path_info == self._json
            or path_info.startswith(self._prefix)
        )

    def __call__(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        window: Window,
        client: str,
    ) -> t.Iterable[bytes]:
        try:
            response = self.respond(Request(environ), window, client)
        except Exception:
            # Fail closed: an ipdebug bug serves the request as if ipdebug
            # were not installed.
            logger.exception("ipdebug failed to serve an errors page")
            return self.app(environ, start_response)
        return response(environ, start_response)

    def respond(
        self, request: Request, window: Window, client: str, *, relayed: bool = False
    ) -> Response:
        """The answer for a gated-in request (``relayed``: forwarded by
        another worker, so answered here, never forwarded again).
        """
        try:
            is_command = request.args.get("__debugger__") == "yes"
        except UnicodeDecodeError:
            is_command = False
        if is_command:
            # The page's JavaScript asks relative to the page's own URL: its
            # resources, PIN and console commands go to the debugger.
            response = self.debugger.commands.command(
                request, window, client, relayed=relayed
            )
        elif request.method not in ("GET", "HEAD"):
            response = self._refuse(405, "the errors pages take GET", client)
        elif request.path == self.path:
            response = self.list_html(request, window, client)
        elif request.path == self._json:
            entries, unanswered = self.collect(window, request.script_root)
            self.audit("error.listed", client, count=len(entries), format="json")
            response = Response(
                json.dumps({"errors": entries, "unanswered": unanswered}),
                mimetype="application/json",
            )
        else:
            capture_id = request.path[len(self._prefix) :]
            response = self.capture_page(
                request, capture_id, window, client, relayed=relayed
            )
        response.headers["Cache-Control"] = "no-store"
        response.headers[INSTANCE_HEADER] = self.instance
        return response

    # The list

    def url_for(self, entry: dict[str, object], script_name: str = "") -> str:
        """The link to a capture; ``ipdebug_route`` names the instance that
        holds it, for the load balancer (see docs/fleet.md, "Behind a load balancer").
        """
        route = quote(str(entry.get("instance", "")), safe="")
        return f"{script_name}{self._prefix}{quote(str(entry['id']), safe='')}?ipdebug_route={route}"

    def local(self, window: Window | None) -> list[dict[str, object]]:
        """This process's captures, each with its ``url``."""
        entries = self.captures.listing(window)
        for entry in entries:
            entry["url"] = self.url_for(entry)
        return entries

    def collect(
        self, window: Window, script_name: str = ""
    ) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        """Every capture of ``window`` on this host (and the fleet), newest
        first, each with its ``url`` under ``script_name``; and the
        processes that did not answer, with why. An entry without every
        field (another version of ipdebug in the fleet) is left out rather
        than breaking the list.
        """
        entries, unanswered = gather(
            self.relay.directory if self.relay is not None else None,
            self.store,
            window.id,
            instance=self.instance,
            own=self.local(window),
            exclude=(os.getpid(),),
        )
        entries = [e for e in entries if all(key in e for key in FIELDS)]
        for entry in entries:
            entry["url"] = self.url_for(entry, script_name)
        return entries, unanswered

    def list_html(self, request: Request, window: Window, client: str) -> Response:
        entries, unanswered = self.collect(window, request.script_root)
        self.audit("error.listed", client, count=len(entries), format="html")
        rows = "".join(
            "<tr>"
            f"<td>{escape(e['time'])}</td><td>{escape(e['instance'])}</td>"
            f"<td>{escape(e['pid'])}</td><td>{escape(e['client'])}</td>"
            f"<td>{escape(e['method'])} {escape(e['path'])}</td>"
            f'<td><a href="{escape(e["url"])}">'
            f"{escape(e['exception'])}</a></td></tr>"
            for e in entries
        )
        missing = "".join(
            f"<li>worker {escape(u['pid'])} on {escape(u['instance'])} "
            f"{escape(u['problem'])}: its captures are not listed</li>"
            for u in unanswered
        )
        note = (
            ""
            if window.capture
            else "<p>This window does not capture errors: open one with "
            "<code>ipdebug enable --capture</code>.</p>"
        )
        html = (
            "<!doctype html><html><head><meta charset=utf-8>"
            "<title>ipdebug: captured errors</title><style>"
            "body{font:14px/1.4 sans-serif;margin:16px}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:3px 6px;text-align:left;vertical-align:top}</style></head>"
            f"<body>{self.debugger.pages.capture_banner(window, len(entries))}"
            f"<h1>Captured errors ({len(entries)})</h1>{note}"
            + (f'<ul class="unanswered">{missing}</ul>' if missing else "")
            + "<table><thead><tr><th>time (UTC)</th><th>instance</th><th>pid</th>"
            "<th>client</th><th>request</th><th>exception</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></body></html>"
        )
        return Response(html, mimetype="text/html")

    # One capture

    def capture_page(
        self,
        request: Request,
        capture_id: str,
        window: Window,
        client: str,
        *,
        relayed: bool,
    ) -> Response:
        route = request.args.get("ipdebug_route", "")
        if route and route != self.instance and INSTANCE_RE.fullmatch(route):
            return self._refuse(
                421,
                f"this capture is held by instance {route!r} but the request reached "
                f"{self.instance!r}: route requests by ipdebug_route (see docs/fleet.md, "
                '"Behind a load balancer")',
                client,
            )
        capture = self.captures.get(capture_id, window)
        if capture is None:
            pid = owner_pid(capture_id)
            if (
                pid is not None
                and pid != os.getpid()
                and not relayed
                and self.relay is not None
            ):
                return self.debugger.commands.forward(
                    self.relay, pid, request, client, what="capture"
                )
            return self._refuse(
                410,
                "this capture is no longer held: the window changed, or newer "
                "captures replaced it (max_captured)",
                client,
            )
        self.audit("error.viewed", client, id=capture.id)
        body = self.debugger.pages.render(
            capture.error,
            capture.skip_frames(),
            CaptureContexts(capture),
            request.environ,
            window,
            client,
            capture=capture.id,
        )
        response = Response(body, mimetype="text/html")
        response.headers.add(
            "Set-Cookie", self.debugger.pages.route_cookie(request.environ)
        )
        return response

    def _refuse(self, status: int, message: str, client: str) -> Response:
        self.audit("error.refused", client, status=status, reason=message)
        return Response(f"ipdebug: {message}\n", status=status, mimetype="text/plain")


def parse_listing(
    answer: tuple[str, list[tuple[str, str]], bytes] | str, window_id: str | None
) -> list[dict[str, object]] | str:
    """The entries of one process's listing answer (those of ``window_id``,
    when given), or why there are none.
    """
    if isinstance(answer, str):
        return answer
    status, _, body = answer
    if not status.startswith("200"):
        return f"refused ({status})"
    try:
        data = json.loads(body)
        entries = data["errors"]
        window = data["window"]
    except (ValueError, KeyError, TypeError):
        return "answered wrongly"
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and "id" in e for e in entries
    ):
        return "answered wrongly"
    if window_id is not None and window != window_id:
        return []  # its window is another one (it has not seen the change yet)
    return entries


def gather(
    directory: str | None,
    store: FlagStore,
    window_id: str | None,
    *,
    instance: str,
    own: t.Sequence[dict[str, object]] = (),
    exclude: t.Container[int] = (),
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The captures of ``window_id`` (any window, when ``None``): ``own``,
    those of every other process listening in the relay ``directory``, and
    the fleet's (a Redis store), newest first; and the processes that did
    not answer in time, with why. ``exclude``: pids not to ask (this
    process, whose captures are ``own``).
    """
    by_id: dict[str, dict[str, object]] = {}
    unanswered: list[dict[str, object]] = []
    if window_id is not None:
        for entry in _fleet(store, window_id):
            by_id[str(entry["id"])] = entry
    if directory is not None:
        for pid, answer in ask_all(directory, CAPTURES_MESSAGE, exclude=exclude):
            entries = parse_listing(answer, window_id)
            if isinstance(entries, str):
                unanswered.append(
                    {"pid": pid, "instance": instance, "problem": entries}
                )
                continue
            by_id.update((str(e["id"]), e) for e in entries)
    by_id.update((str(e["id"]), e) for e in own)
    entries = sorted(
        by_id.values(), key=lambda e: (str(e.get("time")), str(e["id"])), reverse=True
    )
    return entries, unanswered


def _fleet(store: FlagStore, window_id: str) -> list[dict[str, object]]:
    """Captures of every instance, from a store that keeps them (Redis)."""
    try:
        return store.captures(window_id, MAX_FLEET)
    except Exception:
        logger.exception("ipdebug could not read the fleet's captures")
        return []
