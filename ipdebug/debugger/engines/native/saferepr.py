"""Bounded, safe representations of any object, for pages and the console.

A local variable's ``__repr__`` is the application's code: it may raise,
return megabytes, or loop. :func:`safe_repr` never lets it break the page:

- containers are shortened ``reprlib``-style (a few levels, a few dozen
  items each) and every result is cut to :data:`MAX_CHARS` characters;
- an exception raised by ``__repr__`` is shown in its place;
- a ``__repr__`` written in Python runs under a trace function that stops
  it (raising inside it) after :data:`TIME_BUDGET` seconds, so a Python
  loop ends.

**Not bounded:** a single C-level operation that does not return (such as
``"x" * 10**12`` inside a ``__repr__``, or a C extension's ``__repr__``
that blocks) cannot be interrupted from the thread that runs it; the page
then waits for it, as any code would. While a Python ``__repr__`` runs, the
trace function replaces (and then restores) a debugger's or coverage's.
"""

from __future__ import annotations

import builtins
import reprlib
import sys
import time
import types
import typing as t

#: Characters of one representation shown; the rest is counted.
MAX_CHARS = 2000
#: Seconds a Python-level ``__repr__``/``__str__`` may run.
TIME_BUDGET = 0.25


class ReprTimeout(Exception):
    """Raised inside a ``__repr__`` that ran past :data:`TIME_BUDGET`."""


def bounded_call(func: t.Callable[[t.Any], str], value: t.Any) -> str:
    """``func(value)``, stopped after :data:`TIME_BUDGET` seconds of Python
    code (raising :class:`ReprTimeout` inside it).
    """
    deadline = time.monotonic() + TIME_BUDGET
    events = 0

    def tracer(frame: types.FrameType, event: str, arg: t.Any) -> t.Any:
        nonlocal events
        events += 1
        if not events & 31 and time.monotonic() > deadline:
            raise ReprTimeout(f"gave up after {TIME_BUDGET} s")
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return func(value)
    finally:
        sys.settrace(previous)


def _python_level(value: t.Any, method: str) -> bool:
    return isinstance(getattr(type(value), method, None), types.FunctionType)


def _failed(value: t.Any, what: str, exc: BaseException) -> str:
    name = type(value).__name__
    message = _cut(str_of(exc) if not isinstance(exc, ReprTimeout) else str(exc), 200)
    return f"<{what} of {name} object raised {type(exc).__name__}: {message}>"


def _cut(text: str, limit: int = MAX_CHARS) -> str:
    # The slack keeps an inner cut's "(N more characters)" when an outer
    # cut sees it again.
    if len(text) <= limit + 40:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


class _Repr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxdict = self.maxlist = self.maxtuple = 30
        self.maxset = self.maxfrozenset = self.maxdeque = self.maxarray = 30
        self.maxstring = MAX_CHARS
        self.maxlong = 200
        self.maxother = MAX_CHARS

    def repr1(self, x: t.Any, level: int) -> str:
        try:
            return super().repr1(x, level)
        except Exception as exc:
            return _failed(x, "repr()", exc)

    def repr_instance(self, x: t.Any, level: int) -> str:
        try:
            if _python_level(x, "__repr__"):
                text = bounded_call(builtins.repr, x)
            else:
                text = builtins.repr(x)
        except Exception as exc:
            return _failed(x, "repr()", exc)
        if not isinstance(text, str):
            return f"<repr() of {type(x).__name__} object returned a non-string>"
        return _cut(text, self.maxother)


_REPR = _Repr()


def safe_repr(value: t.Any) -> str:
    """A representation of ``value`` of at most about :data:`MAX_CHARS`
    characters; never raises.
    """
    try:
        return _cut(_REPR.repr(value))
    except Exception as exc:  # reprlib itself tripped on a strange object
        return _failed(value, "repr()", exc)


def str_of(value: t.Any, limit: int = MAX_CHARS) -> str:
    """``str(value)`` bounded like :func:`safe_repr` (for exception
    messages and notes); never raises.
    """
    try:
        if _python_level(value, "__str__"):
            text = bounded_call(builtins.str, value)
        else:
            text = builtins.str(value)
        if not isinstance(text, str):
            raise TypeError("__str__ returned a non-string")
    except Exception as exc:
        return f"<str() of {type(value).__name__} object raised {type(exc).__name__}>"
    return _cut(text, limit)
