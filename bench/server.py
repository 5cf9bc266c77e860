"""Whole-server figures with real gunicorn on loopback: throughput with wrk,
worker memory under failing requests, and how fast a switch reaches every
worker.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ipdebug

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    flag: str
    log: Path

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()]


@contextlib.contextmanager
def gunicorn(
    app: str,
    *args: str,
    ipdebug_hooks: bool,
    allow: str = "127.0.0.1",
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """gunicorn on a free loopback port; always stopped."""
    state = tempfile.mkdtemp(prefix="ipdebug-bench-server-")
    port = free_port()
    flag = os.path.join(state, "flag", "flag.json")
    log = Path(state) / "gunicorn.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": state,
        "PYTHONPATH": str(ROOT),
        "IPDEBUG_FLAG": flag,
        "IPDEBUG_ALLOW": allow,
        **(extra_env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "2",
        *args,
    ]
    if ipdebug_hooks:
        command += ["-c", "python:ipdebug.gunicorn"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, app],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=0.2),
            ):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        time.sleep(0.3)  # let every worker boot
        yield Server(port, process, flag, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(state, ignore_errors=True)


def wrk(port: int, seconds: float, connections: int = 16) -> float:
    """Requests per second of ``GET /`` (wrk, one thread)."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"cannot read wrk output: {out}")
    return float(match.group(1))


@dataclass
class Throughput:
    bare: list[float]
    ipdebug: list[float]

    @property
    def ratios(self) -> list[float]:
        return [i / b for b, i in zip(self.bare, self.ipdebug, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def spread(self) -> float:
        """Half the range of the per-round ratios: the noise of this run."""
        return (max(self.ratios) - min(self.ratios)) / 2


def throughput(*, rounds: int, seconds: float) -> Throughput:
    """Bare app and ipdebug (flag off) under gunicorn, 2 sync workers, in
    alternating rounds so drift in the machine hits both alike.
    """
    result = Throughput([], [])
    with (
        gunicorn("bench.apps:server_app", "-w", "2", ipdebug_hooks=False) as bare,
        gunicorn("bench.apps:server_app", "-w", "2", ipdebug_hooks=True) as wrapped,
    ):
        wrk(bare.port, 1)
        wrk(wrapped.port, 1)  # warm up both
        for index in range(rounds):
            order = [(bare, result.bare), (wrapped, result.ipdebug)]
            for server, figures in order if index % 2 == 0 else reversed(order):
                figures.append(wrk(server.port, seconds))
    return result


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fail_many(port: int, count: int) -> None:
    for _ in range(count):
        try:
            urllib.request.urlopen(
                f"http://127.0.0.1:{port}/big-fail", timeout=30
            ).close()
        except urllib.error.HTTPError as exc:
            exc.read()
            exc.close()
            if exc.code != 500:
                raise


@dataclass
class Memory:
    requests: list[int]
    ipdebug_mib: list[float]
    werkzeug_mib: list[float]
    #: RSS before and after requests with large forwarding headers.
    headers_mib: tuple[float, float] = (0.0, 0.0)


def memory(*, total: int, steps: int = 4) -> Memory:
    """Worker RSS while a gated-in client triggers failing requests whose
    view holds a 1 MiB local: ipdebug (max_tracebacks 20) vs Werkzeug's
    ``DebuggedApplication`` (keeps every traceback).
    """
    marks = [total * i // steps for i in range(steps + 1)]
    out = Memory(marks, [], [])
    with gunicorn("bench.apps:server_app", "-w", "1", ipdebug_hooks=True) as wrapped:
        ipdebug.enable("1h", allow=["127.0.0.1"], flag=wrapped.flag, environ={})
        time.sleep(1.1)
        out.ipdebug_mib = _rss_series(wrapped, marks)
    with gunicorn("bench.apps:debugged", "-w", "1", ipdebug_hooks=False) as plain:
        out.werkzeug_mib = _rss_series(plain, marks)
    return out


def _rss_series(server: Server, marks: list[int]) -> list[float]:
    (pid,) = server.worker_pids()
    urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10).close()
    series = [rss_kib(pid) / 1024]
    for before, after in itertools.pairwise(marks):
        fail_many(server.port, after - before)
        series.append(rss_kib(pid) / 1024)
    return series


@dataclass
class CaptureMemory:
    requests: list[int]
    mib: list[float]
    #: RSS after the window ended (``ipdebug disable``).
    after_mib: float
    max_captured: int


def capture_memory(*, total: int, steps: int = 4) -> CaptureMemory:
    """Worker RSS while clients that are *not* gated in hit a view that
    fails holding a 1 MiB local, with a capturing window open (one sync
    worker, ``max_captured`` 50), then after ``ipdebug disable``.
    """
    marks = [total * i // steps for i in range(steps + 1)]
    # The window allows another address: every request here is a customer's.
    with gunicorn("bench.apps:server_app", "-w", "1", ipdebug_hooks=True) as wrapped:
        ipdebug.enable(
            "1h", allow=["127.0.0.2"], flag=wrapped.flag, environ={}, capture=True
        )
        time.sleep(1.1)
        series = _rss_series(wrapped, marks)
        (pid,) = wrapped.worker_pids()
        ipdebug.disable(wrapped.flag, environ={})
        time.sleep(1.5)  # the relay's thread notices within a second
        urllib.request.urlopen(f"http://127.0.0.1:{wrapped.port}/", timeout=10).close()
        time.sleep(0.5)
        after = rss_kib(pid) / 1024
    return CaptureMemory(marks, series, after, 50)


def header_memory(*, requests: int, lines: int = 40) -> tuple[float, float]:
    """Worker RSS (MiB) before and after ``requests`` requests straight to
    gunicorn, each with ``lines`` distinct 8 KB ``X-Forwarded-For`` lines
    (gunicorn joins them into one value), from a peer that is not a
    trusted proxy, while a window is open for someone else (issue 11,
    finding 2: the gate used to keep every value).
    """
    with gunicorn(
        "bench.apps:server_app",
        "-w",
        "1",
        ipdebug_hooks=True,
        allow="10.1.1.1",
        extra_env={"IPDEBUG_TRUSTED_PROXIES": "10.9.9.9"},
    ) as wrapped:
        ipdebug.enable("1h", allow=["10.1.1.1"], flag=wrapped.flag, environ={})
        time.sleep(1.1)
        (pid,) = wrapped.worker_pids()

        def get(i: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", wrapped.port, timeout=30)
            try:
                conn.putrequest("GET", "/")
                for line in range(lines):
                    conn.putheader("X-Forwarded-For", f"{i:06d}{line:03d}" + "1" * 8000)
                conn.endheaders()
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"unexpected {response.status}")
            finally:
                conn.close()

        get(-1)
        before = rss_kib(pid) / 1024
        for i in range(requests):
            get(i)
        return before, rss_kib(pid) / 1024


def probe(port: int) -> tuple[int, bool]:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/probe", timeout=10
    ) as response:
        pid, gated = response.read().decode().split()
    return int(pid), gated == "True"


def switch_latency(*, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds from ``enable``/``disable`` until every one of 4 workers has
    answered a request that sees it (max over workers, per repeat).
    """
    enables: list[float] = []
    disables: list[float] = []
    with gunicorn("bench.apps:server_app", "-w", "4", ipdebug_hooks=True) as server:
        workers = set(server.worker_pids())
        for _ in range(repeats):
            for action, want, out in (
                (ipdebug.enable, True, enables),
                (ipdebug.disable, False, disables),
            ):
                if action is ipdebug.enable:
                    ipdebug.enable(
                        "1h", allow=["127.0.0.1"], flag=server.flag, environ={}
                    )
                else:
                    ipdebug.disable(server.flag, environ={})
                start = time.monotonic()
                seen: dict[int, float] = {}
                while set(seen) != workers and time.monotonic() - start < 5:
                    pid, gated = _spread_probe(server.port)
                    for worker, state in zip(pid, gated, strict=True):
                        if state is want and worker not in seen:
                            seen[worker] = time.monotonic() - start
                out.append(max(seen.values()) if set(seen) == workers else float("inf"))
                time.sleep(0.3)
    return enables, disables


def _spread_probe(port: int) -> tuple[list[int], list[bool]]:
    """Four probes on connections opened first, so each sync worker takes one."""
    socks = [
        socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)
    ]
    pids: list[int] = []
    states: list[bool] = []
    try:
        for sock in socks:
            sock.sendall(
                b"GET /probe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
        for sock in socks:
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            pid, gated = data.split(b"\r\n\r\n", 1)[1].decode().split()
            pids.append(int(pid))
            states.append(gated == "True")
    finally:
        for sock in socks:
            sock.close()
    return pids, states


def available() -> dict[str, bool]:
    return {"wrk": shutil.which("wrk") is not None}
