"""Debugger page render time, Werkzeug's engine against the native one.

Each figure is a whole gated-in request whose app fails, served in process
(the model of the traceback, the page, the banner, keeping the frames):
milliseconds per page, best of several rounds. Two tracebacks: a
200-frame recursion, and an exception group of 50 exceptions (each raised
three frames deep). Run alone with ``python -m bench.render``.
"""

from __future__ import annotations

import io
import logging
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass

import ipdebug
from ipdebug import IPDebugMiddleware

ENGINES = ("werkzeug", "native")


@dataclass
class RenderFigure:
    case: str
    engine: str
    ms: float
    size: int


def _recurse(depth: int) -> None:
    level = depth  # noqa: F841 (a local per frame, as in real code)
    if depth == 0:
        raise RecursionError("200 frames deep")
    _recurse(depth - 1)


def _leaf(n: int) -> None:
    raise ValueError(f"item {n} failed")


def _middle(n: int) -> None:
    _leaf(n)


def _group() -> None:
    errors: list[Exception] = []
    for n in range(50):
        try:
            _middle(n)
        except ValueError as exc:
            errors.append(exc)
    raise ExceptionGroup("50 items failed", errors)  # noqa: F821 (3.11+)


CASES: dict[str, t.Callable[[], None]] = {
    "200-frame recursion": lambda: _recurse(198),
}
if sys.version_info >= (3, 11):  # exception groups
    CASES["group of 50 exceptions"] = _group


def _app_for(fail: t.Callable[[], None]) -> t.Callable[..., t.Any]:
    def app(environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]) -> t.Any:
        fail()
        return []

    return app


def _environ() -> dict[str, t.Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/fail",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _page(middleware: IPDebugMiddleware) -> bytes:
    statuses: list[str] = []
    body = b"".join(middleware(_environ(), lambda s, h, e=None: statuses.append(s)))
    if not statuses or not statuses[0].startswith("500"):
        raise RuntimeError(f"no debugger page: {statuses}")
    return body


def run(*, quick: bool = False) -> list[RenderFigure]:
    rounds, per_round = (2, 2) if quick else (7, 10)
    figures: list[RenderFigure] = []
    with tempfile.TemporaryDirectory() as tmp:
        flag = f"{tmp}/flag.json"
        ipdebug.enable("1h", allow=["127.0.0.1"], flag=flag, environ={})
        for case, fail in CASES.items():
            for engine in ENGINES:
                middleware = IPDebugMiddleware(
                    _app_for(fail),
                    flag=flag,
                    allow=["127.0.0.1"],
                    engine=engine,
                    relay=False,
                    environ={},
                )
                middleware.switch.poll_now()
                size = len(_page(middleware))
                best = float("inf")
                for _ in range(rounds):
                    start = time.perf_counter()
                    for _ in range(per_round):
                        _page(middleware)
                    best = min(best, (time.perf_counter() - start) / per_round)
                figures.append(RenderFigure(case, engine, best * 1000, size))
                middleware.close()
    return figures


def section(figures: list[RenderFigure]) -> str:
    lines = [
        "### Debugger page render (native engine against Werkzeug's)",
        "",
        "A whole gated-in request whose app fails, in process: milliseconds",
        "per page, best of several rounds (`python -m bench.render`). The",
        "native page also shows every frame's locals (bounded), which",
        "Werkzeug's does not.",
        "",
        "| traceback | engine | ms/page | page size | × Werkzeug |",
        "|---|---|---:|---:|---:|",
    ]
    base = {f.case: f.ms for f in figures if f.engine == "werkzeug"}
    lines += [
        f"| {f.case} | {f.engine} | {f.ms:.1f} | {f.size / 1024:,.0f} KiB | {f.ms / base[f.case]:.2f} |"
        for f in figures
    ]
    return "\n".join(lines)


def checks(figures: list[RenderFigure]) -> list[tuple[str, str, bool]]:
    base = {f.case: f.ms for f in figures if f.engine == "werkzeug"}
    native = {f.case: f.ms / base[f.case] for f in figures if f.engine == "native"}
    return [
        (
            f"native page render, {case}: no slower than Werkzeug's",
            f"{ratio:.2f} × Werkzeug",
            ratio <= 1.0,
        )
        for case, ratio in native.items()
    ]


if __name__ == "__main__":
    logging.getLogger("ipdebug").addHandler(logging.NullHandler())
    logging.getLogger("ipdebug").propagate = False
    result = run(quick="--quick" in sys.argv)
    print(section(result))
    for name, value, met in checks(result):
        print(f"- {name}: {value} ({'met' if met else 'NOT met'})")
