"""ipdebug under real uWSGI (``--http-socket``): one console across
pre-forked processes, the client address on TCP and on a unix socket.

uWSGI sets ``REMOTE_ADDR`` to the TCP peer, and to ``"0.0.0.0"`` for a unix
``--http-socket`` (no address: denied). It reads no forwarding header.

The console needs ipdebug's relay, which runs a thread in each process that
sees an open window: uWSGI must run Python threads. uWSGI 2.0.31 (PyPI)
always does (``--enable-threads`` is a stub there); older builds, such as
Debian 12's 2.0.21, do only with ``--enable-threads``.

The uWSGI used is the one ``pip install uwsgi`` puts beside this Python
(``.venv/bin/uwsgi``), else Debian's ``uwsgi-core`` with the
``uwsgi-plugin-python3`` of the same Python minor version, loading this
virtualenv (``--virtualenv``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .appservers import Served, is_debugger, open_window_first, remote_addr, serve
from .servers import (
    Reply,
    console_output,
    debugger_page,
    debugger_path,
    open_window,
    pin_cookie,
)

pytestmark = pytest.mark.server

OPERATOR = "127.0.0.1"
STRANGER = "127.0.0.2"
CLIENT = "127.0.0.3"

WRAPPED = "tests.apps.wrapped:application"
BARE = "tests.apps.wrapped:app"

#: ``pip install uwsgi`` into this virtualenv.
PYPI_UWSGI = Path(sys.executable).parent / "uwsgi"
#: Debian's ``uwsgi-core`` and ``uwsgi-plugin-python3``.
DEBIAN_UWSGI = Path("/usr/bin/uwsgi-core")
DEBIAN_PLUGIN = f"python3{sys.version_info.minor}"
DEBIAN_PLUGIN_FILE = Path(f"/usr/lib/uwsgi/plugins/{DEBIAN_PLUGIN}_plugin.so")

INSTALL = (
    "uWSGI is not installed: `.venv/bin/python -m pip install uwsgi` (compiles "
    "it; needs gcc and the Python headers), or `apt-get install uwsgi-core "
    f"uwsgi-plugin-python3` on a Debian whose python3 is 3.{sys.version_info.minor}"
)


def pypi_build() -> list[str] | None:
    return [str(PYPI_UWSGI)] if PYPI_UWSGI.is_file() else None


def debian_build() -> list[str] | None:
    if not (DEBIAN_UWSGI.is_file() and DEBIAN_PLUGIN_FILE.is_file()):
        return None
    # The plugin embeds Debian's python3.X; it runs this virtualenv's
    # packages, which works only for the same minor version.
    return [str(DEBIAN_UWSGI), "--plugin", DEBIAN_PLUGIN, "--virtualenv", sys.prefix]


def build() -> list[str]:
    """The uWSGI command prefix; the test fails (it does not skip) without."""
    command = pypi_build() or debian_build()
    if command is None:
        pytest.fail(INSTALL)
    return command


#: One master, four workers: the way uWSGI is deployed.
PROCESSES = ["--master", "--processes", "4", "--enable-threads"]

MODES = [
    # The app is imported in the master, then the workers are forked.
    pytest.param([], id="preforking"),
    # Each worker imports the app after the fork.
    pytest.param(["--lazy-apps"], id="lazy-apps"),
]

DENIED_PATHS = [
    "/",
    "/fail",
    "/?__debugger__=yes&cmd=resource&f=debugger.js",
    "/console",
    "/x?__debugger__=yes&cmd=1%2B1&frm=1&s=1x2",
]


def stop_master(process: subprocess.Popen[bytes]) -> None:
    """Stop uWSGI the way it expects: SIGINT to the master, which stops the
    workers. (SIGTERM to every process at once, as ``servers.stop`` sends,
    leaves each worker that runs a Python thread waiting until uWSGI's
    60 s mercy ends: that is uWSGI's behaviour, with or without ipdebug.)
    Then SIGKILL whatever is left of the session.
    """
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def uwsgi(
    tmp_path: Path,
    *args: str,
    app: str = WRAPPED,
    name: str = "uwsgi",
    unix: bool = False,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    protocol: str = "--http-socket",
) -> contextlib.AbstractContextManager[Served]:
    return serve(
        tmp_path,
        [
            *(command or build()),
            "--strict",
            "--need-app",
            "--die-on-term",
            protocol,
            "{bind}",
            "--module",
            app,
            *args,
        ],
        name=name,
        unix=unix,
        env=env,
        shutdown=stop_master,
    )


def worker_pids(server: Served) -> set[int]:
    return {
        int(pid)
        for pid in re.findall(
            r"spawned uWSGI worker \d+ \(pid: (\d+)", server.log_text()
        )
    }


def relay_sockets(server: Served) -> list[Path]:
    return list((Path(server.flag).parent / "relay").glob("*.sock"))


def begin(server: Served) -> socket.socket:
    """A connection with the first byte of a request sent. uWSGI accepts a
    connection only once data arrives (``TCP_DEFER_ACCEPT``, unless
    ``--no-defer-accept``), so ``servers.spread`` does not spread over its
    workers; the worker that accepted this one waits, in C, for the rest of
    the request: it is taken until :func:`finish`.
    """
    assert server.port is not None
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"G")
    return sock


def finish(sock: socket.socket, path: str, headers: dict[str, str]) -> Reply:
    lines = [f"ET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        response.close()


def spread(server: Served, paths: list[str], headers: dict[str, str]) -> list[Reply]:
    """One request per worker at once (as many paths as workers)."""
    socks = [begin(server) for _ in paths]
    try:
        time.sleep(0.1)  # each worker accepted one and waits for the rest
        return [finish(s, p, headers) for s, p in zip(socks, paths, strict=True)]
    finally:
        for sock in socks:
            sock.close()


def answered_by(reply: Reply) -> int:
    return int(json.loads(reply.body)["pid"])


def on_another_process(server: Served, owner: int, path: str, timeout: float) -> Reply:
    """Send ``path`` to a worker other than ``owner`` (of two) while the
    owner sits in uWSGI's C code: waiting for a connection, or for the rest
    of a request.
    """
    taken = begin(server)
    try:
        time.sleep(0.1)
        other = answered_by(server.get("/environ"))  # the worker not taken
        if other == owner:
            # The owner is back in accept; `taken` is the other worker's.
            taken.settimeout(timeout)
            return finish(taken, path, {})
        # The owner waits for the rest of `taken`; the other one is free.
        return server.get(path, timeout=timeout)
    finally:
        taken.close()


def uwsgi_request(
    server: Served, remote_addr: str, path: str, headers: dict[str, str] | None = None
) -> Reply:
    """One request in the uwsgi protocol, with the variables nginx's
    ``include uwsgi_params;`` sends (``REMOTE_ADDR`` is nginx's peer) and
    the client's headers as ``HTTP_*`` variables, as nginx passes them.
    """
    assert server.unix is not None
    path_info, _, query = path.partition("?")
    variables = {
        "QUERY_STRING": query,
        "REQUEST_METHOD": "GET",
        "CONTENT_TYPE": "",
        "CONTENT_LENGTH": "",
        "REQUEST_URI": path,
        "PATH_INFO": path_info,
        "DOCUMENT_ROOT": "/usr/share/nginx/html",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_SCHEME": "http",
        "REMOTE_ADDR": remote_addr,
        "REMOTE_PORT": "40000",
        "SERVER_PORT": "80",
        "SERVER_NAME": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        **{
            f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()
        },
    }
    body = b"".join(
        struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
        for k, v in ((k.encode(), v.encode()) for k, v in variables.items())
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(server.unix)
        sock.sendall(struct.pack("<BHB", 0, len(body), 0) + body)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            return Reply(response.status, response.getheaders(), response.read())
        finally:
            response.close()


@pytest.mark.parametrize("mode", MODES)
def test_console_works_whichever_process_accepts(
    tmp_path: Path, mode: list[str]
) -> None:
    with uwsgi(tmp_path, *PROCESSES, *mode) as server:
        opened = open_window(server, OPERATOR)
        secret, frame, owner = debugger_page(server.get("/fail"))
        workers = worker_pids(server)
        assert len(workers) == 4 and owner in workers
        assert owner != server.process.pid  # the master serves no request
        cookie = pin_cookie(server, secret, opened.pin)
        first = server.get(
            debugger_path(secret, cmd="x = 6*7", frm=frame), headers=cookie
        )
        assert first.status == 200
        expected = {
            "x": "42",
            "worker_pid": str(owner),
            "os.getpid()": str(owner),
            "x + 1": "43",
        }
        commands = list(expected) * 4
        for batch in range(0, len(commands), 4):
            chunk = commands[batch : batch + 4]
            replies = spread(
                server,
                [debugger_path(secret, cmd=c, frm=frame) for c in chunk],
                cookie,
            )
            for command, reply in zip(chunk, replies, strict=True):
                assert console_output(reply) == expected[command], command
                assert reply.header("Cache-Control") == "no-store"
        # Other processes forwarded; every command ran once, in the owner.
        forwarders = {r["pid"] for r in server.audit("debugger.relayed")}
        assert forwarders, "no request reached another process: the test proved nothing"
        # Each batch reached all four workers: three forwarded.
        assert forwarders == workers - {owner}
        ran = server.audit("console.command")
        assert len(ran) == 1 + len(commands)
        assert {r["pid"] for r in ran} == {owner}


def test_denied_clients_get_the_same_bytes_as_without_ipdebug(tmp_path: Path) -> None:
    # Open before the start: in the master, which imports the app, too.
    open_window_first(tmp_path, OPERATOR)
    with (
        uwsgi(tmp_path, *PROCESSES) as server,
        uwsgi(tmp_path, *PROCESSES, app=BARE, name="bare") as bare,
    ):
        assert remote_addr(server, STRANGER) == STRANGER
        for path in DENIED_PATHS * 3:
            got = server.outcome(path, source=STRANGER)
            assert got == bare.outcome(path, source=STRANGER), path
        # uWSGI answers an exception by closing the connection.
        assert server.outcome("/fail", source=STRANGER) == "RemoteDisconnected"
        # uWSGI reads no forwarding header: a forged one changes nothing.
        forged = {"X-Forwarded-For": OPERATOR, "Forwarded": f"for={OPERATOR}"}
        assert remote_addr(server, STRANGER, forged) == STRANGER
        for path in DENIED_PATHS:
            got = server.outcome(path, source=STRANGER, headers=forged)
            assert got == bare.outcome(path, source=STRANGER, headers=forged), path
        # ... while the operator does get the debugger from the same server.
        assert remote_addr(server) == OPERATOR
        assert is_debugger(server.get("/fail"))
        # Every process that saw the window listens for relayed requests ...
        assert relay_sockets(server)
        # ... and removes its socket when it exits, if uWSGI runs the atexit
        # hooks: it skips them in a worker it still counts busy (observed
        # when the stop follows a request within milliseconds).
        time.sleep(1.0)
    assert not relay_sockets(server)


def test_http_socket_behind_a_proxy_ipdebug_trusted_proxies(tmp_path: Path) -> None:
    """uWSGI passes ``X-Forwarded-For`` on untouched: behind a proxy on
    loopback, ipdebug's ``trusted_proxies`` walks it, as under gunicorn.
    """
    open_window_first(tmp_path, CLIENT)
    env = {"IPDEBUG_ALLOW": "127.0.0.0/8", "IPDEBUG_TRUSTED_PROXIES": OPERATOR}
    named = {"X-Forwarded-For": f"203.0.113.9, {CLIENT}"}
    with uwsgi(tmp_path, "--master", "--processes", "2", env=env) as server:
        assert remote_addr(server, OPERATOR, named) == OPERATOR
        assert is_debugger(server.get("/fail", headers=named))
        for source, headers in ((STRANGER, named), (OPERATOR, {})):
            assert server.outcome("/fail", source=source, headers=headers) == (
                "RemoteDisconnected"
            )


def test_a_unix_http_socket_is_0000_and_denied(tmp_path: Path) -> None:
    allow = {"IPDEBUG_ALLOW": "127.0.0.0/8,::1"}
    # Even a window for every loopback address does not let it in.
    open_window_first(tmp_path, OPERATOR, "::1", CLIENT)
    with (
        uwsgi(tmp_path, *PROCESSES, unix=True, env=allow) as server,
        # Listing 0.0.0.0 as a proxy does not make a header believed.
        uwsgi(
            tmp_path,
            *PROCESSES,
            unix=True,
            env={**allow, "IPDEBUG_TRUSTED_PROXIES": "0.0.0.0"},
            name="trusting",
        ) as trusting,
        uwsgi(tmp_path, *PROCESSES, app=BARE, name="bare", unix=True) as bare,
    ):
        for wrapped, headers in (
            (server, {}),
            (server, {"X-Forwarded-For": CLIENT}),
            (trusting, {"X-Forwarded-For": CLIENT}),
        ):
            assert remote_addr(wrapped, headers=headers) == "0.0.0.0"
            for path in DENIED_PATHS * 2:
                got = wrapped.outcome(path, headers=headers)
                assert got == bare.outcome(path, headers=headers), path


def test_the_uwsgi_protocol_takes_the_client_from_the_frontend(tmp_path: Path) -> None:
    """nginx ``uwsgi_pass unix:...; include uwsgi_params;`` in front of
    ``--socket``: ``REMOTE_ADDR`` is the client nginx saw, so ipdebug needs
    no ``trusted_proxies``, and a client's own ``X-Forwarded-For`` is not
    read. (Whoever can connect to that socket chooses ``REMOTE_ADDR``: keep
    it private to nginx.)
    """
    open_window_first(tmp_path, CLIENT)
    env = {"IPDEBUG_ALLOW": "127.0.0.0/8"}
    with uwsgi(tmp_path, *PROCESSES, unix=True, protocol="--socket", env=env) as server:
        seen = json.loads(uwsgi_request(server, CLIENT, "/environ").body)
        assert seen["REMOTE_ADDR"] == CLIENT
        assert is_debugger(uwsgi_request(server, CLIENT, "/fail"))
        for headers in ({}, {"X-Forwarded-For": CLIENT}):
            with pytest.raises(http.client.RemoteDisconnected):  # uWSGI's answer
                uwsgi_request(server, "127.0.0.4", "/fail", headers)
            reply = uwsgi_request(server, "127.0.0.4", "/console", headers)
            assert reply.text == "hello /console?"


BUILDS = [
    pytest.param(pypi_build, id="pypi-uwsgi-threads-always-on"),
    pytest.param(debian_build, id="debian-uwsgi-threads-off"),
]


@pytest.mark.parametrize("make_command", BUILDS)
def test_without_enable_threads(
    tmp_path: Path, make_command: Callable[[], list[str] | None]
) -> None:
    """Without ``--enable-threads`` a console request that reaches another
    process is answered by the owner, or refused at once with a reason that
    names the fix; it never hangs.
    """
    command = make_command()
    if command is None:
        pytest.skip("this uWSGI build is not installed")
    opened = open_window_first(tmp_path, OPERATOR)
    with uwsgi(tmp_path, "--master", "--processes", "2", command=command) as server:
        secret, _, owner = debugger_page(server.get("/fail"))
        threads = "python threads support enabled" in server.log_text()
        path = debugger_path(secret, cmd="pinauth", pin=opened.pin)
        # A clear answer comes at once.
        reply = on_another_process(server, owner, path, timeout=2.0)
        if threads:
            assert reply.text == '{"auth": true, "exhausted": false}'
            assert server.audit("debugger.relayed")
        else:
            assert reply.status >= 400 and "enable-threads" in reply.text, reply.text
