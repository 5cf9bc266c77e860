"""The ASGI middleware's gated-in side: its calls into the debugger, and the
ASGI messages of the debugger's answers.

Besides ``Debugger.cross_site`` and ``ErrorPages.handles``, every
call of :mod:`ipdebug.asgi` into the debugger is here, in one place
(:func:`route_of`, :func:`answer`, :func:`render_page`,
:func:`page_headers`), so that it can follow the debugger's (or its
engine's) interface; :func:`answer` and :func:`render_page` run in the
middleware's worker threads. Only gated-in requests get here.
"""

from __future__ import annotations

import typing as t

from werkzeug.wrappers import Request, Response

from .debugger.engines import MAX_BODY
from .debugger.settings import INSTANCE_HEADER

if t.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from .debugger.dispatch import Debugger
    from .middleware import IPDebugMiddleware
    from .stores import Window

    Message = MutableMapping[str, t.Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]


def route_of(debugger: Debugger, environ: dict[str, t.Any]) -> str | None:
    """``"command"``, ``"console"`` or ``None`` (the app's own request), as
    the WSGI dispatcher (``Debugger.__call__``) routes it.
    """
    if not debugger.for_debugger(environ):
        return None
    request = Request(environ)
    try:
        if request.args.get("__debugger__") == "yes":
            return "command"
    except UnicodeDecodeError:
        return None  # not UTF-8: not from the debugger's JavaScript
    if debugger.settings.evalex and request.path == debugger.settings.console_path:
        return "console"
    return None


def answer(
    core: IPDebugMiddleware,
    route: str,
    environ: dict[str, t.Any],
    window: Window,
    client: str,
) -> Response:
    """A debugger (or errors page) request's response (run in a worker
    thread).
    """
    request = Request(environ)
    debugger = core.debugger
    if route == "errors" and core.errors is not None:
        response = core.errors.respond(request, window, client)
    elif route == "command":
        response = debugger.commands.command(request, window, client)
    else:
        response = debugger.commands.console(request, window, client)
    response.headers["Cache-Control"] = "no-store"
    response.headers[INSTANCE_HEADER] = debugger.instance
    return response


def render_page(
    debugger: Debugger,
    error: BaseException,
    skip: int,
    environ: dict[str, t.Any],
    window: Window,
    client: str,
) -> tuple[bytes, bool] | None:
    """The debugger page (or JSON) for ``error``, and whether it is JSON;
    ``None`` when the window closed meanwhile (run in a worker thread).
    """
    if window.attach == "pdb" and debugger.pages.still_current(window, fresh=True):
        debugger.pages.offer_pdb(error, client, window)
    if not debugger.pages.still_current(window):
        return None
    as_json = debugger.pages.wants_json(environ)
    page = debugger.pages.render(
        error, skip, [], environ, window, client, as_json=as_json
    )
    return page, as_json


def page_headers(
    debugger: Debugger, body: bytes, environ: dict[str, t.Any], *, as_json: bool
) -> list[tuple[bytes, bytes]]:
    """The debugger page's headers, as the WSGI side sends them."""
    return [
        (
            b"content-type",
            b"application/json" if as_json else b"text/html; charset=utf-8",
        ),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (INSTANCE_HEADER.lower().encode(), debugger.instance.encode("latin-1")),
        (b"set-cookie", debugger.pages.route_cookie(environ).encode("latin-1")),
    ]


async def read_body(receive: Receive) -> tuple[bytes, Receive]:
    """A debugger request's body, at most one byte over the engine's cap
    (the engine refuses what is longer than its ``Content-Length`` cap); and
    a ``receive`` that replays the messages read, for the app should ipdebug
    fall back to it.
    """
    read: list[Message] = []
    size = 0
    while size <= MAX_BODY:
        message = await receive()
        read.append(message)
        if message.get("type") != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in read if m.get("type") == "http.request")

    async def replay() -> Message:
        return read.pop(0) if read else await receive()

    return body[: MAX_BODY + 1], replay


async def send_response(
    send: Send, response: Response, environ: dict[str, t.Any]
) -> None:
    app_iter, status, headers = response.get_wsgi_response(environ)
    try:
        body = b"".join(app_iter)
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    await send(
        {
            "type": "http.response.start",
            "status": int(status.split(" ", 1)[0]),
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
