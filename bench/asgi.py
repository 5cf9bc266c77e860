"""ASGI figures: the adapter in process against a do-nothing ASGI middleware
class, and uvicorn throughput with ipdebug off against the bare app.

    .venv/bin/python -m bench.asgi [--quick]    # prints the section

``bench.run`` includes this section in BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ipdebug
from ipdebug.asgi import IPDebugASGIMiddleware

from .server import Throughput, free_port, wrk

ROOT = Path(__file__).resolve().parent.parent
OPERATOR = "127.0.0.1"
DENIED = ("192.0.2.1", 50000)
BODY = b"Hello, World!"

Message = dict[str, t.Any]


async def hello(scope: t.Any, receive: t.Any, send: t.Any) -> None:
    """The smallest useful ASGI app: a 13-byte body."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


class NoopASGIMiddleware:
    """A middleware that does nothing: the floor of any class middleware."""

    def __init__(self, app: t.Any) -> None:
        self.app = app

    async def __call__(self, scope: t.Any, receive: t.Any, send: t.Any) -> None:
        await self.app(scope, receive, send)


def _scope(client: tuple[str, int]) -> dict[str, t.Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
            (b"accept", b"*/*"),
        ],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }


def per_request_ns(
    apps: list[t.Any], client: tuple[str, int], number: int, rounds: int
) -> list[float]:
    """Best-of-``rounds`` nanoseconds per request for each app, the apps
    measured in turn within each round (so load on a shared machine hits
    them alike); each request gets a fresh scope copy, ``receive`` and a
    ``send`` that keeps the messages, as a server would.
    """
    template = _scope(client)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def loop(app: t.Any, n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            sent: list[Message] = []
            await app(template.copy(), receive, _appender(sent))
        return time.perf_counter_ns() - start

    best = [float("inf")] * len(apps)
    # One event loop for every round (asyncio.Runner is Python 3.11+).
    event_loop = asyncio.new_event_loop()
    run = event_loop.run_until_complete
    try:
        for app in apps:
            run(loop(app, min(number, 1000)))  # warm up
        for _ in range(rounds):
            for index, app in enumerate(apps):
                best[index] = min(best[index], run(loop(app, number)) / number)
    finally:
        event_loop.close()
    return best


def _appender(sent: list[Message]) -> t.Callable[[Message], t.Awaitable[None]]:
    async def send(message: Message) -> None:
        sent.append(message)

    return send


@dataclass
class Figure:
    name: str
    ns: float


def inprocess(*, quick: bool) -> list[Figure]:
    # Many short rounds: on a shared machine the best of many is the one
    # least disturbed, for every app alike.
    number, rounds = (500, 20) if quick else (2_000, 300)
    state = tempfile.mkdtemp(prefix="ipdebug-bench-asgi-")
    off = IPDebugASGIMiddleware(
        hello,
        flag=os.path.join(state, "off", "flag.json"),
        allow=[OPERATOR],
        environ={},
    )
    opened_flag = os.path.join(state, "open", "flag.json")
    opened = IPDebugASGIMiddleware(
        hello, flag=opened_flag, allow=[OPERATOR], environ={}
    )
    ipdebug.enable("1h", allow=[OPERATOR], flag=opened_flag, environ={})
    opened.core.switch.poll_now()
    names = [
        "bare ASGI app",
        "do-nothing ASGI middleware class",
        "ipdebug ASGI, flag off",
        "ipdebug ASGI, window open, client denied",
    ]
    apps = [hello, NoopASGIMiddleware(hello), off, opened]
    ns = per_request_ns(apps, DENIED, number, rounds)
    return [Figure(name, value) for name, value in zip(names, ns, strict=True)]


# uvicorn


def __getattr__(name: str) -> t.Any:
    # ``bench.asgi:server_app`` for uvicorn: wrapped from IPDEBUG_* at import.
    if name != "server_app":
        raise AttributeError(name)
    app = IPDebugASGIMiddleware(hello)
    globals()[name] = app
    return app


@contextlib.contextmanager
def uvicorn(app: str) -> Iterator[int]:
    state = tempfile.mkdtemp(prefix="ipdebug-bench-uvicorn-")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": state,
        "PYTHONPATH": str(ROOT),
        "IPDEBUG_FLAG": os.path.join(state, "flag", "flag.json"),
        "IPDEBUG_ALLOW": OPERATOR,
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
        app,
    ]
    with (Path(state) / "uvicorn.log").open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with contextlib.closing(
                    __import__("socket").create_connection(("127.0.0.1", port), 1)
                ):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def throughput(*, rounds: int, seconds: float) -> Throughput:
    """Bare app and ipdebug (flag off) under uvicorn, one worker each, in
    alternating rounds.
    """
    result = Throughput([], [])
    with (
        uvicorn("bench.asgi:hello") as bare,
        uvicorn("bench.asgi:server_app") as wrapped,
    ):
        wrk(bare, 1)
        wrk(wrapped, 1)
        for index in range(rounds):
            order = [(bare, result.bare), (wrapped, result.ipdebug)]
            for port, figures in order if index % 2 == 0 else reversed(order):
                figures.append(wrk(port, seconds))
    return result


def section(
    figures: list[Figure], tput: Throughput | None
) -> tuple[str, list[tuple[str, str, bool]]]:
    """The BENCHMARKS.md section and its target rows."""
    base = next(f.ns for f in figures if f.name.startswith("do-nothing"))
    lines = [
        "## ASGI",
        "",
        "Nanoseconds per request through a minimal ASGI app (a 13-byte body),",
        "driven by one asyncio loop, best of several rounds; each request gets",
        "a fresh scope copy and a `send` that keeps the messages. Ratios are to",
        "the do-nothing ASGI middleware class.",
        "",
        "| case | ns/request | × do-nothing middleware |",
        "|---|---:|---:|",
    ]
    lines += [f"| {f.name} | {f.ns:,.0f} | {f.ns / base:.2f} |" for f in figures]
    off = next(f.ns for f in figures if "flag off" in f.name) / base
    denied = next(f.ns for f in figures if "denied" in f.name) / base
    checks = [
        (
            "ASGI flag off ≤ 1.10 × a do-nothing ASGI middleware",
            f"{off:.3f} ×",
            off <= 1.10,
        ),
        (
            "ASGI window open, denied ≤ 2 × that middleware",
            f"{denied:.3f} ×",
            denied <= 2,
        ),
    ]
    if tput is not None:
        ratios = tput.ratios
        median = statistics.median(ratios)
        quartiles = (
            statistics.quantiles(ratios, n=4, method="inclusive")
            if len(ratios) > 1
            else ratios * 3
        )
        total = sum(tput.ipdebug) / sum(tput.bare)
        lines += [
            "",
            "### uvicorn throughput",
            "",
            "uvicorn, one worker each, `wrk -t1 -c16` on loopback, bare and ipdebug",
            "(flag off) in alternating rounds. Ratio of the totals:",
            f"{total:.3f}; median of the round ratios {median:.3f}, quartiles",
            f"{quartiles[0]:.3f} to {quartiles[2]:.3f}.",
            "",
            "| round | bare req/s | ipdebug req/s | ratio |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {i + 1} | {b:,.0f} | {w:,.0f} | {w / b:.3f} |"
            for i, (b, w) in enumerate(zip(tput.bare, tput.ipdebug, strict=True))
        ]
        checks.append(
            (
                "uvicorn throughput, flag off ≥ 0.98 × bare (within spread)",
                f"{median:.3f} (median; quartiles {quartiles[0]:.3f} to {quartiles[2]:.3f})",
                quartiles[2] >= 0.98,
            )
        )
    return "\n".join(lines), checks


def run(*, quick: bool, server: bool = True) -> tuple[str, list[tuple[str, str, bool]]]:
    figures = inprocess(quick=quick)
    tput = None
    if server:
        # Many short alternating rounds, and the median: on a shared machine
        # a long round is as likely to be disturbed as a short one.
        rounds, seconds = (2, 1.0) if quick else (24, 2.0)
        tput = throughput(rounds=rounds, seconds=seconds)
    return section(figures, tput)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    import logging

    logging.getLogger("ipdebug").addHandler(logging.NullHandler())
    logging.getLogger("ipdebug").propagate = False
    text, checks = run(quick="--quick" in args, server="--no-server" not in args)
    print(text)
    print()
    for name, value, ok in checks:
        print(f"{name}: {value} ({'met' if ok else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
