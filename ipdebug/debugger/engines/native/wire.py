"""The native engine's protocol: no secrets in URLs.

Werkzeug's JavaScript sends the PIN and console input in the query string,
so access logs, proxies and browser history record them. The native
JavaScript sends them in a POST body (``application/x-www-form-urlencoded``)
with the page's secret in the ``X-IPDebug-Secret`` header:

========================================  ======  ===========================
``?__debugger__=yes&cmd=resource&f=NAME``  GET     static file (no secret)
``?__debugger__=yes&cmd=page&tb=REF``      GET     HTML page of a held
                                                   traceback (JSON clients)
``?__debugger__=yes&cmd=pinauth``          POST    body ``pin=...``
``?__debugger__=yes&cmd=eval``             POST    body ``frm=ID&code=...``
========================================  ======  ===========================

**Security (CSRF):** a cross-site page cannot set a custom header without a
CORS preflight (which ipdebug never grants), cookies are
``SameSite=Strict``, and a request whose ``Origin``, ``Sec-Fetch-Site`` or
``Referer`` says another site sent it never reaches an engine
(:mod:`ipdebug.crosssite`, shared by both engines). Bodies are
read only for gated-in debugger requests, and at most :data:`MAX_BODY`
bytes.
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qs

from ...banner import CLOSE_PARAM, CLOSE_VALUE
from ...relay import BODY_KEY
from .. import MAX_BODY, Command

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.wrappers import Request

#: Largest POST body read (console input is typed by a person).
SECRET_HEADER = "X-IPDebug-Secret"  # noqa: S105 (a header name)
_POSTED = ("pinauth", "eval")


def read_body(environ: WSGIEnvironment) -> bytes | tuple[int, str]:
    """The request body, or ``(status, reason)`` when it is too large or
    its length unknown.
    """
    forwarded = environ.get(BODY_KEY)
    if isinstance(forwarded, str):
        return forwarded.encode("latin-1", "replace")
    raw = environ.get("CONTENT_LENGTH") or ""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        return 411, "a POST to the debugger needs a Content-Length"
    length = int(raw)
    if length > MAX_BODY:
        return 413, f"the body is over {MAX_BODY} bytes"
    body = environ["wsgi.input"].read(length) if length else b""
    # Kept for the relay, which forwards it to the process that holds the
    # traceback.
    environ[BODY_KEY] = body.decode("latin-1")
    return t.cast(bytes, body)


def read_command(request: Request) -> Command:
    """A ``__debugger__`` request of the native protocol."""
    args = request.args
    cmd = args.get("cmd", "")
    if cmd == "resource":
        return Command(cmd, name=args.get("f", ""))
    if args.get(CLOSE_PARAM) == CLOSE_VALUE:
        return Command("close", args.get("s", ""))  # the shared banner's form
    if cmd == "page":
        return Command(cmd, name=args.get("tb", ""))
    secret = request.headers.get(SECRET_HEADER, "")
    if cmd == "printpin":
        return Command(cmd, secret)
    if cmd not in _POSTED:
        return Command("", secret)
    if request.method != "POST":
        return Command(
            cmd,
            refusal=(405, "the PIN and console input go in a POST body, never the URL"),
        )
    body = read_body(request.environ)
    if isinstance(body, tuple):
        return Command(cmd, refusal=body)
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=4)
    except (UnicodeDecodeError, ValueError):
        return Command(cmd, refusal=(400, "the body is not a UTF-8 form"))
    frame = form.get("frm", [""])[0]
    return Command(
        cmd,
        secret,
        frame=int(frame)
        if frame.isascii() and frame.isdigit() and len(frame) < 30
        else None,
        code=form.get("code", [""])[0],
        pin=form.get("pin", [""])[0],
    )
