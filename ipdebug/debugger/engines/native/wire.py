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
(:mod:`ipdebug.gate.crosssite`, shared by both engines). Bodies are
read only for gated-in debugger requests, and at most
:data:`~ipdebug.debugger.engines.MAX_BODY` bytes (:mod:`ipdebug.debugger.engines.form`).
"""

from __future__ import annotations

import typing as t

from .. import Command
from ..form import is_close, read_close, read_form

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Request

#: The header that carries the page's secret (never the URL).
SECRET_HEADER = "X-IPDebug-Secret"  # noqa: S105 (a header name)
_POSTED = ("pinauth", "eval")


def read_command(request: Request) -> Command:
    """A ``__debugger__`` request of the native protocol."""
    args = request.args
    cmd = args.get("cmd", "")
    if cmd == "resource":
        return Command(cmd, name=args.get("f", ""))
    if is_close(request):
        return read_close(request)  # the shared banner's form
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
    form = read_form(request.environ, fields=4)
    if isinstance(form, tuple):
        return Command(cmd, refusal=form)
    frame = form.get("frm", "")
    return Command(
        cmd,
        secret,
        frame=int(frame)
        if frame.isascii() and frame.isdigit() and len(frame) < 30
        else None,
        code=form.get("code", ""),
        pin=form.get("pin", ""),
    )
