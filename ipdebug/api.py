"""Open, close and inspect windows from Python, as the CLI does.

.. code-block:: python

    import ipdebug

    opened = ipdebug.enable("15m", allow=["203.0.113.7"], reason="INC-42")
    print(opened.pin, opened.until)
    ipdebug.disable()

Every function resolves the flag as the middleware does: the ``flag``
argument, else ``IPDEBUG_FLAG``, else the default path.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .audit import Auditor
from .config import (
    DEFAULT_MAX_WINDOW,
    DEFAULT_WINDOW,
    EVERYONE_PREFIX,
    Duration,
    covers_everyone,
    format_duration,
    parse_duration,
    resolve_flag,
    split_list,
)
from .errors import ConfigError, FlagError
from .gate import Networks, parse_address
from .pin import PinHash, new_pin
from .stores import Window, open_store

#: ``--allow ssh``: the address of the SSH client of this shell.
SSH_KEYWORD = "ssh"


@dataclass(frozen=True)
class Enabled:
    """A window just opened. ``pin`` exists only here: the flag keeps a hash."""

    pin: str = field(repr=False)
    until: datetime
    allow: tuple[str, ...]
    reason: str
    flag: str
    window_id: str
    attach: str | None = None
    #: The window also captures other clients' unhandled errors.
    capture: bool = False


@dataclass(frozen=True)
class Status:
    """What the flag says now, judged as the middleware would judge it."""

    enabled: bool
    flag: str
    until: datetime | None = None
    allow: tuple[str, ...] = ()
    reason: str = ""
    by: str = ""
    remaining_s: float = 0.0
    expired_at: datetime | None = None
    problem: str | None = None
    attach: str | None = None
    #: The window captures other clients' unhandled errors.
    capture: bool = False


def enable(
    duration: Duration = DEFAULT_WINDOW,
    *,
    allow: Iterable[str] | str | None = None,
    reason: str = "",
    flag: str | os.PathLike[str] | None = None,
    attach: str | None = None,
    allow_everyone: bool = False,
    capture: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Enabled:
    """Open a window now, replacing any open one, with a fresh PIN.

    :param duration: how long, at most ``IPDEBUG_MAX_WINDOW`` (default 1h):
        ``"15m"``, ``"90s"``, ``"1h"`` (text needs a unit), a number of
        seconds, or a ``timedelta``.
    :param allow: addresses and networks for this window; ``"ssh"`` stands
        for the SSH client of this process (``SSH_CLIENT``). ``None`` leaves
        the choice to the deployment's ``allow``.
    :param reason: why, for the audit log (an incident id).
    :param attach: ``"pdb"``: the next unhandled exception of a gated-in
        request waits for ``ipdebug attach`` (a post-mortem pdb over a unix
        socket) before the browser page; ``"debugpy"``: gated-in requests
        start debugpy on 127.0.0.1 for an IDE (see docs/attach.md).
    :param allow_everyone: required when ``allow`` holds a network that is
        everyone in practice (a prefix shorter than /8, such as
        ``0.0.0.0/0``): **every client that reaches the app then gets the
        debugger, behind nothing but the PIN**. Audited.
    :param capture: also capture the unhandled errors of every client that
        is not gated in, for the gated-in operator to open live at
        ``errors_path`` (see docs/capture.md).
        **The operator then sees other clients' data in those frames.**
    :raises ConfigError: for a bad duration or address, an allowlist
        covering everyone without ``allow_everyone``, or an operator's name
        (``USER``, ``SUDO_USER``, ``SSH_CLIENT``, ...) that is not printable
        text.
    :raises FlagWriteError: when the flag cannot be written.
    """
    env = os.environ if environ is None else environ
    location = resolve_flag(flag, env)
    seconds = parse_duration(duration, setting="duration")
    limit = max_window(env)
    if seconds > limit:
        raise ConfigError(
            "duration",
            duration,
            f"is longer than the maximum window ({format_duration(limit)}); "
            "shorten it or raise IPDEBUG_MAX_WINDOW for the app and this shell",
        )
    if not isinstance(reason, str) or len(reason) > 500 or not reason.isprintable():
        raise ConfigError(
            "reason", reason, "must be printable text of at most 500 characters"
        )
    addresses = _expand_allow(allow, env)
    wide = _everyone(addresses)
    if wide and not allow_everyone:
        raise ConfigError(
            "--allow",
            wide[0],
            "lets every client get the debugger (a network wider than "
            f"/{EVERYONE_PREFIX}); give the operators' addresses (--allow ssh), or "
            "pass --allow-everyone (allow_everyone=True) if that is really meant",
        )
    pin = new_pin()
    now = time.time()
    window = Window.new(
        now=now,
        duration=seconds,
        allow=addresses,
        reason=reason,
        by=_operator(env),
        pin_hash=PinHash.create(pin),
        attach=attach,
        capture=capture,
    )
    try:
        # What every middleware will do with it: never report a window
        # open that they all refuse.
        Window.from_json(window.to_json(), now=now)
    except ValueError as exc:
        raise ConfigError(
            "flag", location, f"would be refused by the middleware: it {exc}"
        ) from None
    store = open_store(location)
    store.save(window)
    fields: dict[str, object] = {
        "window": window.id[:8],
        "until": datetime.fromtimestamp(window.until, timezone.utc).isoformat(
            timespec="seconds"
        ),
        "allow": list(addresses),
        "reason": reason,
        "by": window.by,
        "attach": attach,
        "capture": capture,
    }
    if wide:
        fields["allow_everyone"] = True
    Auditor(store.append_audit)("window.enabled", None, **fields)
    return Enabled(
        pin=pin,
        until=datetime.fromtimestamp(window.until, timezone.utc),
        allow=addresses,
        reason=reason,
        flag=store.location,  # a URL's password is redacted here
        window_id=window.id,
        attach=attach,
        capture=capture,
    )


def disable(
    flag: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Close the window now; return whether a flag was there.

    :raises FlagWriteError: when the flag exists and cannot be removed.
    """
    env = os.environ if environ is None else environ
    store = open_store(resolve_flag(flag, env))
    existed = store.clear()
    if existed:
        # Closing must work whatever the environment holds.
        by = _operator(env, strict=False)
        Auditor(store.append_audit)("window.disabled", by=by)
    return existed


def status(
    flag: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Status:
    """Read the flag and judge it as the middleware would (format, file
    permissions, ``IPDEBUG_MAX_WINDOW``). A flag the middleware would refuse
    is reported with ``enabled=False`` and ``problem`` set.
    """
    env = os.environ if environ is None else environ
    store = open_store(resolve_flag(flag, env))
    location = store.location  # a URL's password is redacted here
    now = time.time()
    try:
        window = store.load(now)
    except FlagError as exc:
        return Status(enabled=False, flag=location, problem=exc.problem)
    if window is None:
        return Status(enabled=False, flag=location)
    end = window.expires(max_window(env))
    until = datetime.fromtimestamp(end, timezone.utc)
    common = {
        "flag": location,
        "allow": window.allow,
        "reason": window.reason,
        "by": window.by,
        "attach": window.attach,
        "capture": window.capture,
    }
    if now >= end:
        return Status(enabled=False, expired_at=until, **common)  # type: ignore[arg-type]
    return Status(enabled=True, until=until, remaining_s=round(end - now, 1), **common)  # type: ignore[arg-type]


def max_window(environ: Mapping[str, str]) -> float:
    """The deployment's ceiling from ``IPDEBUG_MAX_WINDOW`` (default 1h)."""
    raw = environ.get("IPDEBUG_MAX_WINDOW")
    if not raw:
        return DEFAULT_MAX_WINDOW
    return parse_duration(raw, setting="IPDEBUG_MAX_WINDOW")


def ssh_client_address(environ: Mapping[str, str]) -> str:
    """The address of the SSH client of this session.

    :raises ConfigError: when neither ``SSH_CLIENT`` nor ``SSH_CONNECTION``
        holds one.
    """
    for var in ("SSH_CLIENT", "SSH_CONNECTION"):
        value = environ.get(var, "")
        addr = parse_address(value.split()[0]) if value.split() else None
        if addr is not None:
            return str(addr)
    raise ConfigError(
        "--allow",
        SSH_KEYWORD,
        "needs SSH_CLIENT or SSH_CONNECTION, which are not set in this shell "
        "(not an SSH session, or sudo dropped them: try sudo --preserve-env=SSH_CLIENT); "
        "give your address instead",
    )


def _expand_allow(
    allow: Iterable[str] | str | None, env: Mapping[str, str]
) -> tuple[str, ...]:
    if allow is None:
        return ()
    items = split_list(allow) if isinstance(allow, str) else [i.strip() for i in allow]
    expanded = [
        ssh_client_address(env) if i.lower() == SSH_KEYWORD else i for i in items
    ]
    # Window.new validates each entry, naming the bad one.
    return tuple(dict.fromkeys(i for i in expanded if i))


def _everyone(addresses: tuple[str, ...]) -> list[str]:
    """The entries of a window's allowlist that are everyone in practice."""
    if not addresses:
        return []
    networks = Networks(addresses, setting="--allow")  # names a bad entry
    return [entry for entry in networks.entries if covers_everyone(entry)]


#: Where the operator's name comes from, in getpass.getuser()'s order.
_LOGIN_VARIABLES = ("LOGNAME", "USER", "LNAME", "USERNAME")
_MAX_NAME = 100


def _operator(env: Mapping[str, str], *, strict: bool = True) -> str:
    """Who opens or closes the window, for the flag's ``by`` and the audit
    trail: the login name, the sudo user and the SSH client's address.

    :param strict: raise for an environment value that is not printable
        text (``by`` must be, or every middleware refuses the flag); when
        false, such a value is escaped instead (``disable`` must never fail
        for it).
    :raises ConfigError: naming the variable and its value.
    """
    user = None
    for var in _LOGIN_VARIABLES:
        if env.get(var):
            user = _env_text(env, var, strict)
            break
    if user is None:
        try:
            user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            user = f"uid {os.geteuid()}"
    ssh = _env_text(env, "SSH_CLIENT", strict).split()
    sudo = _env_text(env, "SUDO_USER", strict)
    who = f"{sudo} as {user}" if sudo and sudo != user else user
    return f"{who} from {ssh[0]}" if ssh else who


def _env_text(env: Mapping[str, str], var: str, strict: bool) -> str:
    value = env.get(var, "")
    if value.isprintable() and len(value) <= _MAX_NAME:
        return value
    if strict:
        raise ConfigError(
            var,
            value,
            f"must be printable text of at most {_MAX_NAME} characters (it is "
            "recorded in the flag and the audit trail); fix or unset it in this "
            "shell",
        )
    return ascii(value)[:_MAX_NAME]
