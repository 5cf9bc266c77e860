"""Helpers for tests that start a server by command line (waitress, uWSGI,
uvicorn, gunicorn with uvicorn workers) on a free loopback port or a unix
socket, always stopped; and HTTP over a unix socket. gunicorn itself:
:mod:`tests.servers`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import socket
import subprocess
import sys
import time
import typing as t
from collections.abc import Iterator, Sequence
from pathlib import Path

import ipdebug

from .servers import (
    Reply,
    free_port,
    request,
    server_environ,
    spawn,
    stop,
    wait_for_port,
)

#: What a client saw: the response but its ``Date``, or the exception that
#: ended the exchange (uWSGI closes the connection when the app raises).
Outcome = tuple[int, list[tuple[str, str]], bytes] | str


@dataclasses.dataclass
class Served:
    process: subprocess.Popen[bytes]
    log: Path
    flag: str
    port: int | None  # a TCP port on 127.0.0.1, or
    unix: str | None  # a unix socket path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def audit(self, event: str) -> list[dict[str, t.Any]]:
        """The records of ``event`` in the trail beside the flag."""
        path = Path(self.flag).parent / "audit.log"
        if not path.exists():
            return []
        records = [json.loads(line) for line in path.read_text().splitlines()]
        return [r for r in records if r.get("event") == event]

    def get(
        self,
        path: str,
        *,
        source: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        """One GET on a new connection (from ``source`` over TCP)."""
        if self.unix is not None:
            return unix_request(self.unix, path, headers=headers, timeout=timeout)
        assert self.port is not None
        return request(self.port, path, source=source, headers=headers, timeout=timeout)

    def outcome(
        self,
        path: str,
        *,
        source: str = "127.0.0.1",
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        """What a client sees, comparable between two servers."""
        try:
            return self.get(path, source=source, headers=headers).without_date()
        except (http.client.HTTPException, OSError) as exc:
            return type(exc).__name__


@contextlib.contextmanager
def serve(
    tmp_path: Path,
    command: Sequence[str],
    *,
    name: str,
    unix: bool = False,
    env: dict[str, str] | None = None,
    shutdown: t.Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> Iterator[Served]:
    """Run ``command`` (with ``{bind}`` replaced by ``127.0.0.1:PORT`` or a
    unix socket path) in a new session, wait until it listens, and stop it
    (and its children) whatever happens: ``shutdown(process)`` first, if
    given, then SIGTERM to the session, then SIGKILL.
    """
    flag = flag_path(tmp_path)
    log = tmp_path / f"{name}.log"
    port = None if unix else free_port()
    # Short: a unix socket path is at most 107 bytes.
    path = str(tmp_path / f"{name}.sock") if unix else None
    bind = path if path is not None else f"127.0.0.1:{port}"
    process = spawn(
        [arg.replace("{bind}", bind) for arg in command],
        environ=server_environ(tmp_path, name, flag, env),
        log=log,
    )
    try:
        if path is not None:
            wait_for_unix(path, process)
        else:
            assert port is not None
            wait_for_port(port, process=process)
        yield Served(process=process, log=log, flag=flag, port=port, unix=path)
    finally:
        try:
            if shutdown is not None:
                shutdown(process)
        finally:
            stop(process)


def wait_for_unix(
    path: str, process: subprocess.Popen[bytes], timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock,
        ):
            sock.connect(path)
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {path} after {timeout}s")


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a unix socket; the ``Host`` is ``127.0.0.1``."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        super().__init__("127.0.0.1", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def unix_request(
    path: str, url: str, *, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> Reply:
    conn = UnixHTTPConnection(path, timeout)
    try:
        conn.request("GET", url, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


def flag_path(tmp_path: Path) -> str:
    """The flag of every server :func:`serve` starts in ``tmp_path``."""
    return str(tmp_path / "state" / "flag.json")


def open_window_first(tmp_path: Path, *allow: str) -> ipdebug.Enabled:
    """Open a window before the servers start: every process sees it at its
    first request, with no wait.
    """
    return ipdebug.enable("5m", allow=list(allow), flag=flag_path(tmp_path), environ={})


def is_debugger(reply: Reply) -> bool:
    return reply.status == 500 and "Werkzeug Debugger" in reply.text


def remote_addr(
    server: Served, source: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> object:
    """What the server put in ``REMOTE_ADDR`` for such a request."""
    reply = server.get("/environ", source=source, headers=headers)
    assert reply.status == 200, reply.text
    return json.loads(reply.body)["REMOTE_ADDR"]


@contextlib.contextmanager
def uvicorn(
    tmp_path: Path,
    app: str,
    *args: str,
    workers: int = 4,
    name: str = "uvicorn",
    env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """``uvicorn --workers N`` on a free loopback port, always stopped."""
    port = free_port()
    flag = flag_path(tmp_path)
    log = tmp_path / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--timeout-graceful-shutdown",
        "3",
        *args,
        app,
    ]
    process = spawn(command, environ=server_environ(tmp_path, name, flag, env), log=log)
    try:
        wait_for_port(port, process=process, timeout=60)
        yield Served(process=process, log=log, flag=flag, port=port, unix=None)
    finally:
        stop(process)


@contextlib.contextmanager
def gunicorn_uvicorn(
    tmp_path: Path,
    app: str,
    *,
    name: str = "gunicorn",
    ipdebug: bool = True,
    env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """gunicorn with 4 uvicorn workers, wrapped by ``-c python:ipdebug.gunicorn``."""
    port = free_port()
    flag = flag_path(tmp_path)
    log = tmp_path / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "4",
        "-k",
        "uvicorn_worker.UvicornWorker",
        "--graceful-timeout",
        "3",
    ]
    if ipdebug:
        command += ["-c", "python:ipdebug.gunicorn"]
    process = spawn(
        [*command, app], environ=server_environ(tmp_path, name, flag, env), log=log
    )
    try:
        wait_for_port(port, process=process, timeout=60)
        yield Served(process=process, log=log, flag=flag, port=port, unix=None)
    finally:
        stop(process)
