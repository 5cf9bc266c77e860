"""Private unix sockets: only the app's user can connect.

The relay between workers and the pdb sessions of ``--attach pdb`` both
listen on unix sockets in a directory of their own beside the flag. The
directory is mode 0700 and owned by this user, and each socket is created
with mode 0600 (bound under a tight umask, so it is never open, even for an
instant). Nothing is ever exposed on TCP.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat

# sockaddr_un.sun_path holds 108 bytes, with its terminating NUL.
_SUN_PATH_MAX = 107


def private_directory(path: str) -> str:
    """Create (0700) and check a directory only this user can enter.

    :raises OSError: when it exists with the wrong owner or mode.
    """
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if (
        not stat.S_ISDIR(st.st_mode)
        or st.st_uid != os.geteuid()
        or stat.S_IMODE(st.st_mode) & 0o077
    ):
        raise PermissionError(
            errno.EPERM, f"{path} must be a directory of this user with mode 0700"
        )
    return path


def listen(directory: str, name: str, *, backlog: int) -> tuple[socket.socket, str]:
    """Listen on ``directory/name`` (mode 0600), replacing a stale socket.

    :raises OSError: for an unsafe directory or a path too long for a socket.
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
