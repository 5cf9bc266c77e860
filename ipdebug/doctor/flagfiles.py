"""The flag and the files beside it: whether this process judges the flag
as the app does, the flag judged as the middleware judges it, the open
window and its use, the flag's directory, the private socket directories and
the audit trail (IPD021, IPD030-IPD039, IPD041, IPD042).
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import stat
import time
from collections.abc import Mapping, Sequence

from ..api import status
from ..config import format_duration, state_directory
from ..errors import ConfigError, FlagError
from ..pin import MAX_PIN_FAILURES
from ..private import private_problem
from ..stores import Window, open_store
from ..stores.file import unsafe_directory
from .findings import Finding, finding, user_name
from .network import everyone_entries, window_allow

#: An open window with more time left than this is reported (IPD032).
LONG_WINDOW = 30 * 60.0

#: An open window unused for this long is reported (IPD042).
IDLE_WINDOW = 15 * 60.0

#: Audit events that mean someone is using the window's debugger.
_ACTIVITY = (
    "debugger.page",
    "debugger.console",
    "console.command",
    "pin.success",
    "pin.failure",
    "debugger.relayed",
    "attach.",
)

_AUDIT_TAIL = 256 * 1024


def check_user(location: str, *, from_default: bool) -> tuple[list[Finding], bool]:
    """Whether this process judges the flag as the app does: the flag's rules
    depend on who reads it (IPD039, IPD041).

    :returns: the findings, and whether the flag must be left unjudged (root
        looking at another user's directory).
    """
    found: list[Finding] = []
    if os.geteuid() != 0:
        return found, False
    if from_default:
        found.append(finding("IPD039", flag=location))
    directory = os.path.dirname(location)
    owner = 0
    if "://" not in location:
        with contextlib.suppress(OSError):
            owner = os.stat(directory).st_uid
    if owner:
        found.append(
            finding(
                "IPD041",
                directory=directory,
                user=user_name(owner),
                name=user_name(owner, bare=True),
            )
        )
    return found, bool(owner)


def check_flag(
    location: str, env: Mapping[str, str], *, deployment_allow: bool
) -> tuple[list[Finding], Window | None]:
    """The flag judged as the middleware judges it, and the open window
    (IPD030, IPD032, IPD033, IPD036, IPD060; IPD021 for the window's
    allowlist).

    :param deployment_allow: whether the app has its own ``allow``.
    :returns: the findings, and the open window if there is one.
    """
    try:
        try:
            current = status(location, environ=env)
        except ConfigError:  # a bad IPDEBUG_MAX_WINDOW, reported as IPD006
            current = status(location, environ={})
    except Exception as exc:  # a store that cannot be reached at all
        problem = f"cannot be read: {type(exc).__name__}: {exc}"
        return [finding("IPD030", flag=location, problem=problem)], None
    if current.problem:
        return [finding("IPD030", flag=location, problem=current.problem)], None
    if not current.enabled or current.until is None:
        return [], None
    found: list[Finding] = []
    if current.remaining_s > LONG_WINDOW:
        until = f"{current.until:%Y-%m-%d %H:%M:%S}"
        left = format_duration(current.remaining_s)
        found.append(
            finding(
                "IPD032",
                left=left,
                until=until,
                reason=current.reason or "-",
                by=current.by or "-",
            )
        )
    if current.capture and current.remaining_s > LONG_WINDOW:
        found.append(finding("IPD060", left=format_duration(current.remaining_s)))
    if not current.allow and not deployment_allow:
        found.append(finding("IPD033"))
    for entry in everyone_entries(window_allow(current.allow)):
        fix = "close it now (ipdebug disable) and open one for your address: ipdebug enable --allow ssh"
        found.append(
            finding("IPD021", where="the open window's allowlist", entry=entry, fix=fix)
        )
    if getattr(current, "attach", None) == "debugpy":
        found.append(finding("IPD036"))
    try:
        window = open_store(location).load(time.time())
    except (FlagError, ConfigError, ImportError, OSError):
        window = None
    return found, window


_PRIVATE = {
    "relay": "console requests that reach another worker than the page's fail",
    "attach": "ipdebug enable --attach cannot be used",
}


def check_files(location: str) -> list[Finding]:
    """The flag's directory while there is no flag (the store checks it only
    when it reads one), the private socket directories and the audit trail
    beside it (IPD031, IPD037, IPD038). Nothing for a flag in Redis.
    """
    if "://" in location:
        return []
    found: list[Finding] = []
    directory = os.path.dirname(location)
    try:
        problem = unsafe_directory(os.lstat(directory))
    except OSError:
        return found
    if problem and not os.path.lexists(location):
        found.append(finding("IPD031", directory=directory, problem=problem))
    for name, effect in _PRIVATE.items():
        path = state_directory(location, name)
        with contextlib.suppress(OSError):
            what = private_problem(os.lstat(path))
            if what:
                found.append(
                    finding("IPD037", directory=path, what=what, effect=effect)
                )
    for name in ("audit.log", "audit.log.1"):
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if not stat.S_ISREG(st.st_mode):
                problem = "is not a regular file: ipdebug refuses to write to it, so no event is recorded"
            elif st.st_uid not in (os.geteuid(), 0) or mode & 0o022:
                problem = f"has mode {mode:04o} and belongs to {user_name(st.st_uid)}: another user could have planted or changed it, so ipdebug refuses to write to it and no event is recorded"
            elif mode & 0o044:
                problem = f"has mode {mode:04o}: other users can read the console commands typed in windows"
            else:
                continue
            found.append(finding("IPD038", path=path, problem=problem))
    return found


def read_audit(location: str, limit: int = _AUDIT_TAIL) -> list[dict[str, object]]:
    """The records in the last ``limit`` bytes of ``audit.log`` beside the
    flag; none for a flag in Redis, or when it cannot be read.
    """
    if "://" in location:
        return []
    path = os.path.join(os.path.dirname(location), "audit.log")
    try:
        # Not through a symbolic link, and never blocked by a planted FIFO.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return []
            start = max(0, os.fstat(fd).st_size - limit)
            file.seek(start)
            lines = file.read(limit).splitlines()
    except OSError:
        return []
    records = []
    for line in lines[1:] if start else lines:  # the first may be cut
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def check_window_use(
    location: str,
    window: Window,
    records: Sequence[Mapping[str, object]],
    *,
    now: float | None = None,
) -> list[Finding]:
    """A locked console, an open window that no process has reported, and
    one open longer than it is used (IPD034, IPD035, IPD042).
    """
    found: list[Finding] = []
    short = window.id[:8]
    with contextlib.suppress(Exception):
        failures = open_store(location).pin_failures(window.id)
        if failures >= MAX_PIN_FAILURES:
            found.append(finding("IPD034", window=short, failures=failures))
    seen = any(
        r.get("event") == "window.opened" and r.get("window") == short for r in records
    )
    if "://" not in location and not seen:
        found.append(finding("IPD035", window=short))
    if "://" not in location:  # a flag in Redis keeps its trail in Redis
        found += _idle(window, records, time.time() if now is None else now)
    return found


def _idle(
    window: Window, records: Sequence[Mapping[str, object]], now: float
) -> list[Finding]:
    """IPD042: open for more than :data:`IDLE_WINDOW`, and no debugger
    activity in audit.log for that long.
    """
    if now - window.created < IDLE_WINDOW:
        return []
    last = None
    for record in records:
        event = record.get("event")
        if isinstance(event, str) and event.startswith(_ACTIVITY):
            when = _epoch(record.get("time"))
            if when is not None and when >= window.created:
                last = when if last is None else max(last, when)
    if last is not None and now - last < IDLE_WINDOW:
        return []
    activity = (
        "nobody has used its debugger"
        if last is None
        else f"its debugger was last used {format_duration(now - last)} ago"
    )
    return [
        finding(
            "IPD042",
            window=window.id[:8],
            age=format_duration(now - window.created),
            left=format_duration(max(0.0, window.until - now)),
            activity=activity,
        )
    ]


def _epoch(value: object) -> float | None:
    """An audit record's ``time`` (``2026-11-24T09:15:00Z``) as epoch."""
    if not isinstance(value, str):
        return None
    try:
        return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None
