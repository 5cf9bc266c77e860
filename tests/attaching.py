"""Helpers for tests of ``--attach pdb``: wait for a session's unix socket,
read what pdb says up to a prompt.
"""

from __future__ import annotations

import socket

from ipdebug.attach import sessions

from .servers import wait_until


def wait_for_session(directory: str, timeout: float = 5) -> str:
    """The socket path of the first pdb session waiting in ``directory``."""
    wait_until(lambda: bool(sessions(directory)), timeout=timeout, interval=0.02)
    return sessions(directory)[0]


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """Everything ``sock`` sends until ``marker`` (or until it closes)."""
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
