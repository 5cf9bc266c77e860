"""The hot-path targets, measured several times: this machine's in-process
figures move by up to 2 x between runs, so each target is a ratio taken side
by side in one run, and the report is the median (and spread) of the runs.

    .venv/bin/python -m bench.hotpath [--runs 9] [--quick]

- WSGI flag off: ipdebug against a no-op class middleware (issue 12: ≤ 1.10 x).
- ASGI flag off, and window open with a denied client, against a do-nothing
  ASGI middleware class (issue 15: ≤ 1.10 x and ≤ 2 x).
- A captured error (issue 12: adds ≤ 20 µs to its failing request): what it
  adds to the failing request itself (median of requests timed one by
  one), and its whole cost to the process (mean over whole rounds, the
  background audit write included).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import typing as t

import ipdebug
from ipdebug.asgi import IPDebugASGIMiddleware

from . import asgi, inprocess

WSGIApp = t.Callable[..., t.Any]


def asgi_ratios(number: int, rounds: int) -> tuple[float, float]:
    """(flag off, window open and denied) ÷ the do-nothing ASGI middleware."""
    figures = {f.name: f.ns for f in _asgi_figures(number, rounds)}
    base = figures["do-nothing ASGI middleware class"]
    return (
        figures["ipdebug ASGI, flag off"] / base,
        figures["ipdebug ASGI, window open, client denied"] / base,
    )


def _asgi_figures(number: int, rounds: int) -> list[asgi.Figure]:
    state = tempfile.mkdtemp(prefix="ipdebug-bench-hot-asgi-")
    off = IPDebugASGIMiddleware(
        asgi.hello,
        flag=os.path.join(state, "off", "flag.json"),
        allow=[asgi.OPERATOR],
        environ={},
    )
    flag = os.path.join(state, "open", "flag.json")
    opened = IPDebugASGIMiddleware(
        asgi.hello, flag=flag, allow=[asgi.OPERATOR], environ={}
    )
    ipdebug.enable("1h", allow=[asgi.OPERATOR], flag=flag, environ={})
    opened.core.switch.poll_now()
    names = [
        "do-nothing ASGI middleware class",
        "ipdebug ASGI, flag off",
        "ipdebug ASGI, window open, client denied",
    ]
    apps = [asgi.NoopASGIMiddleware(asgi.hello), off, opened]
    ns = asgi.per_request_ns(apps, asgi.DENIED, number, rounds)
    return [asgi.Figure(n, v) for n, v in zip(names, ns, strict=True)]


def _spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}"
    low, mid, high = statistics.quantiles(values, n=4, method="inclusive")
    return f"median {mid:.3f} (quartiles {low:.3f} to {high:.3f}; runs: " + (
        ", ".join(f"{v:.3f}" for v in values) + ")"
    )


def measure(
    runs: int, *, quick: bool = False, only: set[str] | None = None
) -> dict[str, list[float]]:
    """Each figure once per run: ``{name: [value of each run]}``."""
    only = only or {"wsgi", "asgi", "capture"}
    number, rounds, requests = (2_000, 2, 200) if quick else (50_000, 6, 2_000)
    results: dict[str, list[float]] = {}
    for run in range(runs):
        if "wsgi" in only:
            # Many short rounds: the best of many is the least disturbed.
            results.setdefault(WSGI_OFF, []).append(
                inprocess.flag_off_ratio(number // 5, rounds * 5)
            )
        if "asgi" in only:
            off, denied = asgi_ratios(number // 25, rounds * 10)
            results.setdefault(ASGI_OFF, []).append(off)
            results.setdefault(ASGI_DENIED, []).append(denied)
        if "capture" in only:
            added, total = inprocess.capture_costs(requests)
            results.setdefault(CAPTURE_ADDED, []).append(added)
            results.setdefault(CAPTURE_TOTAL, []).append(total)
        print(
            f"run {run + 1}: "
            + ", ".join(f"{k} {v[-1]:.3f}" for k, v in results.items()),
            file=sys.stderr,
            flush=True,
        )
    return results


WSGI_OFF = "wsgi flag off ÷ no-op class"
ASGI_OFF = "asgi flag off ÷ do-nothing"
ASGI_DENIED = "asgi denied ÷ do-nothing"
CAPTURE_ADDED = "capture µs added to its request"
CAPTURE_TOTAL = "capture µs in all (back to back)"


def section(results: dict[str, list[float]], loads: tuple[str, str]) -> str:
    """The BENCHMARKS.md section."""
    lines = [
        "## Hot-path targets, several runs (`python -m bench.hotpath`)",
        "",
        "Each run measures every figure side by side (ipdebug and its",
        "baseline timed in alternation); the table gives the median and the",
        "quartiles over the runs. Load average (1, 5, 15 min) before:",
        f"{loads[0]}; after: {loads[1]}.",
        "",
        "| figure | median | quartiles | runs |",
        "|---|---:|---|---:|",
    ]
    for name, values in results.items():
        low, mid, high = (
            statistics.quantiles(values, n=4, method="inclusive")
            if len(values) > 1
            else values * 3
        )
        lines.append(
            f"| {name} | {mid:.3f} | {low:.3f} to {high:.3f} | {len(values)} |"
        )
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="tiny counts")
    parser.add_argument(
        "--only", choices=["wsgi", "asgi", "capture"], action="append", default=None
    )
    args = parser.parse_args(argv)
    logging.getLogger("ipdebug").addHandler(logging.NullHandler())
    logging.getLogger("ipdebug").propagate = False
    print(f"load average before: {load_average()}")
    results = measure(
        args.runs, quick=args.quick, only=set(args.only) if args.only else None
    )
    print(f"load average after: {load_average()}")
    for name, values in results.items():
        print(f"{name}: {_spread(values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
