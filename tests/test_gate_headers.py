"""Forwarding headers cost the gate neither memory nor work that a client
controls (issue 11, findings 2 and 3).

Finding 2: the per-window cache keyed every request by its full
``X-Forwarded-For`` and ``Forwarded`` values, even from peers that are not
proxies, so large distinct headers grew a worker by hundreds of MiB.
Finding 3: a hostile ``X-Forwarded-For`` (thousands of commas) took longer
to refuse only while a window was open, which told a denied client that a
window was open. Timing on a busy machine is noise, so these tests measure
the *work* instead: Python calls counted with :func:`sys.setprofile` and
memory allocated during the request, traced with :mod:`tracemalloc`. The
timings are in ``bench/inprocess.py`` (``hostile-*`` rows).
"""

from __future__ import annotations

import gc
import io
import sys
import tracemalloc
import typing as t

import pytest

import ipdebug.middleware
from ipdebug import IPDebugMiddleware
from ipdebug.gate.address import MAX_FORWARDED_LENGTH
from ipdebug.gate.decisions import CACHE_BYTES

from .conftest import HOST, OPERATOR, Records, open_window

PROXY = "10.0.0.1"
ATTACKER = "203.0.113.9"


def call(middleware: t.Any, **environ: object) -> str:
    """One GET / straight through the WSGI callable; the status line."""
    env: dict[str, object] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": HOST,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **environ,
    }
    statuses: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        statuses.append(status)

    b"".join(middleware(env, start_response))
    return statuses[0]


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """No flag poll falls due between two measured requests."""
    monkeypatch.setattr(ipdebug.middleware, "_monotonic", lambda: 1000.0)


def gate_of(middleware: IPDebugMiddleware) -> t.Any:
    gate = middleware._gate
    assert gate is not None, "no request reached the gate"
    return gate


def traced_growth(
    middleware: IPDebugMiddleware, requests: t.Iterator[dict[str, str]]
) -> int:
    """Bytes still allocated after ``requests``, each environ built while
    tracing (as a server reads each request), so what ipdebug keeps counts."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for environ in requests:
            call(middleware, **environ)
        del environ
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_large_headers_from_a_peer_that_is_no_proxy_are_not_kept(
    make: t.Callable[..., IPDebugMiddleware], frozen_clock: None
) -> None:
    """The reported attack: direct to the server, 900 distinct 8 KB headers
    while a window is open. Each used to become a cache key (16 MB here;
    ~440 MiB of worker RSS with gunicorn)."""
    middleware = make(trusted_proxies=[PROXY])
    open_window(middleware)
    call(middleware, REMOTE_ADDR=ATTACKER)  # builds the gate
    requests = (
        {
            "REMOTE_ADDR": ATTACKER,
            "HTTP_X_FORWARDED_FOR": f"{i:06d}" + "1" * 8000,
            "HTTP_FORWARDED": f"{i:06d}" + "2" * 8000,
        }
        for i in range(900)
    )
    growth = traced_growth(middleware, requests)
    assert growth < 64 * 1024, growth
    gate = gate_of(middleware)
    assert gate.cached_bytes == 0
    assert list(gate._decisions) == [ATTACKER]


def test_cache_of_proxied_requests_is_bounded_in_bytes(
    make: t.Callable[..., IPDebugMiddleware], frozen_clock: None
) -> None:
    """From a trusted proxy, headers are part of the key, but at most
    MAX_FORWARDED_LENGTH characters each and CACHE_BYTES in all."""
    middleware = make(trusted_proxies=[PROXY])
    open_window(middleware)
    call(middleware, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=OPERATOR)
    pad = MAX_FORWARDED_LENGTH - 30
    requests = (
        {
            "REMOTE_ADDR": PROXY,
            "HTTP_X_FORWARDED_FOR": f"{i:06d}{'9' * pad}, {ATTACKER}",
        }
        for i in range(3000)  # 6 MB of distinct headers
    )
    growth = traced_growth(middleware, requests)
    gate = gate_of(middleware)
    assert 0 < gate.cached_bytes <= CACHE_BYTES
    # What the cache holds, plus the dict's own table: well under 2x.
    assert growth < 2 * CACHE_BYTES, growth


@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED"])
def test_over_long_forwarding_header_is_denied_and_logged_once(
    make: t.Callable[..., IPDebugMiddleware], records: Records, header: str
) -> None:
    middleware = make(trusted_proxies=[PROXY])
    open_window(middleware)
    value = f"for={OPERATOR}" if header == "HTTP_FORWARDED" else OPERATOR
    at_cap = " " * (MAX_FORWARDED_LENGTH - len(value)) + value
    assert call(middleware, REMOTE_ADDR=PROXY, PATH_INFO="/fail", **{header: at_cap})
    for _ in range(3):
        with pytest.raises(Exception, match="local_value") as raised:
            call(
                middleware,
                REMOTE_ADDR=PROXY,
                PATH_INFO="/fail",
                **{header: " " + at_cap},
            )
        assert type(raised.value).__name__ == "Boom"  # the app's own, not gated
    messages = [
        r.getMessage() for r in records.records if "longer than" in r.getMessage()
    ]
    assert messages == [
        "ipdebug denied a request from a trusted proxy whose X-Forwarded-For or "
        f"Forwarded header is longer than {MAX_FORWARDED_LENGTH} characters"
    ]


def _shapes(length: int, forwarded: bool, char: str, last: int) -> tuple[str, str]:
    """A hostile value (``char`` repeated: commas, or quotes that the
    ``Forwarded`` parser must pair) and a bland one of ``length``
    characters, each ending in what a proxy appends for the client
    203.0.113.``last``."""
    tail = f", for=203.0.113.{last}" if forwarded else f", 203.0.113.{last}"
    size = length - len(tail)
    hostile = char * size
    if char == '"' and size % 2:
        hostile = hostile[:-1] + ","
    return hostile + tail, "x" * size + tail


XFF, FWD = "HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED"
CAP = MAX_FORWARDED_LENGTH
CASES = [
    pytest.param(ATTACKER, XFF, 8000, ",", id="direct-xff-commas-8k"),
    pytest.param(ATTACKER, FWD, 8000, ",", id="direct-forwarded-commas-8k"),
    pytest.param(PROXY, XFF, 8000, ",", id="proxy-xff-commas-8k"),
    pytest.param(PROXY, XFF, CAP, ",", id="proxy-xff-commas-at-cap"),
    pytest.param(PROXY, FWD, 8000, ",", id="proxy-forwarded-commas-8k"),
    pytest.param(PROXY, FWD, CAP, ",", id="proxy-forwarded-commas-at-cap"),
    pytest.param(PROXY, FWD, CAP, '"', id="proxy-forwarded-quotes-at-cap"),
    pytest.param(PROXY, FWD, CAP, ";", id="proxy-forwarded-semicolons-at-cap"),
]


def work(middleware: IPDebugMiddleware, environ: dict[str, str]) -> tuple[int, int]:
    """(Python and C calls, peak bytes allocated) for one denied request."""
    calls = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        calls += 1

    gc.collect()
    tracemalloc.start()
    try:
        sys.setprofile(profile)
        try:
            status = call(middleware, **environ)
        finally:
            sys.setprofile(None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == "200 OK"
    return calls, peak


@pytest.mark.parametrize(("peer", "header", "length", "char"), CASES)
@pytest.mark.parametrize("window", ["open", "closed"])
def test_work_for_a_denied_client_does_not_depend_on_its_headers(
    make: t.Callable[..., IPDebugMiddleware],
    frozen_clock: None,
    peer: str,
    header: str,
    length: int,
    char: str,
    window: str,
) -> None:
    middleware = make(trusted_proxies=[PROXY])
    if window == "open":
        open_window(middleware)
    forwarded = header == "HTTP_FORWARDED"
    # Warm up: the gate, the peer's cached decision, each message logged once.
    for value in _shapes(length, forwarded, char, 10):
        call(middleware, REMOTE_ADDR=peer, **{header: value})
    # Twice each, interleaved (the first traced request pays for the
    # interpreter's own lazy allocations), each value new to the caches.
    for last in (20, 30):
        hostile, bland = _shapes(length, forwarded, char, last)
        assert len(hostile) == len(bland) == length
        hostile_work = work(middleware, {"REMOTE_ADDR": peer, header: hostile})
        bland_work = work(middleware, {"REMOTE_ADDR": peer, header: bland})
    assert hostile_work[0] == bland_work[0]
    # Allocations: nothing proportional to the header (an 8,000-way split
    # alone would take 64 KB).
    assert abs(hostile_work[1] - bland_work[1]) < 2048, (hostile_work, bland_work)
