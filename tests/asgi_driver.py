"""A tiny in-process ASGI driver: run one ``http`` request through an app and
record every message it sends (or the exception it raised).
"""

from __future__ import annotations

import asyncio
import typing as t
import urllib.parse

import ipdebug

from .conftest import HOST, OPERATOR, secret_and_frame
from .servers import UNLOCKED, debugger_path

Message = dict[str, t.Any]


class Outcome(t.NamedTuple):
    messages: list[Message]
    error: BaseException | None

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode("latin-1") for k, v in self.messages[0]["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"")
            for m in self.messages
            if m["type"] == "http.response.body"
        )

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def comparable(self) -> tuple[list[Message], str | None]:
        error = None if self.error is None else repr(self.error)
        return self.messages, error


def scope(
    path: str = "/",
    *,
    query: str = "",
    client: t.Any = (OPERATOR, 50000),
    host: str | None = HOST,
    headers: list[tuple[bytes, bytes]] | None = None,
    method: str = "GET",
) -> dict[str, t.Any]:
    raw = [] if host is None else [(b"host", host.encode("latin-1"))]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": raw + list(headers or []),
        "client": client,
        "server": ("127.0.0.1", 8000),
    }


async def call(app: t.Any, request: dict[str, t.Any]) -> Outcome:
    messages: list[Message] = []
    sent_request = False
    # As a server does: the client is gone once the response is complete
    # (Quart 0.23 waits for that before its request task ends).
    done = asyncio.Event()

    async def receive() -> Message:
        nonlocal sent_request
        if not sent_request:
            sent_request = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(dict(message))
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    try:
        await app(request, receive, send)
    except Exception as exc:
        return Outcome(messages, exc)
    return Outcome(messages, None)


def run(app: t.Any, request: dict[str, t.Any]) -> Outcome:
    return asyncio.run(call(app, request))


def get(app: t.Any, path: str = "/", **options: t.Any) -> Outcome:
    parsed = urllib.parse.urlsplit(path)
    return run(app, scope(parsed.path, query=parsed.query, **options))


def page_secret(outcome: Outcome) -> tuple[str, str]:
    assert outcome.status == 500, outcome
    assert "Werkzeug Debugger" in outcome.text
    return secret_and_frame(outcome.text)


def unlock(
    app: t.Any, secret: str, opened: ipdebug.Enabled
) -> list[tuple[bytes, bytes]]:
    reply = get(app, debugger_path(secret, cmd="pinauth", pin=opened.pin))
    assert reply.body == UNLOCKED.encode(), reply
    cookie = reply.headers["set-cookie"].split(";")[0]
    return [(b"cookie", cookie.encode())]
