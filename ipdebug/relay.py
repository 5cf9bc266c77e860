"""The relay: console requests reach the process that holds the traceback.

Under a pre-forking server (gunicorn, uWSGI) the debugger page is rendered
by one worker, and the console requests that follow land on any worker. The
debugger secret names its owner (``<pid>x<random>``). While a window is open,
each process that served the debugger listens on its own unix socket,
``<pid>.sock`` (mode 0600) in a private directory (mode 0700) beside the
flag; a process that receives a debugger request for another process's
secret forwards it over that socket, and the owner checks the window, the
gate and the full secret, and answers.

**Security:** requests are never forwarded over TCP (any local user could
connect to a loopback port). Only processes of the same user can open the
socket; the owner also checks the peer's uid with ``SO_PEERCRED`` and gates
the forwarded request again before answering. The socket is closed and
removed when the window ends (a thread checks every second) and at process
exit.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import stat
import struct
import threading
import time
import typing as t
import weakref

from .audit import logger
from .private import listen

#: Longest wait for the owner to answer (a console command may be slow).
RELAY_TIMEOUT = 30.0
#: Connections handled at once by one owner.
MAX_HANDLERS = 8

_MAX_REQUEST = 1 << 20
_MAX_RESPONSE = 64 << 20
_LEN = struct.Struct("!I")

#: The environ keys a forwarded request carries: what the owner needs to
#: gate it again and to answer it, nothing else.
FORWARDED_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "HTTP_HOST",
    "HTTP_COOKIE",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_FORWARDED",
    "wsgi.url_scheme",
)

#: The key of a relay message that is not a forwarded request; its value
#: names what is asked. ``"captures"``: the process's captured errors (see
#: :func:`ask_all`). Forwarded requests never carry it (only
#: :data:`FORWARDED_KEYS` are forwarded).
MESSAGE_KEY = "ipdebug.relay"
#: Longest wait for every process to answer :func:`ask_all`.
ASK_ALL_TIMEOUT = 2.0

Answer = tuple[str, list[tuple[str, str]], bytes]
#: ``handler(environ) -> (status, headers, body)``, run by the owner.
Handler = t.Callable[[dict[str, t.Any]], Answer]


class OwnerGone(Exception):
    """The process named by the secret no longer listens (it exited)."""


def owner_pid(secret: str) -> int | None:
    """The pid embedded in a debugger secret (``<pid>x<random>~<instance>``),
    or ``None``.
    """
    pid, sep, _ = secret.partition("x")
    if not sep or not pid.isdigit() or not pid.isascii() or len(pid) > 10:
        return None
    return int(pid)


class Relay:
    """One process's end of the relay.

    :param directory: the private socket directory (created 0700).
    :param handler: answers a forwarded request in this process.
    :param still_open: whether the window is still open (polled every
        second by the listener, which stops itself when it is not).
    """

    def __init__(
        self, directory: str, handler: Handler, still_open: t.Callable[[], bool]
    ) -> None:
        self.directory = directory
        self._handler = handler
        self._still_open = still_open
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._handlers = threading.BoundedSemaphore(MAX_HANDLERS)
        self.problem: str | None = None
        _LIVE.add(self)

    def path_for(self, pid: int) -> str:
        return os.path.join(self.directory, f"{pid}.sock")

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._pid == os.getpid()

    # The owner's side

    def start(self) -> None:
        """Listen, if not already; errors are logged and leave the relay
        off (the console then works only on the process that rendered the
        page).
        """
        with self._lock:
            if self._pid != os.getpid():
                # Inherited across a fork: the parent's socket is not ours.
                self._listener, self._thread, self._pid = None, None, os.getpid()
            if self._listener is not None:
                return
            try:
                self._listener = self._bind()
            except OSError as exc:
                self._report(
                    f"ipdebug cannot listen for relayed console requests in {self.directory}: {exc}"
                )
                return
            self._thread = threading.Thread(
                target=self._serve,
                args=(self._listener,),
                name="ipdebug-relay",
                daemon=True,
            )
            self._thread.start()

    def _bind(self) -> socket.socket:
        sock, _ = listen(self.directory, f"{os.getpid()}.sock", backlog=16)
        sock.settimeout(1.0)
        return sock

    def _serve(self, listener: socket.socket) -> None:
        try:
            while self._listener is listener:
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    if not self._still_open():
                        break
                    continue
                except OSError:
                    break
                if not self._handlers.acquire(blocking=False):
                    _reply_safely(
                        conn,
                        (
                            "503 Service Unavailable",
                            [("Content-Type", "text/plain")],
                            b"ipdebug: the worker is busy; retry\n",
                        ),
                    )
                    continue
                threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
        finally:
            self.stop(listener)

    def _handle(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(RELAY_TIMEOUT)
                if not _same_user(conn):
                    return
                environ = json.loads(_recv_frame(conn, _MAX_REQUEST))
                if not isinstance(environ, dict):
                    return
                _send_answer(conn, self._handler(environ))
        except Exception:
            logger.exception("ipdebug failed to answer a relayed console request")
        finally:
            self._handlers.release()

    def stop(self, listener: socket.socket | None = None) -> None:
        """Stop listening and remove the socket (idempotent)."""
        with self._lock:
            if self._pid != os.getpid() or self._listener is None:
                return
            if listener is not None and listener is not self._listener:
                return
            sock, self._listener = self._listener, None
            with contextlib.suppress(OSError):
                sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path_for(self._pid))

    # The forwarder's side

    def forward(self, pid: int, environ: t.Mapping[str, t.Any]) -> Answer:
        """Send a request to process ``pid`` and return its answer.

        :raises OwnerGone: when nothing listens for that pid.
        """
        request = {
            key: environ[key]
            for key in FORWARDED_KEYS
            if isinstance(environ.get(key), str)
        }
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(RELAY_TIMEOUT)
            path = self.path_for(pid)
            try:
                sock.connect(path)
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if isinstance(exc, ConnectionRefusedError):
                    with contextlib.suppress(OSError):
                        os.unlink(path)  # left by a worker that was killed
                raise OwnerGone(pid) from None
            _send_frame(sock, json.dumps(request).encode())
            head = json.loads(_recv_frame(sock, _MAX_REQUEST))
            body = _recv_frame(sock, _MAX_RESPONSE)
        return str(head["status"]), [(str(k), str(v)) for k, v in head["headers"]], body

    def _report(self, message: str) -> None:
        if message != self.problem:
            self.problem = message
            logger.warning("%s", message)


def ask_all(
    directory: str,
    message: dict[str, str],
    *,
    timeout: float = ASK_ALL_TIMEOUT,
    exclude: t.Container[int] = (),
) -> list[tuple[int, Answer | str]]:
    """Send ``message`` (a dict with :data:`MESSAGE_KEY`) to every process
    listening in ``directory``, all at once, and wait at most ``timeout``
    seconds in all. Returns ``(pid, answer)`` per process, where a process
    that did not answer in time, or answered wrongly, has a one-line reason
    instead of an answer. Sockets left by processes that exited are removed.
    A directory that is missing, or not private to this user, gives ``[]``.
    """
    if not _private(directory):
        return []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    pids = sorted(
        int(name[:-5])
        for name in names
        if name.endswith(".sock") and name[:-5].isdigit() and name[:-5].isascii()
    )
    results: dict[int, Answer | str] = {}
    data = json.dumps(message).encode()

    def ask(pid: int) -> None:
        try:
            answer: Answer | str = _ask(
                os.path.join(directory, f"{pid}.sock"), data, timeout
            )
        except OwnerGone:
            return  # exited: nothing of it is left to ask about
        except TimeoutError:
            answer = f"did not answer within {timeout:g} s"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            answer = f"answered wrongly ({type(exc).__name__})"
        results[pid] = answer

    deadline = time.monotonic() + timeout
    threads = []
    for pid in pids:
        if pid in exclude:
            continue
        thread = threading.Thread(target=ask, args=(pid,), daemon=True)
        thread.start()
        threads.append((pid, thread))
    answers: list[tuple[int, Answer | str]] = []
    for pid, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        answer = results.get(pid)
        if thread.is_alive():
            answer = f"did not answer within {timeout:g} s"
        if answer is not None:
            answers.append((pid, answer))
    return answers


def _private(directory: str) -> bool:
    """Whether ``directory`` is this user's, mode 0700 (as ``listen``
    makes it): only then are its sockets ours.
    """
    try:
        st = os.lstat(directory)
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.geteuid()
        and not stat.S_IMODE(st.st_mode) & 0o077
    )


def _ask(path: str, data: bytes, timeout: float) -> Answer:
    """One message to one process's socket; its answer.

    :raises OwnerGone: nothing listens there (the stale socket is removed).
    """
    with _connect(path, timeout) as sock:
        if not _same_user(sock):
            raise ValueError("the socket belongs to another user")
        _send_frame(sock, data)
        head = json.loads(_recv_frame(sock, _MAX_REQUEST))
        body = _recv_frame(sock, _MAX_RESPONSE)
    return str(head["status"]), [(str(k), str(v)) for k, v in head["headers"]], body


def _connect(path: str, timeout: float) -> socket.socket:
    """A connected socket to ``path``.

    :raises OwnerGone: nothing listens there (a refused socket is removed).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        if isinstance(exc, ConnectionRefusedError):
            with contextlib.suppress(OSError):
                os.unlink(path)  # left by a worker that was killed
        raise OwnerGone(path) from None
    except BaseException:
        sock.close()
        raise
    return sock


def _same_user(conn: socket.socket) -> bool:
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if so_peercred is None:
        return True  # not Linux: the 0700 directory and 0600 socket decide
    creds = conn.getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    if uid not in (os.geteuid(), 0):
        logger.warning("ipdebug refused a relay connection from uid %d", uid)
        return False
    return True


def _send_answer(conn: socket.socket, answer: Answer) -> None:
    status, headers, body = answer
    _send_frame(conn, json.dumps({"status": status, "headers": headers}).encode())
    _send_frame(conn, body)


def _reply_safely(conn: socket.socket, answer: Answer) -> None:
    with conn, contextlib.suppress(OSError):
        conn.settimeout(1.0)
        _send_answer(conn, answer)


def _send_frame(sock: socket.socket, data: bytes) -> None:
    sock.sendall(_LEN.pack(len(data)) + data)


def _recv_frame(sock: socket.socket, limit: int) -> bytes:
    (size,) = _LEN.unpack(_recv_exactly(sock, _LEN.size))
    if size > limit:
        raise ValueError(f"relay frame of {size} bytes is over the limit")
    return _recv_exactly(sock, size)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 16))
        if not chunk:
            raise ConnectionError("relay connection closed early")
        chunks += chunk
    return bytes(chunks)


# Remove this process's sockets at exit, whatever the server does.
_LIVE: weakref.WeakSet[Relay] = weakref.WeakSet()


@atexit.register
def stop_all() -> None:
    """Stop every relay of this process (at exit, or from a server hook)."""
    for relay in list(_LIVE):
        relay.stop()
