"""Logging: the audit trail of a window, and configuration warnings.

``ipdebug.audit`` gets one record per event: the window seen opened, closed
or expired; each debugger page, console page and PIN attempt; each console
command with its source text and frame. Each record carries ``ipdebug_event``
and ``ipdebug_client`` attributes for structured handlers, and a message of
``key=value`` pairs for people. **No record ever contains a PIN or a debugger
secret.**

``ipdebug`` gets configuration problems, each logged once per process (per
distinct message), so a bad flag does not flood the log at request rate.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

audit_logger = logging.getLogger("ipdebug.audit")
logger = logging.getLogger("ipdebug")


def audit(event: str, client: str | None = None, **fields: object) -> None:
    """Record one audit event.

    :param event: a dotted name such as ``window.opened``.
    :param client: the client address the event concerns, if any.
    :param fields: details, rendered with ``repr`` for strings so that a
        console command cannot forge a line break or a field.
    """
    if not audit_logger.isEnabledFor(logging.INFO):
        return
    parts = [f"event={event}", f"client={client or '-'}"]
    parts.extend(f"{key}={_value(value)}" for key, value in fields.items())
    audit_logger.info(
        " ".join(parts),
        extra={"ipdebug_event": event, "ipdebug_client": client, "ipdebug": fields},
    )


def _value(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


#: Where an :class:`Auditor` also writes each record (e.g. a file beside
#: the flag); it must not raise for an ordinary I/O error.
Trail = Callable[[dict[str, object]], None]


class Auditor:
    """Send each event to the ``ipdebug.audit`` logger and, when given, to a
    durable trail that every process and the CLI share (see
    :meth:`ipdebug.stores.file.FileFlagStore.append_audit`).
    """

    def __init__(self, trail: Trail | None = None) -> None:
        self._trail = trail
        self._failed = LogOnce(limit=4)

    def __call__(self, event: str, client: str | None = None, **fields: object) -> None:
        audit(event, client, **fields)
        if self._trail is None:
            return
        record: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "event": event,
            "client": client,
            "pid": os.getpid(),
            **fields,
        }
        try:
            self._trail(record)
        except Exception:
            self._failed(
                logging.WARNING, "ipdebug cannot write its audit trail", exc_info=True
            )


class LogOnce:
    """Log each distinct message once; bounded so that an attacker who can
    vary a message cannot grow memory.
    """

    def __init__(self, limit: int = 256) -> None:
        self._seen: set[str] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def __call__(self, level: int, message: str, *, exc_info: bool = False) -> None:
        with self._lock:
            if message in self._seen:
                return
            if len(self._seen) >= self._limit:
                self._seen.clear()
            self._seen.add(message)
        logger.log(level, "%s", message, exc_info=exc_info)

    def forget(self) -> None:
        """Log messages again (a new state deserves a new line)."""
        with self._lock:
            self._seen.clear()
