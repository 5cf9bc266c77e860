"""A second, real local user for the tests of local attacks.

The tests run as root (on CI too). :func:`attacker` creates a system user
(``ipdebug-attacker``, no home, no shell) once; :func:`run_as` and
:class:`PlantedSocket` act as that user from a forked child, which drops
root with ``setgid``/``setuid`` and so has exactly that user's powers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import select
import shutil
import socket
import subprocess
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

NAME = "ipdebug-attacker"


@dataclasses.dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


def attacker() -> User:
    """The second local user, created when missing; skips the test where
    that is impossible.
    """
    if os.geteuid() != 0:
        pytest.skip("acting as a second local user needs root (as on CI)")
    try:
        entry = pwd.getpwnam(NAME)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            pytest.skip("useradd is missing: cannot create a second local user")
        nologin = shutil.which("nologin") or "/usr/sbin/nologin"
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", nologin, NAME],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(NAME)
    assert entry.pw_uid != 0
    return User(NAME, entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def shared_directory() -> Iterator[Path]:
    """A sticky 1777 directory owned by root, playing ``/tmp``. It is made in
    the system's temporary directory: pytest's ``tmp_path`` sits under a
    0700 directory that the second user cannot enter.
    """
    path = Path(tempfile.mkdtemp(prefix="ipdebug-shared-"))
    os.chmod(path, 0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _fork() -> int:
    # Python 3.12+ warns about forking a process with threads; the child
    # only makes system calls and leaves with os._exit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _become(user: User) -> None:
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    os.umask(0)


def run_as(user: User, action: Callable[[], object]) -> None:
    """Run ``action`` as ``user`` in a child process; fail if it fails."""
    pid = _fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            _become(user)
            action()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"{action} failed as {user.name}"


class PlantedSocket:
    """A unix socket that ``user`` listens on at ``path``: it records every
    connection and every byte received, and answers each connection with
    ``reply`` once the peer is quiet (or has shut down its side).
    """

    def __init__(self, user: User, path: Path, reply: bytes) -> None:
        self.user = user
        self.path = path
        self.reply = reply
        self.connections = 0
        self.received = b""
        self._pid = 0
        self._stop = self._data = -1

    def __enter__(self) -> PlantedSocket:
        ready_r, ready_w = os.pipe()
        stop_r, self._stop = os.pipe()
        self._data, data_w = os.pipe()
        self._pid = _fork()
        if self._pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                for fd in (ready_r, self._stop, self._data):
                    os.close(fd)
                _become(self.user)
                self._serve(ready_w, stop_r, data_w)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        for fd in (ready_w, stop_r, data_w):
            os.close(fd)
        with os.fdopen(ready_r, "rb") as ready:
            assert ready.read(1) == b"r", f"{self.user.name} could not listen"
        return self

    def _serve(self, ready_w: int, stop_r: int, data_w: int) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(self.path))
            listener.listen(8)
            os.write(ready_w, b"r")
            connections, received = 0, bytearray()
            while True:
                readable, _, _ = select.select([listener, stop_r], [], [], 60)
                if listener not in readable:
                    break  # asked to stop, with no connection pending
                conn, _ = listener.accept()
                connections += 1
                with conn:
                    conn.settimeout(1.0)
                    with contextlib.suppress(OSError):
                        while chunk := conn.recv(65536):
                            received += chunk
                    with contextlib.suppress(OSError):
                        conn.sendall(self.reply)
        with os.fdopen(data_w, "wb") as out:
            out.write(connections.to_bytes(4, "big") + bytes(received))

    def __exit__(self, *exc: object) -> None:
        os.write(self._stop, b"s")
        os.close(self._stop)
        with os.fdopen(self._data, "rb") as data:
            result = data.read()
        _, status = os.waitpid(self._pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the planted socket failed"
        self.connections = int.from_bytes(result[:4], "big")
        self.received = result[4:]


def connect_as(user: User, path: Path, send: bytes) -> bytes:
    """Connect to ``path`` as ``user``, send ``send``, and return what came
    back before the other end closed (or went quiet for 2 seconds).
    """
    read_r, read_w = os.pipe()
    pid = _fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_r)
            _become(user)
            got = bytearray()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2.0)
                sock.connect(str(path))
                with contextlib.suppress(OSError):
                    sock.sendall(send)
                with contextlib.suppress(OSError):
                    while chunk := sock.recv(65536):
                        got += chunk
            with os.fdopen(read_w, "wb") as out:
                out.write(bytes(got))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(read_w)
    with os.fdopen(read_r, "rb") as data:
        got = data.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"{user.name} could not connect"
    return got
