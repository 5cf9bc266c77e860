"""Run every benchmark, print the tables and write BENCHMARKS.md.

    .venv/bin/python -m bench.run            # about 3 minutes on 2 cores
    .venv/bin/python -m bench.run --quick    # a smoke run (seconds), for tests

Every figure is a ratio measured side by side in the same run: absolute
numbers on a shared machine are noise, ratios much less so.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from . import asgi, hotpath, inprocess, render, server

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts, for a smoke test"
    )
    parser.add_argument(
        "--out", default=str(ROOT / "BENCHMARKS.md"), help="where to write the report"
    )
    parser.add_argument(
        "--no-server", action="store_true", help="in-process figures only"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    # The benchmark opens windows on purpose; keep their log lines out of
    # the table.
    logging.getLogger("ipdebug").addHandler(logging.NullHandler())
    logging.getLogger("ipdebug").propagate = False

    print("in-process ...", file=sys.stderr, flush=True)
    figures = inprocess.run(quick=args.quick)
    sections = [_inprocess_section(figures), _capture_section(figures["capture"])]
    checks = _inprocess_checks(figures) + _capture_checks(figures["capture"])
    print("debugger page render ...", file=sys.stderr, flush=True)
    pages = render.run(quick=args.quick)
    sections.append(render.section(pages))
    checks += render.checks(pages)
    if not args.no_server:
        print("gunicorn throughput (wrk) ...", file=sys.stderr, flush=True)
        rounds, seconds = (2, 1.0) if args.quick else (6, 5.0)
        tput = server.throughput(rounds=rounds, seconds=seconds)
        print("worker memory ...", file=sys.stderr, flush=True)
        memory = server.memory(total=40 if args.quick else 1000)
        print("worker memory under large headers ...", file=sys.stderr, flush=True)
        memory.headers_mib = server.header_memory(requests=40 if args.quick else 900)
        print("switch latency ...", file=sys.stderr, flush=True)
        enables, disables = server.switch_latency(repeats=1 if args.quick else 5)
        print("worker memory while capturing ...", file=sys.stderr, flush=True)
        captured = server.capture_memory(total=40 if args.quick else 400)
        sections.append(_server_section(tput, memory, enables, disables))
        sections.append(_capture_memory_section(captured))
        checks += _server_checks(tput, memory, enables, disables)
        checks += _capture_memory_checks(captured)
    print("hot-path targets, several runs ...", file=sys.stderr, flush=True)
    before = hotpath.load_average()
    runs = hotpath.measure(1 if args.quick else 7, quick=args.quick)
    sections.append(hotpath.section(runs, (before, hotpath.load_average())))
    print("ASGI ...", file=sys.stderr, flush=True)
    asgi_section, asgi_checks = asgi.run(quick=args.quick, server=not args.no_server)
    sections.append(asgi_section)
    checks += asgi_checks
    elapsed = time.monotonic() - started
    report = _report(sections, checks, elapsed, quick=args.quick)
    print(report)
    Path(args.out).write_text(report)
    return 0


def _ratio(figures: list[inprocess.Figure], name: str, base: str) -> float:
    by_name = {f.name.strip(): f.ns for f in figures}
    return by_name[name] / by_name[base]


def _inprocess_section(figures: dict[str, list[inprocess.Figure]]) -> str:
    main, sizes = figures["main"], figures["sizes"]
    base = next(f.ns for f in main if f.name.startswith("2."))
    lines = [
        "## Per request, in process",
        "",
        "Nanoseconds per request through a minimal WSGI app (a 13-byte body),",
        "best of several rounds; the loop does what a server must for each",
        "request (copy the environ, `start_response`, join the body, close).",
        "Ratios are to the pass-through function (case 2).",
        "",
        "| case | ns/request | × pass-through |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {f.name.strip()} {('(' + f.note + ')') if f.note else ''} | {f.ns:,.0f} | {f.ns / base:.2f} |"
        for f in main
    ]
    lines += [
        "",
        "### Allowlist size (IPv4 and IPv6 networks mixed)",
        "",
        '"New client" uses a different address for every request (so every',
        'request parses an address and matches it); "repeated" is the same',
        "client again (a cached decision).",
        "",
        "| case | ns/request | × pass-through |",
        "|---|---:|---:|",
    ]
    lines += [f"| {f.name.strip()} | {f.ns:,.0f} | {f.ns / base:.2f} |" for f in sizes]
    lines += [
        "",
        "### Hostile forwarding headers, denied client",
        "",
        "A denied client sends a forwarding header of the given length made of",
        "commas or quotes (hostile) or of letters (bland), each request a new",
        "value ending in what the proxy appends. Direct: the peer is not a",
        "trusted proxy (its headers are never read); via proxy: the peer is one.",
        "Median ns per request, the two shapes timed one request at a time in",
        "alternation. If the window's state changed the cost of a hostile",
        "header, the open column would differ from the bland row's by more",
        "than noise.",
        "",
        "| case | header | closed ns | open ns | open − closed ns | open: hostile ÷ bland |",
        "|---|---|---:|---:|---:|---:|",
    ]
    table = _hostile_table(figures["hostile"])
    for name, shapes in table.items():
        ratio = shapes["hostile"]["open"] / shapes["bland"]["open"]
        for shape in ("hostile", "bland"):
            cell = shapes[shape]
            lines.append(
                f"| {name} | {shape} | {cell['closed']:,.0f} | {cell['open']:,.0f} | "
                f"{cell['open'] - cell['closed']:,.0f} | "
                + (f"{ratio:.2f} |" if shape == "hostile" else "|")
            )
    return "\n".join(lines)


def _hostile_table(
    figures: list[inprocess.Figure],
) -> dict[str, dict[str, dict[str, float]]]:
    """``{case: {hostile|bland: {closed|open: ns}}}``."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for figure in figures:
        name, window, shape = figure.name.split("|")
        table.setdefault(name, {}).setdefault(shape, {})[window] = figure.ns
    return table


def _inprocess_checks(
    figures: dict[str, list[inprocess.Figure]],
) -> list[tuple[str, str, bool]]:
    main, sizes = figures["main"], figures["sizes"]
    base = "2. pass-through function"
    size = {f.name.strip(): f.ns for f in sizes}
    denied_ns = [
        size[f"{n} networks: denied, repeated client"] for n in (1, 100, 10000)
    ]
    pass_ns = next(f.ns for f in main if f.name.startswith("2."))
    first = max(
        size[f"{n} networks: denied, new client each request"] for n in (1, 100, 10000)
    )
    off = _ratio(main, "3. ipdebug, flag off", base)
    hostile = _hostile_table(figures["hostile"])
    # Faster or slower, any difference would be a signal.
    worst_hostile = max(
        max(ratio, 1 / ratio)
        for shapes in hostile.values()
        for ratio in [shapes["hostile"]["open"] / shapes["bland"]["open"]]
    )
    noop = _ratio(main, "no-op class middleware", base)
    # Interleaved (the table measures each case in turn, which load from
    # elsewhere on the machine can hit unevenly).
    off_noop = figures["ratios"][0].ns
    return [
        (
            "flag off ≤ 1.2 × pass-through",
            f"{off:.2f} × (a no-op class middleware alone: {noop:.2f} ×)",
            off <= 1.2,
        ),
        (
            "flag off ≤ 1.10 × a no-op class middleware",
            f"{off_noop:.2f} × (timed in alternation, median of three)",
            off_noop <= 1.10,
        ),
        (
            "window open, denied ≤ 2 × pass-through, any allowlist size",
            f"{max(denied_ns) / pass_ns:.2f} × at worst",
            max(denied_ns) / pass_ns <= 2.0,
        ),
        (
            "gated in, no error: no slower than DebuggedApplication",
            f"{_ratio(main, '5. ipdebug, window open, gated in, no error', '6. Werkzeug DebuggedApplication, always on'):.2f} × DebuggedApplication",
            _ratio(
                main,
                "5. ipdebug, window open, gated in, no error",
                "6. Werkzeug DebuggedApplication, always on",
            )
            <= 1.0,
        ),
        (
            "10,000 networks, repeated: ≤ 1.2 × the 1-network figure",
            f"{size['10000 networks: denied, repeated client'] / size['1 networks: denied, repeated client']:.2f} × (denied), "
            f"{size['10000 networks: gated in, repeated client'] / size['1 networks: gated in, repeated client']:.2f} × (gated in)",
            size["10000 networks: denied, repeated client"]
            / size["1 networks: denied, repeated client"]
            <= 1.2
            and size["10000 networks: gated in, repeated client"]
            / size["1 networks: gated in, repeated client"]
            <= 1.2,
        ),
        (
            "denied client, window open: hostile header within 1.1 × of a bland one",
            f"{worst_hostile:.2f} × at worst (either way)",
            worst_hostile <= 1.1,
        ),
        (
            "first request from a new address < 20 µs (10,000 networks)",
            f"{first / 1000:.1f} µs at worst",
            first < 20_000,
        ),
    ]


def _capture_section(figures: list[inprocess.Figure]) -> str:
    lines = [
        "### Capture (`ipdebug enable --capture`), clients not gated in",
        "",
        "The same loop; the failing rows' app raises, and the loop answers",
        "500 as a server does. A captured error is kept (at most",
        "`max_captured`, 50), its audit record written by a background thread",
        "whose work (an `audit.log` line and a log record per capture) is",
        "counted in the first four rows: the failures come back to back.",
        "The last two (`bench.inprocess.capture_costs`, failing requests",
        "with and without a capturing window in alternation): what a capture",
        "adds to its own request (the difference of the medians of requests",
        "timed one by one: the writer's batches land in a few requests, which",
        "the median leaves out), and its whole cost (the difference of the",
        "means, the writer's work included).",
        "",
        "| case | ns/request |",
        "|---|---:|",
    ]
    lines += [f"| {f.name} | {f.ns:,.0f} |" for f in figures]
    return "\n".join(lines)


def _capture_checks(
    figures: list[inprocess.Figure],
) -> list[tuple[str, str, bool]]:
    ns = {f.name: f.ns for f in figures}
    quiet = (
        ns["denied, no error, capturing window"]
        / ns["denied, no error, window open (not capturing)"]
    )
    added = ns[inprocess.ADDED] / 1000
    total = ns[inprocess.TOTAL] / 1000
    return [
        (
            "capturing window, denied without error ≤ 1.05 × a non-capturing window",
            f"{quiet:.2f} ×",
            quiet <= 1.05,
        ),
        (
            "a captured error adds ≤ 20 µs to its request",
            f"{added:.1f} µs (median of requests timed one by one; "
            f"{total:.1f} µs in all with its background audit write)",
            added <= 20,
        ),
    ]


def _capture_memory_section(memory: server.CaptureMemory) -> str:
    lines = [
        "### Worker memory (RSS) while capturing",
        "",
        "Clients that are not gated in request a view that fails holding a",
        "1 MiB local, with a capturing window open; one sync worker keeps",
        f"`max_captured` ({memory.max_captured}) captures. Then `ipdebug disable`.",
        "",
        "| failing requests | MiB |",
        "|---:|---:|",
    ]
    lines += [
        f"| {n:,} | {m:,.0f} |"
        for n, m in zip(memory.requests, memory.mib, strict=True)
    ]
    lines += [f"| after `ipdebug disable` | {memory.after_mib:,.0f} |"]
    return "\n".join(lines)


def _capture_memory_checks(
    memory: server.CaptureMemory,
) -> list[tuple[str, str, bool]]:
    growth = memory.mib[-1] - memory.mib[len(memory.mib) // 2]
    released = memory.mib[-1] - memory.after_mib
    return [
        (
            "RSS bounded by max_captured while capturing, down after the window",
            f"second half of the run +{growth:.0f} MiB; {released:.0f} MiB "
            "returned after disable",
            growth < 10 and released >= memory.max_captured * 0.5,
        ),
    ]


def _server_section(
    tput: server.Throughput,
    memory: server.Memory,
    enables: list[float],
    disables: list[float],
) -> str:
    lines = [
        "## Whole server: gunicorn on loopback",
        "",
        f"### Throughput (wrk -t1 -c16, `GET /`, 2 sync workers, {len(tput.bare)} alternating rounds)",
        "",
        "| round | bare req/s | ipdebug (flag off) req/s | ratio |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {i + 1} | {b:,.0f} | {p:,.0f} | {p / b:.3f} |"
        for i, (b, p) in enumerate(zip(tput.bare, tput.ipdebug, strict=True))
    ]
    lines += [
        f"| median | {statistics.median(tput.bare):,.0f} | {statistics.median(tput.ipdebug):,.0f} | **{tput.ratio:.3f} ± {tput.spread:.3f}** |",
        "",
        "### Worker memory (RSS) under failing requests",
        "",
        "A gated-in client requests a view that fails holding a 1 MiB local;",
        "one sync worker. ipdebug keeps `max_tracebacks` (20) tracebacks;",
        "Werkzeug's `DebuggedApplication` keeps every one.",
        "",
        "| failing requests | ipdebug MiB | DebuggedApplication MiB |",
        "|---:|---:|---:|",
    ]
    lines += [
        f"| {n:,} | {a:,.0f} | {b:,.0f} |"
        for n, a, b in zip(
            memory.requests, memory.ipdebug_mib, memory.werkzeug_mib, strict=True
        )
    ]
    before, after = memory.headers_mib
    lines += [
        "",
        "Forwarding headers (issue 11): a client that is not a trusted proxy",
        "sends requests straight to gunicorn (one sync worker, a window open",
        "for another address, `trusted_proxies` set), each with 40 distinct",
        "8 KB `X-Forwarded-For` lines (320 KB once gunicorn joins them):",
        f"worker RSS {before:,.0f} MiB before, {after:,.0f} MiB after. Before",
        "the fix the gate kept every value: 24 → 300 MiB for 900 requests.",
    ]
    lines += [
        "",
        "### From `ipdebug enable`/`disable` to every worker (4 sync workers)",
        "",
        "Seconds until each of the 4 workers answered a request that reflects",
        "the change (the slowest worker), per repeat.",
        "",
        f"- enable: {', '.join(f'{s:.2f}' for s in enables)}",
        f"- disable: {', '.join(f'{s:.2f}' for s in disables)}",
    ]
    return "\n".join(lines)


def _server_checks(
    tput: server.Throughput,
    memory: server.Memory,
    enables: list[float],
    disables: list[float],
) -> list[tuple[str, str, bool]]:
    growth_ipdebug = (
        memory.ipdebug_mib[-1] - memory.ipdebug_mib[len(memory.ipdebug_mib) // 2]
    )
    growth_werkzeug = (
        memory.werkzeug_mib[-1] - memory.werkzeug_mib[len(memory.werkzeug_mib) // 2]
    )
    worst = max(enables + disables)
    header_growth = memory.headers_mib[1] - memory.headers_mib[0]
    return [
        (
            "gunicorn throughput, flag off ≥ 0.98 × bare (within spread)",
            f"{tput.ratio:.3f} ± {tput.spread:.3f}",
            tput.ratio + tput.spread >= 0.98,
        ),
        (
            "RSS bounded by max_tracebacks, not growing with errors",
            f"second half of the run: ipdebug +{growth_ipdebug:.0f} MiB, Werkzeug +{growth_werkzeug:.0f} MiB",
            growth_ipdebug < 10,
        ),
        (
            "RSS flat under distinct large forwarding headers",
            f"+{header_growth:.0f} MiB",
            header_growth < 10,
        ),
        (
            "enable/disable seen by every worker in ≤ 1 s",
            f"{worst:.2f} s at worst",
            worst <= 1.0,
        ),
    ]


def _report(
    sections: list[str],
    checks: list[tuple[str, str, bool]],
    elapsed: float,
    *,
    quick: bool,
) -> str:
    werkzeug = importlib.metadata.version("werkzeug")
    gunicorn_version = importlib.metadata.version("gunicorn")
    head = [
        "# Benchmarks",
        "",
        "The latest run of `python -m bench.run` (see bench/). "
        + ("**Quick mode: counts too small to trust.** " if quick else "")
        + f"Took {elapsed:.0f} s.",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), Werkzeug {werkzeug}, gunicorn {gunicorn_version}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "- load average at the end (1, 5, 15 min): "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "- reproduce: `./scripts/test -k nothing` (sets up .venv), then `.venv/bin/python -m bench.run`",
        "",
        "## Targets",
        "",
        "| target | this run | met |",
        "|---|---|---|",
    ]
    head += [
        f"| {name} | {value} | {'yes' if ok else '**no**'} |"
        for name, value, ok in checks
    ]
    return "\n".join(head + [""] + [s + "\n" for s in sections] + [_FINDINGS])


_FINDINGS = """## Findings

- **Flag off.** The hot path is one attribute read of the middleware
  (`quiet`) and the call of the app (`IPDebugMiddleware.__call__`). The
  clock read it replaces (about 45 ns of `time.monotonic()`, most of what
  was left over a no-op class middleware: 1.15 × median) is done by a
  request only after a tick of the `ipdebug-ticker` thread (every 0.25 s
  per process), which records when its next tick comes and clears `quiet`;
  a request that reads the clock sets `quiet` again when no flag check is
  due until 0.1 s after that tick. Evaluated and not taken: a cheaper clock
  (`time.monotonic_ns`, `perf_counter` and `time.time` cost the same;
  `clock_gettime(CLOCK_MONOTONIC_COARSE)` more, for its argument), a
  counter of requests between clock reads (its store costs about as much
  as the clock, and an idle worker would notice a window requests late,
  not seconds), a per-thread skip (a `threading.local` lookup costs more
  than the clock). `quiet` can only serve a request as if no window were
  open: an open window reads the clock and checks its expiry on every
  request, every switch change clears `quiet`, a forked child clears it
  before its first request, and without Python threads (uWSGI without
  `--enable-threads`) the clock is read as before (tests/test_ticker.py).
  The ASGI adapter reads the same flag. Single in-process runs on this
  shared machine still swing from 0.6 × to 1.6 ×: `bench/hotpath.py`
  reports the median of several side-by-side runs.
- **Capture.** While a window captures, a denied request without error pays
  one attribute read (`window.capture`) and, only when Flask or Django is
  loaded (their signal receivers need it), one key in its environ
  (`ipdebug.capture`); a plain WSGI app pays no per-request marking (under
  ASGI: a copy of the scope with the hook, only when Quart or Django is
  loaded). A captured error costs its own request about 5 µs (the median
  of requests timed one by one): the exception type's client-error
  decision, a peer's address (when it is not a trusted proxy) and id
  randomness (64 ids per `getrandom`) are kept, bounded. Its audit record
  is written by a background thread that, while captures come, looks for
  work every 20 ms instead of being woken per capture: waking a blocked
  thread cost the request about 13 µs on this virtual machine (a cross-CPU
  interrupt). Its whole cost, the writer's `audit.log` line and log record
  included, is the "whole cost" row.
- **ASGI, window open, denied.** A peer the gate denied from its address
  alone (it read no header: `GateEnviron` loads them on the first read of
  any other key) is remembered for the rest of that window object, so its
  next requests skip building the gate's view of the scope and the gate
  call (2.1 × to about 1.45 × the do-nothing middleware). Only denials are
  kept, per window, bounded (4,096 peers).
- **Window open, denied.** Reading the clock once per request and passing it
  on (instead of `time.monotonic()` plus `time.time()` in the switch) and
  caching the per-window `Host` decision brought case 4 from 2.3 × to about
  1.9 ×. The wall clock is now compared at each poll (once a second); a
  monotonic deadline fixed at window open is compared on every request.
- **Gated in, no error.** It was slower than `DebuggedApplication` (7.3 µs
  vs 5.3 µs): a Werkzeug `Request` was built and its query parsed for every
  gated-in request, and the `Host` check ran its regular expression every
  time. Now a request whose query string contains neither `__debugger__`
  nor a `%` (which could hide an encoded one) goes straight to the app
  (about 1.7 µs).
- **Allowlists** are matched with one set lookup per distinct prefix length
  (at most 33 for IPv4, 129 for IPv6), and each window caches decisions per
  client (bounded, 4,096 entries), so size does not show in repeated
  requests, and a new client costs an address parse plus those lookups.
- **Memory**: after the first 20 failing requests ipdebug's worker stays
  flat (the allocator keeps some freed pages, hence a plateau above
  20 × 1 MiB); Werkzeug's grows by 1 MiB per error, without bound.
"""


if __name__ == "__main__":
    raise SystemExit(main())
