"""Private unix sockets: only the app's user can listen or connect.

The relay between workers and the pdb sessions of ``--attach pdb`` use unix
sockets in a directory of their own beside the flag. The directory is mode
0700 and owned by this user (or root), and each socket is created with mode
0600 (bound under a tight umask, so it is never open, even for an instant).
Nothing is ever exposed on TCP.

**Security:** both ends check. :func:`listen` and :func:`connect` refuse a
directory that is a symbolic link, another user's, or open to group or
others, whoever created it first; after connecting (or accepting), the
process at the other end must run as this user or root (``SO_PEERCRED``).
Otherwise a local user who planted the directory, or a socket in it, would
receive the console requests and the PIN, and answer them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
from collections.abc import Callable

from .errors import IPDebugError

# sockaddr_un.sun_path holds 108 bytes, with its terminating NUL.
_SUN_PATH_MAX = 107


class NotPrivate(PermissionError, IPDebugError):
    """A directory, or the process behind a socket, that another user
    controls. ``str()`` names the path and the problem. An ``OSError`` too,
    as the file operations it guards raise.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(errno.EPERM, f"{path} {problem}")
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path} {self.problem}"


def private_problem(st: os.stat_result) -> str | None:
    """Why a directory (from :func:`os.lstat`) is not private, or ``None``."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link, not a directory"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid not in (os.geteuid(), 0):
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return f"has mode {mode:04o}, not 0700"
    return None


def check_directory(path: str) -> None:
    """Refuse a directory that is not private (see :func:`private_problem`).

    :raises FileNotFoundError: when it does not exist.
    :raises NotPrivate: when it is not private.
    """
    problem = private_problem(os.lstat(path))
    if problem:
        raise NotPrivate(path, problem)


def make_directories(
    path: str, check: Callable[[os.stat_result], str | None] = private_problem
) -> str:
    """Create ``path`` and any missing parents, each with mode 0700, without
    following a symbolic link planted in place of one of them.

    Each directory created here (or by someone else in the meantime) must
    then be a private directory (:func:`private_problem`); ``path`` itself,
    new or not, must pass ``check`` on its :func:`os.lstat`. The existing
    directory they are created in must be this user's or root's, reached
    through no symbolic link of another user. Higher parents are the
    user's choice and are not judged.

    :raises NotPrivate: for a directory that fails its check.
    :raises OSError: when a directory cannot be created.
    """
    path = os.path.abspath(path)
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if missing:
        _check_parent(probe)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # checked just below
            os.mkdir(directory, 0o700)
        check_directory(directory)
    problem = check(os.lstat(path))
    if problem:
        raise NotPrivate(path, problem)
    return path


def _check_parent(parent: str) -> None:
    """Refuse to create directories in one that another user controls: a
    symbolic link of theirs (which they may point anywhere, and repoint
    later) or their directory (where they may rename ours away).
    """
    mine = (os.geteuid(), 0)
    st = os.lstat(parent)
    if stat.S_ISLNK(st.st_mode):
        if st.st_uid not in mine:
            raise NotPrivate(
                parent,
                f"is a symbolic link of uid {st.st_uid}; ipdebug does not create "
                "its directories through it",
            )
        st = os.stat(parent)
    if st.st_uid not in mine:
        raise NotPrivate(
            parent,
            f"is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()}); "
            "ipdebug does not create its directories in it",
        )


def private_directory(path: str) -> str:
    """Create (0700) and check a directory only this user can enter.

    :raises NotPrivate: when it exists as a symbolic link, with another
        owner or with a mode open to group or others.
    """
    return make_directories(path)


def peer_problem(conn: socket.socket) -> str | None:
    """Why the process at the other end of ``conn`` is not trusted, or
    ``None`` when it runs as this user or root.
    """
    so_peercred = getattr(socket, "SO_PEERCRED", None)
    if so_peercred is None:
        return None  # not Linux: the 0700 directory and 0600 socket decide
    creds = conn.getsockopt(socket.SOL_SOCKET, so_peercred, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    if uid not in (os.geteuid(), 0):
        return f"is served by uid {uid}, not by this user (uid {os.geteuid()})"
    return None


def listen(directory: str, name: str, *, backlog: int) -> tuple[socket.socket, str]:
    """Listen on ``directory/name`` (mode 0600), replacing a stale socket.

    :raises NotPrivate: for a directory another user controls.
    :raises OSError: for a path too long for a socket.
    """
    path = os.path.join(private_directory(directory), name)
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise OSError(
            errno.ENAMETOOLONG,
            f"socket path {path!r} is too long; use a shorter IPDEBUG_FLAG",
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by an earlier process with this pid
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old_umask)
    sock.listen(backlog)
    return sock, path


def connect(directory: str, name: str, *, timeout: float) -> socket.socket:
    """Connect to ``directory/name`` after checking the directory, and
    check the peer before returning: nothing is sent to a socket that
    another user planted.

    :raises FileNotFoundError: when the directory or the socket is missing.
    :raises ConnectionRefusedError: for a socket nobody listens on.
    :raises NotPrivate: for a directory or a peer another user controls.
    """
    check_directory(directory)
    path = os.path.join(directory, name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        problem = peer_problem(sock)
        if problem:
            raise NotPrivate(path, problem)
    except BaseException:
        sock.close()
        raise
    return sock
