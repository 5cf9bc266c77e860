"""The ``ipdebug`` command: open, close and inspect debugging windows.

.. code-block:: text

    ipdebug enable [--for 15m] [--allow ADDR|CIDR|ssh ...] [--allow-everyone]
                   [--reason TEXT] [--attach pdb|debugpy] [--capture] [--flag PATH]
                   [--json]
    ipdebug disable [--flag PATH] [--json]
    ipdebug status [--flag PATH] [--json]
    ipdebug attach [--wait 60s] [--flag PATH]
    ipdebug doctor [APP_IMPORT_PATH] [--flag PATH] [--json]
    ipdebug errors [--flag PATH] [--json]

Exit codes: 0 success, 1 the flag cannot be written or read (or ``status``
found a flag the middleware refuses), 2 usage errors. Errors are one line on
standard error naming the bad value and the fix; an unexpected failure
(an ``OSError``, a corrupt file, any other error) is one line too, with exit code 1,
never a traceback. ``doctor`` exits 1 when it finds something critical (see
:mod:`ipdebug.doctor`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import typing as t
from datetime import datetime, timedelta

from . import __version__
from .api import Enabled, Status, disable, enable, status
from .attach import attach_terminal
from .config import (
    DEFAULT_WINDOW,
    covers_everyone,
    format_duration,
    parse_duration,
    resolve_flag,
    state_directory,
)
from .errors import ConfigError, FlagError, FlagWriteError, IPDebugError

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
_CAPTURE_ON = "on (other clients' unhandled errors are kept; see: ipdebug errors)"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> t.NoReturn:
        # One line naming the problem, not argparse's usage dump.
        raise _UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ipdebug",
        description="Open Werkzeug's debugger to one address for a few minutes.",
    )
    parser.add_argument("--version", action="version", version=f"ipdebug {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    flag_help = (
        "flag path (default: $IPDEBUG_FLAG, else ~/.local/state/ipdebug/flag.json)"
    )

    p = commands.add_parser("enable", help="open a window and print a one-time PIN")
    p.add_argument(
        "--for",
        dest="duration",
        default=format_duration(DEFAULT_WINDOW),
        metavar="DURATION",
        help="how long, with a unit: 90s, 15m, 1h, 1h30m (default 15m; at most "
        "$IPDEBUG_MAX_WINDOW, default 1h)",
    )
    p.add_argument(
        "--allow",
        action="append",
        default=None,
        metavar="ADDR",
        help="address or CIDR network, or 'ssh' for this SSH session's client; "
        "repeat or separate with commas (default: the app's own allow setting)",
    )
    p.add_argument(
        "--allow-everyone",
        action="store_true",
        help="accept an --allow network wider than /8 (0.0.0.0/0, ::/0): every "
        "client gets the debugger, behind nothing but the PIN (audited)",
    )
    p.add_argument("--reason", default="", help="why, for the audit log (e.g. INC-42)")
    p.add_argument(
        "--attach",
        choices=("pdb", "debugpy"),
        help="also an external debugger: pdb (a failing request waits for "
        "'ipdebug attach') or debugpy (for an IDE, on 127.0.0.1)",
    )
    p.add_argument(
        "--capture",
        action="store_true",
        help="also capture the unhandled errors of every other client, to open "
        "live from the allowed address (ipdebug errors lists them)",
    )
    p.add_argument("--flag", help=flag_help)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = commands.add_parser(
        "attach", help="connect this terminal to a waiting pdb session (--attach pdb)"
    )
    p.add_argument(
        "--wait",
        default="60s",
        metavar="DURATION",
        help="how long to wait for a failing request (default 60s)",
    )
    p.add_argument("--flag", help=flag_help)

    for name, text in (
        ("disable", "close the window now"),
        ("status", "show the window"),
    ):
        p = commands.add_parser(name, help=text)
        p.add_argument("--flag", help=flag_help)
        p.add_argument("--json", action="store_true", help="print one JSON object")

    p = commands.add_parser(
        "errors",
        help="list the errors captured from other clients (enable --capture)",
    )
    p.add_argument("--flag", help=flag_help)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = commands.add_parser(
        "doctor", help="check this deployment for known mistakes (ipdebug.doctor)"
    )
    p.add_argument(
        "app",
        nargs="?",
        metavar="APP_IMPORT_PATH",
        help="the app as gunicorn names it (wsgi:app, wsgi:create_app()), "
        "imported from the current directory",
    )
    p.add_argument("--flag", help=flag_help)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    try:
        args = _parser().parse_args(argv)
        if args.command is None:
            raise _UsageError(
                "ipdebug: choose a command: enable, disable, status, errors, attach or doctor "
                "(see 'ipdebug --help')"
            )
        if args.command == "enable":
            allow = None if args.allow is None else ",".join(args.allow)
            parse_duration(args.duration, setting="--for")  # names --for, not duration
            try:
                opened = enable(
                    args.duration,
                    allow=allow,
                    reason=args.reason,
                    flag=args.flag,
                    attach=args.attach,
                    allow_everyone=args.allow_everyone,
                    capture=args.capture,
                )
            except ConfigError as exc:
                if exc.setting != "duration":
                    raise
                raise ConfigError("--for", exc.value, exc.reason) from None
            _print(args.json, _enabled_json(opened), _enabled_text(opened))
            return EXIT_OK
        if args.command == "disable":
            existed = disable(args.flag)
            text = (
                "ipdebug: window closed" if existed else "ipdebug: no window was open"
            )
            _print(args.json, {"enabled": False, "was_enabled": existed}, text)
            return EXIT_OK
        if args.command == "errors":
            return _errors(args.flag, args.json)
        if args.command == "doctor":
            return _doctor(args.app, args.flag, args.json)
        if args.command == "attach":
            wait = parse_duration(args.wait, setting="--wait")
            directory = state_directory(resolve_flag(args.flag, os.environ), "attach")
            try:
                return attach_terminal(directory, wait=wait)
            except (ConnectionRefusedError, FileNotFoundError):
                # A session socket whose worker exited (killed, restarted).
                print(
                    f"ipdebug: the pdb session waiting in {directory} is gone (its "
                    "request ended or its worker exited); load the failing page "
                    "again, then run ipdebug attach",
                    file=sys.stderr,
                )
                return EXIT_RUNTIME
        current = status(args.flag)
        _print(args.json, _status_json(current), _status_text(current))
        return EXIT_RUNTIME if current.problem else EXIT_OK
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"ipdebug: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FlagWriteError as exc:
        print(f"ipdebug: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Anything else that went wrong (an OSError, a corrupt file, a bug):
        # one line naming it, not a traceback, during an incident.
        print(f"ipdebug: {_one_line(exc)}", file=sys.stderr)
        return EXIT_RUNTIME


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, IPDebugError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _doctor(app: str | None, flag: str | None, as_json: bool) -> int:
    from . import doctor  # imports Werkzeug, and the app: only for doctor

    found = doctor.run_checks(app, os.environ, flag=flag)
    location = resolve_flag(flag, os.environ)
    data = doctor.report_json(found, app=app, flag=location)
    _print(as_json, data, doctor.report_text(found, app=app, flag=location))
    return EXIT_RUNTIME if data["critical"] else EXIT_OK


def _errors(flag: str | None, as_json: bool) -> int:
    """The captured errors of every process of this host (over the relay's
    sockets, as the app's user) and, with a flag in Redis, of the fleet.
    """
    from .debugger.errorpages import gather  # imports Werkzeug: only for this command
    from .stores import open_store

    location = resolve_flag(flag, os.environ)
    store = open_store(location)
    try:
        window = store.load(time.time())
    except FlagError as exc:
        print(
            f"ipdebug: flag {store.location} is refused: {exc.problem}", file=sys.stderr
        )
        return EXIT_RUNTIME
    if window is None:
        _print(
            as_json,
            {"errors": [], "unanswered": [], "capture": False},
            "ipdebug: no window is open; nothing is captured",
        )
        return EXIT_OK
    entries, unanswered = gather(
        state_directory(location, "relay"), store, window.id, instance="this host"
    )
    data = {"errors": entries, "unanswered": unanswered, "capture": window.capture}
    lines = [
        f"ipdebug: {len(entries)} captured error(s), newest first"
        + (
            ""
            if window.capture
            else " (this window does not capture: enable --capture)"
        )
    ]
    for e in entries:
        lines.append(
            f"  {e.get('time')}  {e.get('instance')} pid {e.get('pid')}  {e.get('client')}  "
            f"{e.get('method')} {e.get('path')}\n      {e.get('exception')}\n      {e.get('url', '-')}"
        )
    for u in unanswered:
        lines.append(
            f"  worker pid {u['pid']} {u['problem']}: its captures are not listed"
        )
    _print(as_json, data, "\n".join(lines))
    return EXIT_OK


def _print(as_json: bool, data: dict[str, object], text: str) -> None:
    print(json.dumps(data) if as_json else text)


def _iso(when: datetime | None) -> str | None:
    return (
        None
        if when is None
        else when.isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _both_times(when: datetime) -> str:
    """Local time and UTC; UTC once on a host whose local time is UTC."""
    local = when.astimezone()
    if local.utcoffset() == timedelta(0):
        return f"{when:%Y-%m-%d %H:%M:%S} UTC"
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({when:%H:%M:%S} UTC)"


def _enabled_json(opened: Enabled) -> dict[str, object]:
    return {
        "until": _iso(opened.until),
        "allow": list(opened.allow),
        "pin": opened.pin,
        "flag": opened.flag,
        "reason": opened.reason,
        "window": opened.window_id[:8],
        "attach": opened.attach,
        "capture": opened.capture,
    }


def _enabled_text(opened: Enabled) -> str:
    allow = (
        ", ".join(opened.allow)
        or "the addresses in the app's allow setting (IPDEBUG_ALLOW)"
    )
    lines = [
        f"ipdebug: debugging window open until {_both_times(opened.until)}",
        f"  for:    {allow}",
        f"  reason: {opened.reason or '-'}",
        f"  flag:   {opened.flag}",
        f"  PIN:    {opened.pin}",
        "",
        "The PIN unlocks the console of this window only; it is stored nowhere.",
        "Running apps see the window within a second. Close it early with: ipdebug disable",
    ]
    wide = [a for a in opened.allow if covers_everyone(a)]
    if wide:
        lines.append(
            f"WARNING: {', '.join(wide)} lets every client get the debugger, behind "
            "nothing but the PIN (--allow-everyone)."
        )
    if opened.capture:
        lines.append(
            "Capturing: every other client's unhandled errors are kept (live frames) "
            "for this window; list them with: ipdebug errors"
        )
    if opened.attach == "pdb":
        lines.append(
            "External debugger: run 'ipdebug attach' in another session, then load the failing page."
        )
    elif opened.attach == "debugpy":
        lines.append(
            "External debugger: load a page, then 'ipdebug attach' says where debugpy listens."
        )
    return "\n".join(lines)


def _status_json(current: Status) -> dict[str, object]:
    return {
        "enabled": current.enabled,
        "until": _iso(current.until),
        "allow": list(current.allow),
        "reason": current.reason,
        "remaining_s": current.remaining_s,
        "flag": current.flag,
        "expired_at": _iso(current.expired_at),
        "problem": current.problem,
        "attach": current.attach,
        "capture": current.capture,
    }


def _status_text(current: Status) -> str:
    if current.problem:
        return f"ipdebug: off (flag {current.flag} is refused: {current.problem})"
    if current.enabled and current.until is not None:
        left = format_duration(current.remaining_s)
        return "\n".join(
            [
                f"ipdebug: window open until {_both_times(current.until)}, {left} left",
                f"  for:    {', '.join(current.allow) or 'the app allow setting'}",
                f"  reason: {current.reason or '-'}",
                f"  by:     {current.by or '-'}",
                f"  capture: {_CAPTURE_ON if current.capture else 'off'}",
                f"  flag:   {current.flag}",
            ]
        )
    if current.expired_at is not None:
        return f"ipdebug: off (window expired at {_both_times(current.expired_at)})"
    return f"ipdebug: off (no flag at {current.flag})"
