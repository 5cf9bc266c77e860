"""The native engine's console: Python run in a frame of the traceback.

Input may span several lines; the last statement, if an expression, is
shown like the interactive interpreter does (its bounded representation,
also stored in ``_``). Code runs in the frame's globals and a copy of its
locals taken when the page was rendered, as Werkzeug's console does, so
assignments persist between commands. What the code prints (``sys.stdout``,
in this thread only) is captured and shown, bounded.
"""

from __future__ import annotations

import ast
import sys
import threading
import traceback
import typing as t
from dataclasses import dataclass

from markupsafe import escape

from .saferepr import _cut, safe_repr

#: Characters of printed output kept per command.
MAX_OUTPUT = 64 * 1024


@dataclass(eq=False)
class ConsoleFrame:
    """The standalone console's namespace (globals and locals are one)."""

    globals: dict[str, t.Any]

    @property
    def locals(self) -> dict[str, t.Any]:
        return self.globals

    def where(self) -> str:
        return "standalone console"


class _Capture:
    """Stands in for ``sys.stdout``: writes of a thread that runs a console
    command are kept for it; every other write goes to the real stream.
    """

    def __init__(self, stream: t.Any) -> None:
        self._stream = stream
        self._local = threading.local()

    def write(self, text: str) -> t.Any:
        buffer: list[str] | None = getattr(self._local, "buffer", None)
        if buffer is None:
            # Exactly what the real stream does (a logging shim may return
            # None; no stream at all, as under pythonw, drops the text).
            stream = self._stream
            return None if stream is None else stream.write(text)
        if self._local.size < MAX_OUTPUT:
            buffer.append(str(text))
            self._local.size += len(text)
        return len(text)

    def flush(self) -> None:
        flush = getattr(self._stream, "flush", None)
        if flush is not None:
            flush()

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._stream, name)

    def start(self) -> None:
        self._local.buffer = []
        self._local.size = 0

    def stop(self) -> str:
        buffer: list[str] = self._local.buffer
        del self._local.buffer
        return "".join(buffer)


_LOCK = threading.Lock()


def _capture() -> _Capture:
    # Installed once, the first time a console command runs (like
    # Werkzeug's ThreadedStream); other threads' output is untouched.
    with _LOCK:
        if not isinstance(sys.stdout, _Capture):
            sys.stdout = _Capture(sys.stdout)
        return sys.stdout


def run(code: str, globals_: dict[str, t.Any], locals_: dict[str, t.Any]) -> str:
    """Run ``code``; the transcript entry as an HTML fragment."""
    capture = _capture()
    result: str | None = None
    error = ""
    capture.start()
    try:
        try:
            result = _run(code, globals_, locals_)
        except (KeyboardInterrupt, GeneratorExit):
            raise
        except BaseException as exc:  # SystemExit too: never end the worker
            error = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next)
                if exc.__traceback__ is not None
                else traceback.format_exception_only(type(exc), exc)
            )
    finally:
        printed = capture.stop()
    out = [f'<pre class="input">{escape(_prompted(code))}</pre>']
    if printed:
        out.append(f'<pre class="printed">{escape(_cut(printed, MAX_OUTPUT))}</pre>')
    if result is not None:
        out.append(f'<pre class="result">{escape(result)}</pre>')
    if error:
        out.append(f'<pre class="error">{escape(_cut(error, MAX_OUTPUT))}</pre>')
    return "\n".join(out)


def _run(
    code: str, globals_: dict[str, t.Any], locals_: dict[str, t.Any]
) -> str | None:
    tree = ast.parse(code, "<console>", "exec")
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        tree.body.pop()
    if tree.body:
        exec(compile(tree, "<console>", "exec"), globals_, locals_)  # noqa: S102
    if not isinstance(last, ast.Expr):
        return None
    expression = ast.Expression(last.value)
    value = eval(compile(expression, "<console>", "eval"), globals_, locals_)  # noqa: S307
    if value is None:
        return None
    locals_["_"] = value
    return safe_repr(value)


def _prompted(code: str) -> str:
    lines = code.rstrip("\n").split("\n")
    return "\n".join(
        (">>> " if number == 0 else "... ") + line for number, line in enumerate(lines)
    )
