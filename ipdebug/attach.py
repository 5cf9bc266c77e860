"""External debuggers for one address: pdb over a unix socket, and debugpy.

Flask's documentation suggests starting an *external* debugger only when the
request comes from your address. ``ipdebug enable --attach pdb`` does that:
the next unhandled exception of a gated-in request opens a post-mortem pdb
session on a unix socket (mode 0600, in a private 0700 directory beside the
flag) and waits, at most ``wait`` seconds, for ``ipdebug attach`` to connect
the operator's terminal (over SSH: no browser, no open port). When the
operator continues (``c``) or quits, or nobody came in time, the request
goes on to the browser's debugger page. Every command typed is audited.

``--attach debugpy`` starts debugpy on 127.0.0.1 (an ephemeral port, written
beside the flag for ``ipdebug attach`` to show) when a gated-in request
arrives, for an IDE that the operator tunnels in with SSH; a gated-in request
with ``X-IPDebug-Break: 1`` waits (bounded) for the IDE and stops at a
breakpoint just before the app handles it.

**Security:** only requests that passed the gate can start a debugger. The
pdb socket is reachable only by the app's user, and both ends check the
other: the session accepts only a terminal of this user or root
(``SO_PEERCRED``, refusals audited as ``attach.refused``), and ``ipdebug
attach`` connects only to a socket in a private directory (mode 0700, this
user's, not a symbolic link) served by this user or root, so a local user
who planted ``attach/`` sees nothing the operator types and cannot write to
the operator's terminal. debugpy's port has no
authentication: **any local user can attach while it listens**, and debugpy
cannot stop listening; ipdebug therefore starts it only where it can recycle
the worker when the window ends (gunicorn), and refuses otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import pdb
import socket
import sys
import threading
import time
import typing as t
from collections.abc import Callable

from .audit import Auditor, logger
from .private import (
    NotPrivate,
    check_directory,
    connect,
    listen,
    peer_problem,
    private_directory,
)

#: An attached pdb session that sees no input for this long ends.
IDLE_TIMEOUT = 600.0
#: The header that asks debugpy to stop before the app handles a request.
BREAK_HEADER = "HTTP_X_IPDEBUG_BREAK"

_counter = iter(range(1, 1 << 62))


class _AuditedInput:
    """pdb's input: each line the operator sends is audited before pdb
    sees it.
    """

    def __init__(self, stream: t.TextIO, audit: Auditor, client: str) -> None:
        self._stream = stream
        self._audit = audit
        self._client = client

    def readline(self) -> str:
        line = self._stream.readline()
        self._audit("attach.command", self._client, source=line.rstrip("\n"))
        return line


def post_mortem(
    error: BaseException,
    *,
    directory: str,
    wait: float,
    audit: Auditor,
    client: str,
) -> bool:
    """Offer a post-mortem pdb session on ``error``'s traceback over a unix
    socket in ``directory``; return whether an operator attached.
    """
    listener, path = listen(
        directory, f"{os.getpid()}-{next(_counter)}.sock", backlog=1
    )
    try:
        audit(
            "attach.waiting",
            client,
            debugger="pdb",
            socket=os.path.basename(path),
            wait=wait,
        )
        conn = _accept_own(listener, time.monotonic() + wait, audit, client)
        if conn is None:
            audit("attach.timeout", client, debugger="pdb")
            return False
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
    with conn:
        conn.settimeout(IDLE_TIMEOUT)
        stream = conn.makefile(
            "rw", buffering=1, encoding="utf-8", errors="replace", newline="\n"
        )
        audit("attach.connected", client, debugger="pdb")
        try:
            stream.write(
                f"ipdebug: post-mortem of {type(error).__name__}: {error}\n"
                "(c or q lets the request go on to the browser's debugger page)\n"
            )
            # No .pdbrc from the server's directories; no SIGINT handler
            # (only the main thread may install one).
            debugger = pdb.Pdb(
                stdin=_AuditedInput(stream, audit, client),  # type: ignore[arg-type]
                stdout=stream,
                nosigint=True,
                readrc=False,
            )
            debugger.reset()
            debugger.interaction(None, error.__traceback__)
        except (OSError, EOFError, ValueError):
            pass  # the operator went away; the request goes on
        finally:
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        audit("attach.ended", client, debugger="pdb")
    return True


def _accept_own(
    listener: socket.socket, deadline: float, audit: Auditor, client: str
) -> socket.socket | None:
    """The first connection from a process of this user (or root) before
    ``deadline``; others are audited and closed unread.
    """
    while (left := deadline - time.monotonic()) > 0:
        listener.settimeout(left)
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            return None
        problem = peer_problem(conn)
        if problem is None:
            return conn
        conn.close()
        audit("attach.refused", client, debugger="pdb", reason=f"the peer {problem}")
    return None


class Debugpy:
    """debugpy for this process, started on the first gated-in request of a
    window that asks for it.

    :param directory: where the listening port is written for ``ipdebug
        attach``.
    :param can_recycle: whether the server can replace this process when the
        window ends (debugpy cannot stop listening).
    """

    def __init__(self, directory: str, can_recycle: Callable[[], bool]) -> None:
        self.directory = directory
        self._can_recycle = can_recycle
        self._lock = threading.Lock()
        self.port: int | None = None
        self._pid = os.getpid()

    @property
    def started(self) -> bool:
        return self.port is not None and self._pid == os.getpid()

    def ensure(self, audit: Auditor, client: str) -> int | None:
        """Listen (once per process); ``None`` when debugpy is unavailable
        or this server cannot recycle the process afterwards.
        """
        if self.started:
            return self.port
        with self._lock:
            if self.started:
                return self.port
            if not self._can_recycle():
                logger.warning(
                    "ipdebug refused to start debugpy: it cannot stop listening, and this "
                    "server gives ipdebug no way to replace the process when the window "
                    "ends (use gunicorn, or --attach pdb)"
                )
                return None
            try:
                import debugpy
            except ImportError:
                logger.warning(
                    "ipdebug cannot start debugpy: pip install 'ipdebug[debugpy]'"
                )
                return None
            _, port = debugpy.listen(("127.0.0.1", 0))
            self.port, self._pid = int(port), os.getpid()
            with open(self._port_file(), "w") as f:  # 0700 directory
                json.dump({"pid": self._pid, "host": "127.0.0.1", "port": self.port}, f)
        audit(
            "attach.listening",
            client,
            debugger="debugpy",
            address=f"127.0.0.1:{self.port}",
        )
        return self.port

    def break_if_asked(
        self, environ: t.Mapping[str, object], wait: float, audit: Auditor, client: str
    ) -> None:
        """With ``X-IPDebug-Break: 1``, wait for the IDE (bounded) and stop."""
        if environ.get(BREAK_HEADER) != "1" or not self.started:
            return
        import debugpy

        deadline = time.monotonic() + wait
        while not debugpy.is_client_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        if debugpy.is_client_connected():
            audit(
                "attach.break",
                client,
                debugger="debugpy",
                path=environ.get("PATH_INFO", ""),
            )
            debugpy.breakpoint()  # the IDE stops here; step into the app
        else:
            audit("attach.timeout", client, debugger="debugpy")

    def _port_file(self) -> str:
        return os.path.join(private_directory(self.directory), f"{os.getpid()}.debugpy")

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._port_file())


def sessions(directory: str) -> list[str]:
    """Waiting pdb sockets and debugpy port files, newest first.

    :raises NotPrivate: when ``directory`` is another user's, open to
        others or a symbolic link (whatever is in it could be planted).
    """
    try:
        check_directory(directory)
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    paths = [
        os.path.join(directory, n) for n in names if n.endswith((".sock", ".debugpy"))
    ]
    return sorted(paths, key=lambda p: os.lstat(p).st_mtime, reverse=True)


def attach_terminal(
    directory: str,
    *,
    wait: float,
    stdin: t.TextIO = sys.stdin,
    stdout: t.TextIO = sys.stdout,
) -> int:
    """``ipdebug attach``: wait for a pdb session and bridge this terminal
    to it; for debugpy, print where it listens. Returns an exit code.

    **Security:** a directory or a session another user controls is
    refused (one line naming it and the fix, exit code 1) before anything
    is read from it or sent to it.
    """
    try:
        return _attach(directory, wait=wait, stdin=stdin, stdout=stdout)
    except NotPrivate as exc:
        print(
            f"ipdebug: refused to attach: {exc}; remove {directory} (rm -r) and keep "
            "the flag in a private directory (the default ~/.local/state/ipdebug)",
            file=sys.stderr,
        )
        return 1


def _attach(directory: str, *, wait: float, stdin: t.TextIO, stdout: t.TextIO) -> int:
    deadline = time.monotonic() + wait
    while True:
        found = sessions(directory)
        if found:
            break
        if time.monotonic() >= deadline:
            print(
                f"ipdebug: no debugger waiting in {directory} after {wait:g}s",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.1)
    target = found[0]
    if target.endswith(".debugpy"):
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd) as f:
            info = json.load(f)
        print(
            f"debugpy listens on 127.0.0.1:{info['port']} in pid {info['pid']}.\n"
            f"From your machine: ssh -L 5678:127.0.0.1:{info['port']} <this server>, then attach "
            "your IDE to localhost:5678.",
            file=stdout,
        )
        return 0
    try:
        sock = connect(directory, os.path.basename(target), timeout=5.0)
    except (FileNotFoundError, ConnectionRefusedError):
        print(
            f"ipdebug: the session {target} ended before this terminal attached; "
            "run ipdebug attach again",
            file=sys.stderr,
        )
        return 1
    with sock:
        sock.settimeout(None)
        print(
            f"ipdebug: attached to {os.path.basename(target)} (c continues the request, q quits)",
            file=stdout,
            flush=True,
        )
        done = threading.Event()

        def pump_out() -> None:
            while chunk := sock.recv(4096):
                stdout.write(chunk.decode("utf-8", "replace"))
                stdout.flush()
            done.set()

        threading.Thread(target=pump_out, daemon=True).start()
        while not done.is_set():
            line = stdin.readline()
            if not line:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)
                break
            with contextlib.suppress(OSError):
                sock.sendall(line.encode())
        done.wait(5)
    return 0
