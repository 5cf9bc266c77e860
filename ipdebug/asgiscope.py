"""ASGI scopes and messages in the terms of ipdebug's WSGI core.

:class:`GateEnviron` is what the gate reads from an ``http`` scope, as WSGI
names it; :func:`full_environ` completes it for the debugger;
:class:`HeldSend` holds a gated-in response's start (and a 5xx response)
so that it can still become a debugger page. Used by :mod:`ipdebug.asgi`.
"""

from __future__ import annotations

import asyncio
import io
import sys
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    Scope = MutableMapping[str, t.Any]
    Message = MutableMapping[str, t.Any]
    Send = Callable[[Message], Awaitable[None]]
    Receive = Callable[[], Awaitable[Message]]

#: Body bytes of a gated-in 5xx response held before it is sent anyway.
MAX_HELD = 1 << 20

#: Headers the gate reads, by their ASGI (lower-case) name.
_GATE_HEADERS = {
    b"host": "HTTP_HOST",
    b"x-forwarded-for": "HTTP_X_FORWARDED_FOR",
    b"forwarded": "HTTP_FORWARDED",
}


class GateEnviron(dict):  # type: ignore[type-arg]
    """What the gate reads from an ``http`` scope, as WSGI names it.

    ``REMOTE_ADDR`` is ``scope["client"][0]``; a missing client (a unix
    socket under uvicorn) gives ``None``, which the gate denies. ``Host``,
    ``X-Forwarded-For`` and ``Forwarded`` are decoded (Latin-1) on the first
    read of any other key, so a client denied by its address costs no header
    scan. A header sent twice is joined with ``,`` as WSGI servers do, so
    two ``Host`` headers match no trusted host. Header names are matched as
    ASGI servers send them, lower-case; a server that does not lower-case
    them makes ``Host`` missing, which is denied.
    """

    __slots__ = ("_headers",)

    _headers: t.Any

    def _load(self) -> None:
        headers, self._headers = self._headers, None
        get = _GATE_HEADERS.get
        for name, value in headers:
            key = get(name)
            if key is not None:
                text = value.decode("latin-1")
                seen = dict.get(self, key)
                dict.__setitem__(self, key, text if seen is None else f"{seen},{text}")

    def get(self, key: str, default: t.Any = None) -> t.Any:
        if self._headers is not None and key != "REMOTE_ADDR":
            self._load()
        return dict.get(self, key, default)

    def __getitem__(self, key: str) -> t.Any:
        if self._headers is not None and key != "REMOTE_ADDR":
            self._load()
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        if self._headers is not None and key != "REMOTE_ADDR":
            self._load()
        return dict.__contains__(self, key)

    def loaded(self) -> dict[str, t.Any]:
        """Everything, as a plain dict."""
        if self._headers is not None:
            self._load()
        return dict(self)


def remote_addr(peer: object) -> str | None:
    """``scope["client"][0]`` when it is a string, else ``None``."""
    if type(peer) is tuple and peer and type(peer[0]) is str:
        return peer[0]
    if isinstance(peer, (tuple, list)) and peer and isinstance(peer[0], str):
        return peer[0]
    return None


def gate_environ(scope: Scope) -> dict[str, t.Any]:
    """What the gate reads from ``scope``, every key read (for tests)."""
    gate = GateEnviron(REMOTE_ADDR=remote_addr(scope.get("client")))
    gate._headers = scope.get("headers") or ()
    return gate.loaded()


def full_environ(scope: Scope, environ: dict[str, t.Any]) -> None:
    """Complete a gated-in request's environ, for the debugger (PIN cookie,
    query, resources' conditional headers, the audit's path).
    """
    root = scope.get("root_path", "") or ""
    path = scope.get("path", "") or ""
    if root and path.startswith(root):
        path = path[len(root) :]
    server = scope.get("server") or ("", None)
    environ.update(
        {
            "REQUEST_METHOD": scope.get("method", "GET"),
            "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
            "PATH_INFO": path.encode("utf-8").decode("latin-1"),
            "QUERY_STRING": (scope.get("query_string") or b"").decode("latin-1"),
            "SERVER_NAME": str(server[0] or ""),
            "SERVER_PORT": str(server[1] or ""),
            "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
    )
    for name, value in scope.get("headers") or ():
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = f"HTTP_{key}"
        if key in _GATE_KEYS:
            continue  # as the gate saw them
        text = value.decode("latin-1")
        seen = environ.get(key)
        sep = "; " if key == "HTTP_COOKIE" else ","
        environ[key] = text if seen is None else f"{seen}{sep}{text}"


_GATE_KEYS = frozenset(_GATE_HEADERS.values())


class HeldSend:
    """The ``send`` of a gated-in request: the response start is held until
    the first body bytes, and a 5xx response (up to :data:`MAX_HELD` bytes)
    until :meth:`flush` (the app returned without an error): frameworks send
    their own 500 page before re-raising or signalling the exception.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self._held: list[Message] = []
        self._status = 0
        self._size = 0
        self.sent = False
        #: Set once the app has sent its whole response (held or not).
        self.complete = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.body" and not message.get("more_body", False):
            self.complete.set()
        if self.sent:
            await self._send(message)
            return
        if kind == "http.response.start":
            self._status = int(message.get("status", 0))
            self._held.append(message)
            return
        if kind == "http.response.body":
            self._held.append(message)
            body = message.get("body") or b""
            self._size += len(body)
            if self._status >= 500 and self._size <= MAX_HELD:
                return  # maybe a framework's 500 for an error still coming
            if not body and message.get("more_body", False):
                return  # nothing on the wire yet
            await self.flush()
            return
        # Trailers, pathsend, extensions: pass everything on in order.
        self._held.append(message)
        await self.flush()

    def receive(self, receive: Receive) -> Receive:
        """``receive`` for the app: once its response is complete, the
        client is gone as far as it can tell (``http.disconnect``), as the
        server would say, though the response it sent is still held. Apps
        that wait for the disconnect before returning (Quart 0.23) would
        otherwise wait for ever.
        """

        async def app_receive() -> Message:
            if self.complete.is_set():
                return {"type": "http.disconnect"}
            message = asyncio.ensure_future(receive())
            complete = asyncio.ensure_future(self.complete.wait())
            await asyncio.wait({message, complete}, return_when=asyncio.FIRST_COMPLETED)
            complete.cancel()
            if message.done():
                return message.result()
            message.cancel()
            return {"type": "http.disconnect"}

        return app_receive

    async def flush(self) -> None:
        held, self._held = self._held, []
        if held:
            self.sent = True
        for message in held:
            await self._send(message)
