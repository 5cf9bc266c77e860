"""The ``native`` engine: ipdebug's own debugger page, console and JSON.

Works without ``werkzeug.debug``. Compared with Werkzeug's debugger it shows
the whole exception story (chains, groups, notes, ``__tracebackhide__``,
column ranges, locals with bounded safe representations), keeps the PIN and
console input out of URLs (:mod:`.wire`), answers JSON to API clients, and
reads without JavaScript.
"""

from __future__ import annotations

import pkgutil
import typing as t

from .. import Command, Frame
from . import console, model, render, wire

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Request

#: The engine's static files (``static/``), by name.
RESOURCES = ("native.js", "native.css")


class NativeTraceback:
    """One exception, modelled by :mod:`.model`."""

    def __init__(
        self,
        error: BaseException,
        *,
        skip: int,
        names: t.Mapping[str, object] | None = None,
    ) -> None:
        self.model = model.build(error, skip=skip)
        self._text: str | None = None
        if names:
            for frame in self.model.all_frames():
                frame.offered = names

    @property
    def frames(self) -> list[Frame]:
        return list(self.model.all_frames())

    def page(self, *, evalex: bool, secret: str, evalex_trusted: bool) -> str:
        return render.page(
            self.model,
            evalex=evalex,
            secret=secret,
            evalex_trusted=evalex_trusted,
            plain=self.text(),
        )

    def text(self) -> str:
        if self._text is None:  # once: for the page and the error log
            self._text = model.text(self.model)
        return self._text

    def json(self, page_url: str, *, show_locals: bool) -> str | None:
        return render.as_json(self.model, page_url, show_locals=show_locals)


class NativeEngine:
    """ipdebug's own engine (see the module docstring)."""

    name = "native"
    json_api = True

    def __init__(self) -> None:
        # Read once: the files are small and never change while running.
        self._resources = {
            name: pkgutil.get_data(__name__, f"static/{name}") or b""
            for name in RESOURCES
        }

    def traceback(
        self,
        error: BaseException,
        *,
        skip: int,
        names: t.Mapping[str, object] | None = None,
    ) -> NativeTraceback:
        return NativeTraceback(error, skip=skip, names=names)

    def read_command(self, request: Request) -> Command:
        return wire.read_command(request)

    def evaluate(self, frame: Frame, code: str) -> tuple[str, str]:
        local_ns, global_ns = frame.locals, frame.globals
        if local_ns is not global_ns:
            # Offered names (Flask's request, g...) join the console's copy
            # of the locals when first used, not the page's locals table.
            for name, value in getattr(frame, "offered", {}).items():
                if name not in local_ns and name not in global_ns:
                    local_ns[name] = value
        return console.run(code, global_ns, local_ns), "text/html"

    def describe(self, frame: Frame) -> str:
        return t.cast(str, frame.where())

    def resource(self, name: str) -> bytes | None:
        return self._resources.get(name) or None

    def console_frame(self, namespace: dict[str, t.Any]) -> Frame:
        return console.ConsoleFrame(namespace)

    def console_page(self, *, secret: str, evalex_trusted: bool) -> str:
        return render.console_page(secret=secret, evalex_trusted=evalex_trusted)

    def with_banner(self, html: str, banner: str) -> str:
        return html.replace(render.BANNER_MARKER, banner, 1)
