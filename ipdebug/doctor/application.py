"""The app: imported as gunicorn would (with Werkzeug's development server
replaced by a stub that records the call), walked through everything it
wraps, and checked for an always-on debugger and for how ipdebug wraps it
(IPD010-IPD014).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import os
import sys
import typing as t
from collections.abc import Sequence

from ..errors import ConfigError
from ..middleware import IPDebugMiddleware
from .findings import Finding, finding

#: Attributes through which WSGI wrappers hold the app they wrap (Flask's
#: ``wsgi_app``, Werkzeug's middlewares, whitenoise, ``functools.wraps``;
#: ``core``: the IPDebugMiddleware inside ipdebug's ASGI adapter).
WRAPPED_ATTRIBUTES = ("app", "wsgi_app", "application", "_app", "__wrapped__", "core")

_MAX_NODES = 64


class ServeCall(t.NamedTuple):
    """A call of Werkzeug's ``run_simple`` made while importing the app."""

    host: object
    port: object
    use_debugger: bool


def load_app(spec: str, *, cwd: str | None = None) -> tuple[object, list[ServeCall]]:
    """Import ``module:name`` or ``module:factory(literal args)`` as gunicorn
    does, with ``cwd`` (default: the current directory) first on
    ``sys.path``; ``module`` alone means ``module:application``, else
    ``module:app``. Werkzeug's ``run_simple`` is a stub during the import: it
    records each call (an ``app.run()`` at import time) and returns at once.
    What the module prints goes to standard error.

    :raises ConfigError: naming the spec and the import error; or, unchanged,
        the one ipdebug raised while the app was built (a bad setting).
    """
    import werkzeug
    import werkzeug.serving

    calls: list[ServeCall] = []

    def stub(
        hostname: object, port: object, app: object, *args: t.Any, **kwargs: t.Any
    ) -> None:
        debugger = kwargs.get("use_debugger", args[1] if len(args) > 1 else False)
        calls.append(ServeCall(hostname, port, bool(debugger)))

    real = werkzeug.serving.run_simple
    directory = os.getcwd() if cwd is None else cwd
    module_name, _, expression = spec.partition(":")
    sys.path.insert(0, directory)
    werkzeug.serving.run_simple = werkzeug.run_simple = stub  # type: ignore[assignment]
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keeps --json clean
            app = _evaluate(importlib.import_module(module_name), expression)
    except ConfigError:
        raise  # ipdebug refused the app's own settings: a finding, see run_checks
    except (Exception, SystemExit) as exc:
        error = f"cannot be loaded: {type(exc).__name__}: {exc}"
        raise ConfigError("APP_IMPORT_PATH", spec, error) from None
    finally:
        werkzeug.serving.run_simple = werkzeug.run_simple = real
        with contextlib.suppress(ValueError):
            sys.path.remove(directory)
    if not callable(app):
        raise ConfigError("APP_IMPORT_PATH", spec, "is not a WSGI application")
    return app, calls


def _evaluate(module: object, expression: str) -> object:
    if not expression:
        for name in ("application", "app"):
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError("neither 'application' nor 'app' is defined")
    node = ast.parse(expression.strip(), mode="eval").body
    if isinstance(node, ast.Name):
        return getattr(module, node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        return getattr(module, node.func.id)(*args, **kwargs)
    raise ValueError("expected a name, or a call with literal arguments")


def walk(app: object, label: str) -> list[tuple[str, object]]:
    """The app and everything it wraps, as ``(path, object)`` pairs, through
    :data:`WRAPPED_ATTRIBUTES` and ``DispatcherMiddleware.mounts``,
    breadth first, each object once, at most 64.
    """
    seen: set[int] = set()
    out: list[tuple[str, object]] = []
    todo = [(label, app)]
    while todo and len(out) < _MAX_NODES:
        path, obj = todo.pop(0)
        if inspect.ismethod(obj):  # Flask's own wsgi_app, a bound __call__
            obj = obj.__self__
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        out.append((path, obj))
        for attr in WRAPPED_ATTRIBUTES:
            child = _held(obj, attr)
            if callable(child):
                todo.append((f"{path}.{attr}", child))
        mounts = _held(obj, "mounts")
        if isinstance(mounts, dict):
            todo += [(f"{path}.mounts[{k!r}]", v) for k, v in mounts.items()]
    return out


def _held(obj: object, attr: str) -> object:
    """What ``obj`` holds in ``attr`` (in its ``__dict__`` or a slot), read
    without running properties or ``__getattr__``; ``None`` for a method of
    its class.
    """
    try:
        own = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        own = None
    if isinstance(own, dict) and attr in own:
        return own[attr]
    try:
        found = inspect.getattr_static(obj, attr)
    except AttributeError:
        return None
    if inspect.ismemberdescriptor(found):  # a __slots__ entry
        with contextlib.suppress(AttributeError):
            return found.__get__(obj, type(obj))
    return None


def check_app(
    app: object, label: str, served: Sequence[ServeCall] = ()
) -> tuple[list[Finding], list[IPDebugMiddleware]]:
    """An always-on Werkzeug debugger or Flask debug mode anywhere in the
    app, Werkzeug's server started at import, and whether (and how often)
    ipdebug wraps the app (IPD010-IPD014).

    :returns: the findings, and the middlewares found.
    """
    from werkzeug.debug import DebuggedApplication

    found: list[Finding] = []
    middlewares: list[tuple[str, IPDebugMiddleware]] = []
    flask = sys.modules.get("flask")  # only when the app imported it
    for path, obj in walk(app, label):
        if isinstance(obj, DebuggedApplication):
            what = "a Python console" if obj.evalex else "tracebacks with source code"
            found.append(finding("IPD010", path=path, evalex=obj.evalex, what=what))
        elif isinstance(obj, IPDebugMiddleware):
            middlewares.append((path, obj))
        elif flask is not None and isinstance(obj, flask.Flask) and obj.debug:
            found.append(finding("IPD011", path=path))
    for call in served:
        found.append(
            finding(
                "IPD014",
                app=label,
                host=call.host,
                port=call.port,
                debugger=call.use_debugger,
            )
        )
    if not middlewares:
        found.append(finding("IPD012", app=label))
    elif len(middlewares) > 1:
        paths = ", ".join(p for p, _ in middlewares)
        found.append(finding("IPD013", app=label, count=len(middlewares), paths=paths))
    return found, [m for _, m in middlewares]
