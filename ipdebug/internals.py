"""Every use of Werkzeug's debugger internals, in one module.

ipdebug serves Werkzeug's own debugger page, resources and console (its
JavaScript depends on them) but replaces the dispatcher around them. The
pieces it borrows are not public API: each is wrapped here, marked
``Werkzeug internal``, and was checked against Werkzeug 2.3.8 to 3.1.9
(every piece is the same in 2.3.x, 3.0.x and 3.1.x; only the JavaScript
writes its URLs differently, with the same parameters);
``tests/test_werkzeug_contract.py`` fails loudly when a release changes one.
Nothing else in ipdebug imports from ``werkzeug.debug``.
"""

from __future__ import annotations

import pkgutil
import re
import typing as t
from collections.abc import Mapping
from os.path import basename

# Werkzeug internal: the traceback model and renderers behind
# DebuggedApplication (werkzeug/debug/tbtools.py), and the frame stand-in of
# its standalone console (werkzeug/debug/__init__.py).
from werkzeug.debug import _ConsoleFrame
from werkzeug.debug.tbtools import (
    DebugFrameSummary,
    DebugTraceback,
    render_console_html,
)

#: A frame the console can evaluate code in.
Frame = DebugFrameSummary | _ConsoleFrame

#: The element that opens the body of every debugger page (tbtools.HEADER).
_BODY_MARKER = '<div class="debugger">'

#: Werkzeug internal: the PIN prompt's hint (tbtools.FOOTER), which sends
#: the operator to the server's output, where ipdebug never prints a PIN.
_PIN_HINT = re.compile(
    r"You can find the PIN printed out on the standard output of your\s+"
    r"shell that runs the server\."
)
#: What the prompt says instead (HTML text only: the JavaScript protocol of
#: the prompt is Werkzeug's, unchanged).
PIN_HINT = (
    "The PIN was printed by <code>ipdebug enable</code> when this window was "
    "opened (it is stored nowhere). Lost it? Run <code>ipdebug enable</code> "
    "again: a new window comes with a new PIN."
)


class Traceback:
    """An exception as the debugger shows it.

    :param skip: frames to leave out at the top (ipdebug's own).
    :param names: offered to the console of every frame that defines none
        of that name, locally or globally (Flask's ``request``, ...).
    """

    def __init__(
        self,
        error: BaseException,
        *,
        skip: int,
        names: Mapping[str, object] | None = None,
    ) -> None:
        # Werkzeug internal: DebugTraceback(...), as
        # DebuggedApplication.debug_application builds it.
        self._tb = DebugTraceback(error, skip=skip)
        if names:
            for frame in self._tb.all_frames:
                _offer(frame, names)

    @property
    def frames(self) -> list[Frame]:
        """Every frame, with its locals; the page names them by ``id()``."""
        return list(self._tb.all_frames)

    def page(self, *, evalex: bool, secret: str, evalex_trusted: bool) -> str:
        return self._tb.render_debugger_html(
            evalex=evalex, secret=secret, evalex_trusted=evalex_trusted
        )

    def text(self) -> str:
        return self._tb.render_traceback_text()


def _offer(frame: DebugFrameSummary, names: Mapping[str, object]) -> None:
    # Werkzeug internal: the console of a frame evaluates in
    # (frame.global_ns, frame.local_ns); local_ns is the dead frame's own
    # f_locals dict, so a name added there is seen by the console only. A
    # module-level frame's locals are its globals: never touched.
    local_ns, global_ns = frame.local_ns, frame.global_ns
    if local_ns is global_ns:
        return
    for name, value in names.items():
        if name not in local_ns and name not in global_ns:
            local_ns[name] = value


def console_frame(namespace: dict[str, t.Any]) -> Frame:
    """The frame of Werkzeug's standalone console (frame id 0)."""
    return _ConsoleFrame(namespace)


def console_page(*, secret: str, evalex_trusted: bool) -> str:
    return render_console_html(secret=secret, evalex_trusted=evalex_trusted)


def resource(name: str) -> bytes | None:
    """A file of the debugger's ``shared/`` folder (JavaScript, CSS, icons),
    looked up as ``DebuggedApplication.get_resource`` does.
    """
    if not name:
        return None
    try:
        return pkgutil.get_data("werkzeug.debug", f"shared/{basename(name)}") or None
    except OSError:
        return None


def with_banner(html: str, banner: str) -> str:
    """Put ``banner`` at the top of a debugger page's body, and say where
    the PIN comes from under ipdebug (both left out should Werkzeug's markup
    change; ``tests/test_werkzeug_contract.py`` then fails).
    """
    html = _PIN_HINT.sub(PIN_HINT, html, count=1)
    return html.replace(_BODY_MARKER, _BODY_MARKER + banner, 1)


def evaluate(frame: Frame, code: str) -> str:
    """Run console input in ``frame``; Werkzeug's HTML for the output."""
    return t.cast(str, frame.eval(code))


def describe(frame: Frame) -> str:
    """Where a frame is, for the audit trail."""
    if isinstance(frame, DebugFrameSummary):
        return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return "standalone console"
