"""POST bodies of debugger requests, shared by both engines: the native
engine's PIN and console input, and the banner's "Close window now" form.

A body is read only for a gated-in debugger request, at most
:data:`~ipdebug.debugger.engines.MAX_BODY` bytes, and kept in the environ
(:data:`~ipdebug.debugger.relay.BODY_KEY`) so that the relay can forward it
to the process that holds the traceback.
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qs

from ..banner import CLOSE_PARAM, CLOSE_VALUE
from ..relay import BODY_KEY
from . import MAX_BODY, Command

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.wrappers import Request


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
    environ[BODY_KEY] = body.decode("latin-1")
    return t.cast(bytes, body)


def read_form(
    environ: WSGIEnvironment, *, fields: int
) -> dict[str, str] | tuple[int, str]:
    """The first value of each field of a form body (at most ``fields``
    of them), or ``(status, reason)``.
    """
    body = read_body(environ)
    if isinstance(body, tuple):
        return body
    try:
        form = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=fields
        )
    except (UnicodeDecodeError, ValueError):
        return 400, "the body is not a UTF-8 form"
    return {key: values[0] for key, values in form.items()}


def is_close(request: Request) -> bool:
    """Whether ``request`` is the banner's "Close window now"."""
    return request.args.get(CLOSE_PARAM) == CLOSE_VALUE


def read_close(request: Request) -> Command:
    """The banner's "Close window now": a POST whose body carries the page's
    secret and the window's id, so that neither reaches an access log.
    """
    if request.method != "POST":
        return Command("close", refusal=(405, "closing the window takes a POST"))
    form = read_form(request.environ, fields=4)
    if isinstance(form, tuple):
        return Command("close", refusal=form)
    return Command("close", form.get("s", ""), window=form.get("window", ""))
