"""The native engine's model of an exception: everything Python knows.

Chained exceptions (``__cause__``, ``__context__`` unless
``__suppress_context__``), nested exception groups, ``__notes__``, frames
hidden with ``__tracebackhide__`` and the failing expression's column range
(``co_positions``, Python 3.11+). Each frame keeps a copy of its locals and
its globals, so the console can run code in it, as Werkzeug's does.

Everything is bounded: chains, groups, nesting and the number of frames, so
a pathological exception cannot make a page of unbounded size.
"""

from __future__ import annotations

import builtins
import itertools
import linecache
import types
import typing as t
from dataclasses import dataclass, field

from .saferepr import safe_repr, str_of

#: Exceptions followed along one ``__cause__``/``__context__`` chain.
MAX_CHAIN = 32
#: Sub-exceptions shown per group, and levels of nested groups.
MAX_GROUP = 100
MAX_NESTING = 8
#: Frames shown per exception: the first and last halves of a deeper stack.
MAX_FRAMES = 1000
#: Source lines shown before and after the failing line.
CONTEXT = 4
#: Locals shown per frame (all stay available to the console).
MAX_LOCALS = 100

#: What Python prints between two chained exceptions.
RELATIONS = {
    "cause": "The above exception was the direct cause of the following exception:",
    "context": "During handling of the above exception, another exception occurred:",
}


@dataclass(eq=False)
class FrameModel:
    """One frame: where it is, its source, and its namespaces."""

    filename: str
    lineno: int
    name: str
    module: str
    #: ``(lineno, end_lineno, col, end_col)`` of the failing expression.
    positions: tuple[int, int, int, int] | None
    source: list[tuple[int, str]]
    locals: dict[str, t.Any]
    globals: dict[str, t.Any]
    #: Shared by every model of the same Python frame (the frames of an
    #: exception group's members repeat the frame that caught them): the
    #: locals' representations are computed once.
    memo: dict[str, t.Any] = field(default_factory=dict)
    #: Names the console offers where the frame defines none (Flask's
    #: ``request``...), set by the traceback from the request.
    offered: t.Mapping[str, object] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return id(self)

    @property
    def line(self) -> str:
        for number, text in self.source:
            if number == self.lineno:
                return text.strip()
        return ""

    def local_reprs(self) -> tuple[list[tuple[str, str]], int]:
        """Bounded representations of the locals, and how many were left
        out."""
        found = self.memo.get("reprs")
        if found is None:
            names = sorted(self.locals)
            shown = names[:MAX_LOCALS]
            found = self.memo["reprs"] = (
                [(n, safe_repr(self.locals[n])) for n in shown],
                len(names) - len(shown),
            )
        return t.cast(tuple[list[tuple[str, str]], int], found)

    def where(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.name}"


@dataclass(eq=False)
class ExceptionModel:
    """One exception, with what came before it and, for a group, inside."""

    type_name: str
    message: str
    notes: list[str]
    frames: list[FrameModel]
    #: Frames left out: hidden by ``__tracebackhide__``, or beyond MAX_FRAMES.
    hidden: int = 0
    elided: int = 0
    #: The exception shown before this one, and the sentence between them
    #: (``"cause"`` or ``"context"``, see :data:`RELATIONS`).
    previous: ExceptionModel | None = None
    relation: str = ""
    children: list[ExceptionModel] = field(default_factory=list)
    more_children: int = 0
    is_group: bool = False

    def chain(self) -> list[ExceptionModel]:
        """This exception's chain, the first cause first."""
        chain: list[ExceptionModel] = []
        current: ExceptionModel | None = self
        while current is not None:
            chain.append(current)
            current = current.previous
        return chain[::-1]

    def all_frames(self) -> t.Iterator[FrameModel]:
        for exc in self.chain():
            yield from exc.frames
            for child in exc.children:
                yield from child.all_frames()

    @property
    def summary(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


@dataclass
class _Shared:
    """What one build reads once: a group's members repeat frames."""

    #: The locals snapshot and memo of each Python frame, by id.
    frames: dict[int, tuple[dict[str, t.Any], dict[str, t.Any]]] = field(
        default_factory=dict
    )
    sources: dict[tuple[str, int], list[tuple[int, str]]] = field(default_factory=dict)


def build(error: BaseException, *, skip: int = 0) -> ExceptionModel:
    """The model of ``error``, leaving out its ``skip`` outermost frames."""
    return _build(error, skip=skip, seen=set(), nesting=0, shared=_Shared())


def _build(
    error: BaseException,
    *,
    skip: int,
    seen: set[int],
    nesting: int,
    shared: _Shared,
) -> ExceptionModel:
    seen.add(id(error))
    model = _one(error, skip, seen, nesting, shared)
    current, exc = model, error
    for _ in range(MAX_CHAIN):
        previous, relation = _previous(exc)
        if previous is None or id(previous) in seen:
            break
        seen.add(id(previous))
        current.previous = _one(previous, 0, seen, nesting, shared)
        current.relation = relation
        current, exc = current.previous, previous
    return model


def _previous(error: BaseException) -> tuple[BaseException | None, str]:
    if error.__cause__ is not None:
        return error.__cause__, "cause"
    if error.__context__ is not None and not error.__suppress_context__:
        return error.__context__, "context"
    return None, ""


def _one(
    error: BaseException, skip: int, seen: set[int], nesting: int, shared: _Shared
) -> ExceptionModel:
    cls = type(error)
    module = getattr(cls, "__module__", None) or ""
    name = getattr(cls, "__qualname__", cls.__name__)
    notes = getattr(error, "__notes__", None)
    model = ExceptionModel(
        type_name=name
        if module in ("builtins", "__main__", "")
        else f"{module}.{name}",
        message=str_of(error),
        notes=[str_of(n) for n in notes[:MAX_GROUP]]
        if isinstance(notes, (list, tuple))
        else [],
        frames=[],
    )
    frames, model.hidden = _frames(error.__traceback__, skip, shared)
    if len(frames) > MAX_FRAMES:
        half = MAX_FRAMES // 2
        model.elided = len(frames) - MAX_FRAMES
        frames = frames[:half] + frames[-half:]
    model.frames = frames
    group = getattr(builtins, "BaseExceptionGroup", None)
    if group is not None and isinstance(error, group):
        model.is_group = True
        subs = list(error.exceptions)
        if nesting < MAX_NESTING:
            model.children = [
                _build(sub, skip=0, seen=seen, nesting=nesting + 1, shared=shared)
                for sub in subs[:MAX_GROUP]
                if id(sub) not in seen
            ]
        model.more_children = len(subs) - len(model.children)
    return model


def _hidden(frame: types.FrameType) -> bool:
    try:
        return bool(
            frame.f_locals.get("__tracebackhide__")
            or frame.f_globals.get("__tracebackhide__")
        )
    except Exception:
        return False


def _frames(
    tb: types.TracebackType | None, skip: int, shared: _Shared
) -> tuple[list[FrameModel], int]:
    frames: list[FrameModel] = []
    hidden = 0
    while tb is not None:
        frame, lasti, lineno = tb.tb_frame, tb.tb_lasti, tb.tb_lineno
        tb = tb.tb_next
        if skip:
            skip -= 1
            continue
        if _hidden(frame):
            hidden += 1
            continue
        frames.append(_frame(frame, lasti, lineno, shared))
    return frames, hidden


def _frame(
    frame: types.FrameType, lasti: int, lineno: int | None, shared: _Shared
) -> FrameModel:
    code = frame.f_code
    line = lineno or frame.f_lineno or 0
    if id(frame) not in shared.frames:
        shared.frames[id(frame)] = (dict(frame.f_locals), {})
    namespace, memo = shared.frames[id(frame)]
    return FrameModel(
        filename=code.co_filename,
        lineno=line,
        name=code.co_name,
        module=str(frame.f_globals.get("__name__", "")),
        positions=_positions(code, lasti),
        source=_source(code.co_filename, line, frame.f_globals, shared),
        locals=namespace,
        globals=frame.f_globals,
        memo=memo,
    )


def _source(
    filename: str, line: int, module_globals: dict[str, t.Any], shared: _Shared
) -> list[tuple[int, str]]:
    """The lines around ``line``."""
    found = shared.sources.get((filename, line))
    if found is not None:
        return found
    lines = linecache.getlines(filename, module_globals)
    source = [
        (n, lines[n - 1].rstrip("\n"))
        for n in range(max(1, line - CONTEXT), min(len(lines), line + CONTEXT) + 1)
    ]
    shared.sources[filename, line] = source
    return source


def _positions(code: types.CodeType, lasti: int) -> tuple[int, int, int, int] | None:
    positions = getattr(code, "co_positions", None)
    if positions is None or lasti < 0:
        return None  # Python 3.10
    found = next(itertools.islice(positions(), lasti // 2, None), None)
    if found is None or None in found:
        return None
    start, end, col, end_col = found
    return int(start), int(end), int(col), int(end_col)


def text(model: ExceptionModel) -> str:
    """The plain-text traceback, in Python's own layout."""
    out: list[str] = []
    _text(model, out, "")
    return "".join(out)


def _text(model: ExceptionModel, out: list[str], indent: str) -> None:
    for index, exc in enumerate(model.chain()):
        if index:
            # The sentence between two exceptions belongs to the later one.
            out.append(f"\n{indent}{RELATIONS[exc.relation]}\n\n")
        if exc.frames or exc.hidden:
            out.append(f"{indent}Traceback (most recent call last):\n")
        if exc.hidden:
            out.append(f"{indent}  ({exc.hidden} frames hidden by __tracebackhide__)\n")
        for frame in exc.frames:
            out.append(
                f'{indent}  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
            )
            if frame.line:
                out.append(f"{indent}    {frame.line}\n")
        if exc.elided:
            out.append(f"{indent}  ({exc.elided} frames left out)\n")
        out.append(f"{indent}{exc.summary}\n")
        out.extend(f"{indent}{note}\n" for note in exc.notes)
        for number, child in enumerate(exc.children, 1):
            out.append(f"{indent}+---------------- {number} ----------------\n")
            _text(child, out, indent + "| ")
        if exc.more_children:
            out.append(f"{indent}+---------------- and {exc.more_children} more\n")
