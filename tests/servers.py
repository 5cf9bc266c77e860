"""Helpers for tests that start real servers on loopback: free ports, HTTP
from a chosen source address, gunicorn processes that are always stopped,
and the debugger as a browser drives it over HTTP (open a window and wait
for the servers to see it, read the page, enter the PIN, read the console).
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
import typing as t
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import ipdebug

from .conftest import OPERATOR, secret_and_frame

ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int,
    host: str = "127.0.0.1",
    timeout: float = 20.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode} before listening on {host}:{port}"
            )
        with (
            contextlib.suppress(OSError),
            socket.create_connection((host, port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a server started with ``start_new_session=True`` and its children."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def server_environ(
    tmp_path: Path, name: str, flag: str, env: dict[str, str] | None
) -> dict[str, str]:
    """The environment of a test server: this checkout on the path, its own
    home (gunicorn puts its control socket there), the flag, 127.0.0.1
    allowed, and ``env`` on top.
    """
    home = tmp_path / f"{name}-home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "IPDEBUG_FLAG": flag,
        "IPDEBUG_ALLOW": "127.0.0.1",
        **(env or {}),
    }


def spawn(
    command: list[str], *, environ: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start a server in its own session (so ``stop`` ends its children
    too), output to ``log``.
    """
    with log.open("wb") as log_file:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclasses.dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def without_date(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """Everything a client sees but the ``Date`` header (which differs
        between two servers by the clock alone).
        """
        return (
            self.status,
            [(k, v) for k, v in self.headers if k.lower() != "date"],
            self.body,
        )

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def request(
    port: int,
    path: str,
    *,
    source: str = "127.0.0.1",
    host: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One GET on a new connection from ``source`` (a loopback address)."""
    conn = http.client.HTTPConnection(
        host, port, timeout=timeout, source_address=(source, 0)
    )
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


def post(
    port: int,
    path: str,
    fields: dict[str, str],
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> Reply:
    """One form POST on a new connection from ``source``."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=30, source_address=(source, 0)
    )
    try:
        conn.request(
            "POST",
            path,
            body=urllib.parse.urlencode(fields),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                **(headers or {}),
            },
        )
        response = conn.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


def send_on(sock: socket.socket, path: str, headers: dict[str, str]) -> Reply:
    """Send a GET on an already connected socket (see ``spread``)."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = http.client.HTTPResponse(sock)
    response.begin()
    return Reply(response.status, response.getheaders(), response.read())


def spread(
    port: int,
    paths: list[str],
    headers: dict[str, str],
    *,
    source: str = "127.0.0.1",
) -> list[Reply]:
    """Send each request on its own connection from ``source``, opening them
    all first: a sync gunicorn worker that accepted a connection waits for
    its request, so the others accept the rest and the requests spread over
    workers.
    """
    socks = [
        socket.create_connection(
            ("127.0.0.1", port), timeout=30, source_address=(source, 0)
        )
        for _ in paths
    ]
    try:
        time.sleep(0.05)
        return [
            send_on(sock, path, headers)
            for sock, path in zip(socks, paths, strict=True)
        ]
    finally:
        for sock in socks:
            sock.close()


def accept_queue(port: int) -> int | None:
    """Connections waiting in the accept queue of the IPv4 listener on
    ``port`` (``/proc/net/tcp``: a listener's ``rx_queue``), or ``None``.
    """
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
            return int(fields[4].partition(":")[2], 16)
    return None


@contextlib.contextmanager
def connected_elsewhere(port: int, owner: int) -> Iterator[socket.socket]:
    """A connection that a worker other than ``owner`` accepted.

    Which worker accepts is the kernel's choice, and one idle worker may
    take every connection; so the owner is stopped (``SIGSTOP``) until the
    connection has left the listener's queue, which only another worker
    can have taken it from.
    """
    os.kill(owner, signal.SIGSTOP)
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            wait_until(lambda: accept_queue(port) == 0, timeout=30)
        except BaseException:
            sock.close()
            raise
    finally:
        os.kill(owner, signal.SIGCONT)
    try:
        yield sock
    finally:
        sock.close()


@dataclasses.dataclass
class Gunicorn:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    flag: str

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def get(
        self,
        path: str,
        *,
        source: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        """One GET on a new connection from ``source``."""
        return request(self.port, path, source=source, headers=headers, timeout=timeout)

    def worker_pids(self) -> set[int]:
        """Every worker ever booted (from the log)."""
        return {
            int(p)
            for p in re.findall(r"Booting worker with pid: (\d+)", self.log_text())
        }

    def live_workers(self) -> set[int]:
        """The workers running now (the master's children)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(p) for p in children.read_text().split()}


@contextlib.contextmanager
def gunicorn(
    tmp_path: Path,
    *args: str,
    app: str = "tests.apps.plain:app",
    ipdebug: bool = True,
    env: dict[str, str] | None = None,
    name: str = "gunicorn",
) -> Iterator[Gunicorn]:
    """A real gunicorn on a free loopback port, wrapped by ipdebug through
    ``-c python:ipdebug.gunicorn`` unless ``ipdebug`` is false.
    """
    port = free_port()
    flag = str(tmp_path / "state" / "flag.json")
    log = tmp_path / f"{name}.log"
    environ = server_environ(tmp_path, name, flag, env)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "3",
    ]
    if ipdebug:
        command += ["-c", "python:ipdebug.gunicorn"]
    process = spawn([*command, *args, app], environ=environ, log=log)
    try:
        wait_for_port(port, process=process)
        yield Gunicorn(port=port, process=process, log=log, flag=flag)
    finally:
        stop(process)


def wait_until(
    predicate: t.Callable[[], bool], timeout: float = 5.0, interval: float = 0.05
) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)
    return time.monotonic() - start


# The debugger over HTTP, as a browser drives it.

#: Seconds after which every process of a running server honours a flag
#: written now: each reads the flag at most once a second, on a request
#: (ipdebug.switch). Which process a request reaches is the kernel's choice,
#: so no reply tells that all of them have read it: waiting is the only way.
FLAG_POLL = 1.1


class Running(t.Protocol):
    """A running server: :class:`Gunicorn` or ``appservers.Served``."""

    flag: str

    def get(
        self,
        path: str,
        *,
        source: str = ...,
        headers: dict[str, str] | None = ...,
        timeout: float = ...,
    ) -> Reply: ...


def open_window(server: Running, *allow: str, **options: t.Any) -> ipdebug.Enabled:
    """Open a window on a running server's flag (``allow``: its own
    allowlist, default the operator) and wait until every process honours
    it. Where the servers start after the window, open it first instead:
    they see it at their first request.
    """
    opened = ipdebug.enable(
        "5m", allow=list(allow or [OPERATOR]), flag=server.flag, environ={}, **options
    )
    time.sleep(FLAG_POLL)
    return opened


def debugger_path(secret: str, **params: str) -> str:
    """A debugger command as Werkzeug's JavaScript sends it."""
    return "/?" + urllib.parse.urlencode({"__debugger__": "yes", "s": secret, **params})


def debugger_page(reply: Reply) -> tuple[str, str, int]:
    """(secret, frame id, owner pid) of a debugger page."""
    assert reply.status == 500 and "Werkzeug Debugger" in reply.text, reply.text[:300]
    secret, frame = secret_and_frame(reply.text)
    return secret, frame, int(secret.split("x")[0])


def frame_of(page: str, filename: str) -> str:
    """The id of the first frame on Werkzeug's debugger ``page`` whose code
    is in ``filename``: the view's frame among the framework's.
    """
    for match in re.finditer(
        r'<div class="frame" id="frame-(\d+)">(.*?)</div>', page, re.S
    ):
        if filename in match.group(2):
            return match.group(1)
    raise AssertionError(f"no frame of {filename} on the page")


#: The ``pinauth`` answer to the right PIN.
UNLOCKED = '{"auth": true, "exhausted": false}'


def pin_cookie(
    server: Running | int,
    secret: str,
    pin: str,
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """Enter the PIN on ``server`` (or a port on 127.0.0.1, such as a proxy's);
    return the ``Cookie`` header that unlocks the console.
    """
    path = debugger_path(secret, cmd="pinauth", pin=pin)
    if isinstance(server, int):
        reply = request(server, path, source=source, headers=headers)
    else:
        reply = server.get(path, source=source, headers=headers)
    assert reply.status == 200 and reply.text == UNLOCKED, reply.text
    # Every debugger answer is uncached, the PIN's above all.
    assert reply.header("Cache-Control") == "no-store"
    cookie = reply.header("Set-Cookie")
    assert cookie
    return {"Cookie": cookie.split(";")[0]}


def cookies_of(reply: Reply, jar: dict[str, str]) -> None:
    """Keep the cookies ``reply`` sets in ``jar``, as a browser would."""
    for name, value in reply.headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            jar[key] = rest.split(";")[0]


def cookie_header(jar: dict[str, str]) -> dict[str, str]:
    """The ``Cookie`` header that sends every cookie of ``jar``."""
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}


def console_text(reply: Reply) -> str:
    """The console's answer, as text."""
    assert reply.status == 200, reply.text
    return html.unescape(re.sub(r"<[^>]+>", "", reply.text))


def console_output(reply: Reply) -> str:
    """The last line the console printed."""
    return console_text(reply).strip().splitlines()[-1]


def native_result(reply: Reply) -> str:
    """What the native engine's console answered, as text."""
    assert reply.status == 200, reply.text
    found = re.search(r'<pre class="result">(.*?)</pre>', reply.text, re.S)
    assert found, reply.text
    return html.unescape(found.group(1))
