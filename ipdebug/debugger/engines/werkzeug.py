"""The ``werkzeug`` engine: Werkzeug's own debugger page, JavaScript and
console, exactly as ipdebug served them before it had engines.

Every Werkzeug internal goes through :mod:`ipdebug.internals`; this module
only adapts it to :class:`~ipdebug.debugger.engines.Engine` and reads Werkzeug's
wire protocol (everything in the query string, as its JavaScript sends it).
"""

from __future__ import annotations

import typing as t

from ... import internals
from . import Command, Frame
from .form import is_close, read_close

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Request

#: What a page rendered by the internals must contain for ipdebug to work.
_PAGE_MARKERS = ('<div class="debugger">', 'SECRET = "', "EVALEX_TRUSTED")


class _Traceback:
    def __init__(
        self,
        error: BaseException,
        skip: int,
        names: t.Mapping[str, object] | None,
    ) -> None:
        self._tb = internals.Traceback(error, skip=skip, names=names)

    @property
    def frames(self) -> list[Frame]:
        return self._tb.frames

    def page(self, *, evalex: bool, secret: str, evalex_trusted: bool) -> str:
        return self._tb.page(
            evalex=evalex, secret=secret, evalex_trusted=evalex_trusted
        )

    def text(self) -> str:
        return self._tb.text()

    def json(self, page_url: str, *, show_locals: bool) -> str | None:
        return None  # Werkzeug has no JSON: API clients get the HTML page


class WerkzeugEngine:
    """Werkzeug's debugger, through :mod:`ipdebug.internals`."""

    name = "werkzeug"
    json_api = False

    def traceback(
        self,
        error: BaseException,
        *,
        skip: int,
        names: t.Mapping[str, object] | None = None,
    ) -> _Traceback:
        return _Traceback(error, skip, names)

    def read_command(self, request: Request) -> Command:
        args = request.args
        cmd = args.get("cmd", "")
        if cmd == "resource":
            return Command(cmd, name=args.get("f", ""))
        if is_close(request):
            return read_close(request)  # the shared banner's form
        secret = args.get("s", "")
        if cmd in ("pinauth", "printpin"):
            return Command(cmd, secret, pin=args.get("pin", ""))
        frame = args.get("frm", None, type=int)
        # Any other ``cmd`` is console input, as Werkzeug's JavaScript sends it.
        return Command("eval" if cmd else "", secret, frame, code=cmd)

    def evaluate(self, frame: Frame, code: str) -> tuple[str, str]:
        return internals.evaluate(frame, code), "text/html"

    def describe(self, frame: Frame) -> str:
        return internals.describe(frame)

    def resource(self, name: str) -> bytes | None:
        return internals.resource(name)

    def console_frame(self, namespace: dict[str, t.Any]) -> Frame:
        return internals.console_frame(namespace)

    def console_page(self, *, secret: str, evalex_trusted: bool) -> str:
        return internals.console_page(secret=secret, evalex_trusted=evalex_trusted)

    def with_banner(self, html: str, banner: str) -> str:
        return internals.with_banner(html, banner)


def contract_problem() -> str | None:
    """Render a small traceback with the internals; say what is missing."""
    try:
        raise ValueError("ipdebug contract check")
    except ValueError as error:
        tb = internals.Traceback(error, skip=0)
    page = tb.page(evalex=True, secret="check", evalex_trusted=False)  # noqa: S106
    missing = [marker for marker in _PAGE_MARKERS if marker not in page]
    if missing or not tb.frames:
        return f"werkzeug.debug renders a page without {missing or 'frames'}"
    if not internals.resource("debugger.js"):
        return "werkzeug.debug has no debugger.js"
    return None
