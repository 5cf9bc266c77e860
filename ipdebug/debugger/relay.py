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
socket. Both ends check the directory (a real directory of this user, mode
0700) and the process at the other end (``SO_PEERCRED``: this user or
root): a forwarder never sends a request, which may carry the PIN, to a
socket another user planted, and never serves its answer. The owner also
gates the forwarded request again before answering. The socket is closed and
removed when the window ends (a thread checks every second) and at process
exit.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import socket
import struct
import sys
import threading
import time
import typing as t
import weakref

from ..audit import logger
from ..errors import OwnerGone, RelayError
from ..private import NotPrivate, check_directory, connect, listen, peer_problem

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
    # The native engine's protocol: its POST body (read by the forwarder,
    # bounded), the secret header and what its cross-site check reads.
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "HTTP_ACCEPT",
    "HTTP_ORIGIN",
    "HTTP_SEC_FETCH_SITE",
    "HTTP_X_IPDEBUG_SECRET",
    "ipdebug.body",
)
#: The environ key holding a forwarded POST body (latin-1 text).
BODY_KEY = "ipdebug.body"

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


def unavailable() -> str | None:
    """Why the relay cannot work in this server, if it cannot."""
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is not None and not getattr(uwsgi, "has_threads", 1):
        # The relay's listener is a Python thread; such a uWSGI never runs
        # it while a worker waits for requests.
        return (
            "uWSGI runs without Python threads, so console requests cannot reach "
            "the worker that rendered the page; restart uWSGI with --enable-threads"
        )
    return None


def relayed_environ(forwarded: dict[str, t.Any]) -> dict[str, t.Any]:
    """The WSGI environ of a request another process forwarded: only
    :data:`FORWARDED_KEYS`, as text, and the body it read.
    """
    return {
        **{
            k: v
            for k, v in forwarded.items()
            if k in FORWARDED_KEYS and isinstance(v, str)
        },
        # A native-engine POST body, read (bounded) by the forwarder.
        "wsgi.input": io.BytesIO(
            str(forwarded.get(BODY_KEY, "")).encode("latin-1", "replace")
        ),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


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
                problem = peer_problem(conn)
                if problem:
                    logger.warning(
                        "ipdebug refused a relay connection: the peer %s", problem
                    )
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
        :raises NotPrivate: when the socket's directory, or the process
            listening on it, is another user's: nothing was sent.
        :raises RelayError: when the owner did not answer in time, or
            answered wrongly.
        """
        request = {
            key: environ[key]
            for key in FORWARDED_KEYS
            if isinstance(environ.get(key), str)
        }
        try:
            return _ask(
                self.directory, pid, json.dumps(request).encode(), RELAY_TIMEOUT
            )
        except NotPrivate as exc:
            self._report(
                f"ipdebug refused to relay a console request: {exc}; remove "
                f"{self.directory} (the app creates it again) and keep the flag "
                "in a private directory"
            )
            raise

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
    A directory that is missing, or not private to this user, gives ``[]``:
    nothing is sent to a socket another user could have planted.
    """
    try:
        check_directory(directory)
        names = os.listdir(directory)
    except (OSError, NotPrivate):
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
            answer: Answer | str = _ask(directory, pid, data, timeout)
        except OwnerGone:
            return  # exited: nothing of it is left to ask about
        except NotPrivate as exc:
            answer = f"was not asked ({exc})"
        except RelayError as exc:
            answer = exc.problem
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


def _ask(directory: str, pid: int, data: bytes, timeout: float) -> Answer:
    """One message to process ``pid``'s socket; its answer.

    :raises OwnerGone: nothing listens there (a refused socket is removed).
    :raises NotPrivate: the directory or the peer is another user's.
    :raises RelayError: no answer within ``timeout``, or a malformed one.
    """
    try:
        sock = connect(directory, f"{pid}.sock", timeout=timeout)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        if isinstance(exc, ConnectionRefusedError):
            # Left by a worker that was killed; the directory was checked,
            # so this removes nobody else's file.
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, f"{pid}.sock"))
        raise OwnerGone(pid) from None
    except NotPrivate:
        raise
    except OSError as exc:
        raise RelayError(pid, f"cannot be reached ({type(exc).__name__})") from exc
    try:
        with sock:
            # An owner over its limit answers "busy" without reading and
            # closes: its answer is still there to read.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                _send_frame(sock, data)
            head = json.loads(_recv_frame(sock, _MAX_REQUEST))
            body = _recv_frame(sock, _MAX_RESPONSE)
        headers = [(str(k), str(v)) for k, v in head["headers"]]
        return str(head["status"]), headers, body
    except TimeoutError:
        raise RelayError(pid, f"did not answer within {timeout:g} s") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # A closed connection, an oversized frame, or not the relay's JSON.
        problem = f"answered wrongly ({type(exc).__name__}: {exc})"
        raise RelayError(pid, problem) from exc


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
