"""In-process figures: nanoseconds per request through a minimal WSGI app,
best of several rounds, with a loop that does what a server must do for
each request (a fresh environ, ``start_response``, join the body, close).
"""

from __future__ import annotations

import gc
import ipaddress
import os
import random
import statistics
import tempfile
import time
import typing as t
from dataclasses import dataclass

import ipdebug
from ipdebug import IPDebugMiddleware

from .apps import NoopMiddleware, debugged_hello, hello, passthrough, proxy_fixed

WSGIApp = t.Callable[..., t.Any]

OPERATOR = "127.0.0.1"
DENIED_V4 = "192.0.2.1"
BASE_ENVIRON: dict[str, t.Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "127.0.0.1:8000",
    "REMOTE_ADDR": DENIED_V4,
    "wsgi.url_scheme": "http",
    "wsgi.version": (1, 0),
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}


def serve(app: WSGIApp, environ: dict[str, t.Any]) -> bytes:
    """One request, the way a minimal server handles it."""
    env = environ.copy()
    sent: list[str] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Callable[[bytes], None]:
        sent.append(status)
        return sent.append  # type: ignore[return-value]

    result = app(env, start_response)
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


@dataclass
class Figure:
    name: str
    ns: float
    note: str = ""


def per_request_ns(
    app: WSGIApp, environs: list[dict[str, t.Any]], number: int, rounds: int
) -> float:
    """Best-of-``rounds`` nanoseconds per request, cycling through
    ``environs`` (one environ means the same client every time).
    """
    count = len(environs)
    for env in environs[: min(count, 100)]:
        serve(app, env)  # warm caches and code paths
    best = float("inf")
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            start = time.perf_counter_ns()
            if count == 1:
                env = environs[0]
                for _ in range(number):
                    serve(app, env)
            else:
                for i in range(number):
                    serve(app, environs[i % count])
            best = min(best, (time.perf_counter_ns() - start) / number)
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


def random_networks(count: int, seed: int = 7) -> list[str]:
    """``count`` IPv4 and IPv6 networks (half each) of assorted prefix
    lengths, inside 10.0.0.0/8 and 2001:db8::/32 so that the benchmark's
    denied clients are never in them.
    """
    rng = random.Random(seed)
    nets: set[str] = set()
    while len(nets) < count:
        if len(nets) % 2:
            prefix = rng.choice([16, 20, 24, 28, 30, 32])
            addr = ipaddress.IPv4Address((10 << 24) | rng.getrandbits(24))
            nets.add(str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False)))
        else:
            prefix = rng.choice([48, 56, 64, 96, 112, 128])
            addr = ipaddress.IPv6Address((0x20010DB8 << 96) | rng.getrandbits(96))
            nets.add(str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False)))
    return sorted(nets)


def client_environs(
    count: int, *, v6_every: int = 2, seed: int = 11
) -> list[dict[str, t.Any]]:
    """``count`` environs from distinct denied clients, IPv4 and IPv6 mixed."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        if i % v6_every:
            addr = str(ipaddress.IPv6Address((0x20010DB9 << 96) | rng.getrandbits(96)))
        else:
            addr = str(
                ipaddress.IPv4Address((198 << 24) | (18 << 16) | rng.getrandbits(16))
            )
        out.append({**BASE_ENVIRON, "REMOTE_ADDR": addr})
    return out


def _middleware(
    state: str,
    allow: list[str],
    *,
    window: bool,
    capture: bool = False,
    app: WSGIApp = hello,
    **options: t.Any,
) -> IPDebugMiddleware:
    flag = os.path.join(
        state, f"flag-{len(allow)}-{window}-{capture}-{id(app)}", "flag.json"
    )
    middleware = IPDebugMiddleware(app, flag=flag, allow=allow, environ={}, **options)
    if window:
        ipdebug.enable("1h", flag=flag, environ={}, capture=capture)
        middleware.switch.poll_now()
    return middleware


def failing(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> list[bytes]:
    """A view that fails."""
    local = "customer data"
    raise RuntimeError(f"failed with {len(local)}")


def server_500(app: WSGIApp) -> WSGIApp:
    """What a server does with an exception that escapes the app."""

    def serve_500(
        environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
    ) -> list[bytes]:
        try:
            return app(environ, start_response)  # type: ignore[no-any-return]
        except RuntimeError:
            start_response("500 Internal Server Error", [])
            return [b""]

    return serve_500


def flag_off_ratio(number: int, rounds: int) -> float:
    """ipdebug (flag off) ÷ the no-op class middleware, best of ``rounds``
    each, the two timed in alternation.
    """
    state = tempfile.mkdtemp(prefix="ipdebug-bench-off-")
    off = _middleware(state, [OPERATOR], window=False)
    noop = NoopMiddleware(hello)
    env = [dict(BASE_ENVIRON)]
    best = {"noop": float("inf"), "off": float("inf")}
    for r in range(rounds):
        pair: list[tuple[str, WSGIApp]] = [("noop", noop), ("off", off)]
        for name, app in pair if r % 2 else reversed(pair):
            best[name] = min(best[name], per_request_ns(app, env, number, 1))
    return best["off"] / best["noop"]


def capture_costs(requests: int) -> tuple[float, float]:
    """(µs a captured error adds to its failing request, µs it costs the
    process in all), failures back to back in both.

    The first: each failing request timed alone, with and without a
    capturing window in alternation; the difference of the medians. The
    background writer takes the GIL now and then (every 20 ms while
    captures come) to write a batch of audit records: that lands in a few
    requests only, which the median leaves out. The second: the mean per
    request over whole rounds (best of several), which counts the writer's
    work too (an ``audit.log`` line and a log record per capture).
    """
    state = tempfile.mkdtemp(prefix="ipdebug-bench-capture-")
    plain = _middleware(state, [OPERATOR], window=True, app=failing)
    capturing = _middleware(state, [OPERATOR], window=True, capture=True, app=failing)
    apps = [server_500(plain), server_500(capturing)]
    env = dict(BASE_ENVIRON)
    for _ in range(100):
        serve(apps[0], env)
        serve(apps[1], env)
    alone: tuple[list[int], list[int]] = ([], [])
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(requests):
            for which in (0, 1) if i % 2 else (1, 0):
                start = clock()
                serve(apps[which], env)
                alone[which].append(clock() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    added = (statistics.median(alone[1]) - statistics.median(alone[0])) / 1000
    back = [per_request_ns(app, [env], max(requests, 2_000), 5) for app in apps]
    return added, (back[1] - back[0]) / 1000


def run(*, quick: bool = False) -> dict[str, list[Figure]]:
    """All in-process figures, grouped by table."""
    number = 2_000 if quick else 100_000
    rounds = 3 if quick else 7
    state = tempfile.mkdtemp(prefix="ipdebug-bench-")
    denied = [dict(BASE_ENVIRON)]
    gated = [{**BASE_ENVIRON, "REMOTE_ADDR": OPERATOR}]

    def measure(
        app: WSGIApp, environs: list[dict[str, t.Any]] = denied, n: int = number
    ) -> float:
        return per_request_ns(app, environs, n, rounds)

    off = _middleware(state, [OPERATOR], window=False)
    opened = _middleware(state, [OPERATOR], window=True)
    behind_proxy = _middleware(
        state, [OPERATOR], window=True, trusted_proxies=["127.0.0.1"]
    )
    proxied = [
        {
            **BASE_ENVIRON,
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_FORWARDED_FOR": f"{DENIED_V4}, 10.9.9.9",
        }
    ]
    main = [
        Figure("1. bare app", measure(hello)),
        Figure("2. pass-through function", measure(passthrough)),
        Figure(
            "   no-op class middleware",
            measure(NoopMiddleware(hello)),
            "floor of any class-based middleware",
        ),
        Figure("3. ipdebug, flag off", measure(off)),
        Figure("4. ipdebug, window open, client denied", measure(opened)),
        Figure(
            "   4b. ... denied, behind a trusted proxy (X-Forwarded-For)",
            measure(behind_proxy, proxied),
        ),
        Figure("5. ipdebug, window open, gated in, no error", measure(opened, gated)),
        Figure(
            "6. Werkzeug DebuggedApplication, always on", measure(debugged_hello, gated)
        ),
        Figure("7. Werkzeug ProxyFix", measure(proxy_fixed)),
    ]

    sizes: list[Figure] = []
    # More clients than a window's decision cache holds, so each request
    # really is the first from its address.
    new_clients = client_environs(6_000 if quick else 50_000)
    for size in (1, 100, 10_000):
        nets = [OPERATOR, *random_networks(size - 1)] if size > 1 else [OPERATOR]
        middleware = _middleware(state, nets, window=True)
        sizes += [
            Figure(f"{size:>6} networks: denied, repeated client", measure(middleware)),
            Figure(
                f"{size:>6} networks: denied, new client each request",
                measure(middleware, new_clients, len(new_clients)),
            ),
            Figure(
                f"{size:>6} networks: gated in, repeated client",
                measure(middleware, gated),
            ),
        ]
    quiet = _middleware(state, [OPERATOR], window=True, capture=True)
    failing_plain = server_500(_middleware(state, [OPERATOR], window=True, app=failing))
    failing_captured = server_500(
        _middleware(state, [OPERATOR], window=True, capture=True, app=failing)
    )
    capture = [
        Figure("denied, no error, window open (not capturing)", measure(opened)),
        Figure("denied, no error, capturing window", measure(quiet)),
        Figure(
            "denied, failing request, window open (not capturing)",
            measure(failing_plain),
        ),
        Figure(
            "denied, failing request, capturing window (captured)",
            measure(failing_captured),
        ),
    ]
    # The target's ratio, the two timed in alternation over many short
    # rounds (the table above measures each case in turn), median of three.
    ratio = statistics.median(
        flag_off_ratio(2_000 if quick else 10_000, 4 if quick else 30) for _ in range(3)
    )
    added, total = capture_costs(200 if quick else 5_000)
    capture += [
        Figure(ADDED, added * 1000),
        Figure(TOTAL, total * 1000),
    ]
    return {
        "main": main,
        "sizes": sizes,
        "hostile": hostile(state, number, rounds),
        "capture": capture,
        "ratios": [Figure(FLAG_OFF_RATIO, ratio)],
    }


#: Not a table row (``run()["ratios"]``): flag off ÷ the no-op class
#: middleware, the two timed in alternation.
FLAG_OFF_RATIO = "flag off ÷ no-op class middleware, interleaved"
#: Rows of the capture table from :func:`capture_costs` (ns).
ADDED = "a captured error: what it adds to its failing request"
TOTAL = "a captured error: its whole cost, background audit write included"


#: (row name, peer, environ key, header length, hostile character).
HOSTILE_CASES = [
    (
        "direct, X-Forwarded-For 8,000 commas",
        DENIED_V4,
        "HTTP_X_FORWARDED_FOR",
        8000,
        ",",
    ),
    (
        "via proxy, X-Forwarded-For 8,000 commas",
        "10.0.0.1",
        "HTTP_X_FORWARDED_FOR",
        8000,
        ",",
    ),
    (
        "via proxy, X-Forwarded-For 2,048 commas",
        "10.0.0.1",
        "HTTP_X_FORWARDED_FOR",
        2048,
        ",",
    ),
    ("via proxy, Forwarded 8,000 commas", "10.0.0.1", "HTTP_FORWARDED", 8000, ","),
    ("via proxy, Forwarded 2,048 commas", "10.0.0.1", "HTTP_FORWARDED", 2048, ","),
    ("via proxy, Forwarded 2,048 quotes", "10.0.0.1", "HTTP_FORWARDED", 2048, '"'),
]


def hostile_environs(
    peer: str, key: str, length: int, char: str, *, hostile: bool, count: int
) -> list[dict[str, t.Any]]:
    """``count`` requests from a denied client whose forwarding header is
    ``length`` characters: ``char`` repeated (hostile) or letters (bland),
    then what a proxy appends for the client, a different client each time
    so that no decision is cached (finding 3 of issue 11)."""
    out = []
    for i in range(count):
        client = f"198.18.{i // 250}.{i % 250 + 1}"
        tail = f", for={client}" if key == "HTTP_FORWARDED" else f", {client}"
        size = length - len(tail)
        body = char * size if hostile else "x" * size
        if hostile and char == '"' and size % 2:
            body = body[:-1] + ","
        out.append({**BASE_ENVIRON, "REMOTE_ADDR": peer, key: body + tail})
    return out


def paired_ns(
    app: WSGIApp,
    first: list[dict[str, t.Any]],
    second: list[dict[str, t.Any]],
    rounds: int,
) -> tuple[float, float]:
    """Median nanoseconds per request for two request lists, timed one
    request at a time in alternation (which goes first alternates too), so
    that load from elsewhere on the machine hits both alike."""
    for env in first[:100] + second[:100]:
        serve(app, env)
    times: tuple[list[int], list[int]] = ([], [])
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for i, pair in enumerate(zip(first, second, strict=True)):
                for which in (0, 1) if (i + r) % 2 else (1, 0):
                    start = clock()
                    serve(app, pair[which])
                    times[which].append(clock() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(times[0]), statistics.median(times[1])


def hostile(state: str, number: int, rounds: int) -> list[Figure]:
    """A denied client with a hostile or a bland forwarding header of the
    same length, window closed and open, side by side. Figures are named
    ``case|closed or open|hostile or bland``.
    """
    closed = _middleware(state, [OPERATOR], window=False, trusted_proxies=["10.0.0.1"])
    opened = _middleware(state, [OPERATOR], window=True, trusted_proxies=["10.0.0.1"])
    # More distinct headers than the gate's byte-bounded cache holds, so
    # that (via the proxy) every request is decided afresh.
    count = 1_000
    rounds = rounds * 3 if number > 10_000 else 1
    figures = []
    for name, peer, key, length, char in HOSTILE_CASES:
        bad, bland = (
            hostile_environs(peer, key, length, char, hostile=shape, count=count)
            for shape in (True, False)
        )
        for window, app in (("closed", closed), ("open", opened)):
            bad_ns, bland_ns = paired_ns(app, bad, bland, rounds)
            figures += [
                Figure(f"{name}|{window}|hostile", bad_ns),
                Figure(f"{name}|{window}|bland", bland_ns),
            ]
    return figures
