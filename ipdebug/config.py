"""Settings shared by the middleware and the command line.

Each setting is a keyword argument and, when the argument is not given, an
environment variable. Readers take the environment as a mapping so that tests
and tools can pass their own. Every error names the setting and the value.

================================  ==========================  ==================
argument                          environment variable        default
================================  ==========================  ==================
``allow``                         ``IPDEBUG_ALLOW``           none (flag decides)
``flag``                          ``IPDEBUG_FLAG``            see ``default_flag``
``trusted_hosts``                 ``IPDEBUG_TRUSTED_HOSTS``   .localhost,127.0.0.1
``trusted_proxies``               ``IPDEBUG_TRUSTED_PROXIES`` none
``max_window``                    ``IPDEBUG_MAX_WINDOW``      1h
``instance``                      ``IPDEBUG_INSTANCE``        the host name
``attach_wait``                   ``IPDEBUG_ATTACH_WAIT``     30s
``engine``                        ``IPDEBUG_ENGINE``          auto
``max_captured``                  ``IPDEBUG_MAX_CAPTURED``    50
================================  ==========================  ==================
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import pwd
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from .debugger.engines import engine_setting
from .errors import ConfigError
from .gate import DEFAULT_TRUSTED_HOSTS, Networks, parse_trusted_hosts

#: The longest window anyone may open unless ``IPDEBUG_MAX_WINDOW`` says
#: otherwise, in seconds.
DEFAULT_MAX_WINDOW = 3600.0

#: The window ``ipdebug enable`` opens without ``--for``, in seconds.
DEFAULT_WINDOW = 900.0

#: How long a request waits for an external debugger (``--attach``).
DEFAULT_ATTACH_WAIT = 30.0

#: Captured errors kept per process (``enable --capture``).
DEFAULT_MAX_CAPTURED = 50

_DURATION_RE = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?", re.ASCII)
_BARE_NUMBER_RE = re.compile(r"[0-9]+", re.ASCII)

Duration = float | int | str | timedelta


def parse_duration(value: Duration, *, setting: str) -> float:
    """Return a positive duration in seconds from ``"90s"``, ``"15m"``,
    ``"1h"``, ``"1h30m"``, a number of seconds (``int`` or ``float``), or a
    ``timedelta``.

    Text needs a unit: ``"15"`` is refused, because an operator who types
    ``--for 15`` means minutes as often as seconds, and a window of the
    wrong length fails silently (it is over before the page is reloaded, or
    stays open four times longer than meant). Numbers from Python code are
    seconds, as documented.

    :raises ConfigError: for anything else, zero or a negative value.
    """
    seconds: float
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ConfigError(setting, value, "is not a duration")
    elif isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf  # refused below
    elif isinstance(value, str):
        text = value.strip().lower()
        match = _DURATION_RE.fullmatch(text)
        if _BARE_NUMBER_RE.fullmatch(text) and len(text) <= 32:
            raise ConfigError(
                setting,
                value,
                f"has no unit; write '{text}m' for minutes, '{text}s' for "
                f"seconds or '{text}h' for hours",
            )
        if text and match is not None and len(text) <= 32:
            hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
            seconds = float(hours * 3600 + minutes * 60 + secs)
        else:
            raise ConfigError(
                setting, value, "is not a duration; use e.g. '90s', '15m' or '1h'"
            )
    else:
        raise ConfigError(setting, value, "is not a duration")
    if not 0 < seconds < 366 * 86400:
        raise ConfigError(setting, value, "must be more than 0 and less than a year")
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` -> ``"1h30m"``; the inverse of :func:`parse_duration`."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n
    ]
    return "".join(parts) or "0s"


#: A network with a shorter prefix than this is "everyone" in practice (a
#: /8 is 1/256 of the IPv4 space: ``10.0.0.0/8`` is a real private network,
#: ``0.0.0.0/1`` is not an operator's address); ``ipdebug enable`` refuses
#: it without ``--allow-everyone``, and ``ipdebug doctor`` reports it.
EVERYONE_PREFIX = 8


def covers_everyone(network: str) -> bool:
    """Whether ``network`` (an entry of a validated allowlist, IPv4-mapped
    IPv6 already folded into IPv4) is so wide that it is everyone: a prefix
    shorter than :data:`EVERYONE_PREFIX`, IPv4 or IPv6.
    """
    return ipaddress.ip_network(network, strict=False).prefixlen < EVERYONE_PREFIX


def split_list(value: str) -> list[str]:
    """Split a comma-separated environment value, dropping empty items."""
    return [item.strip() for item in value.split(",") if item.strip()]


def default_flag(uid: int | None = None) -> str:
    """The flag path used when neither ``flag`` nor ``IPDEBUG_FLAG`` is set:
    ``~/.local/state/ipdebug/flag.json`` in the home directory of the
    effective user, looked up in the password database rather than taken from
    ``$HOME`` so that ``sudo -u app ipdebug enable`` and the app running as
    ``app`` agree.
    """
    uid = os.geteuid() if uid is None else uid
    try:
        home = pwd.getpwuid(uid).pw_dir
    except KeyError:
        home = os.path.expanduser("~")
    return os.path.join(home, ".local", "state", "ipdebug", "flag.json")


def resolve_flag(
    flag: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> str:
    """The flag location for this process: the argument, else
    ``IPDEBUG_FLAG``, else :func:`default_flag`. The middleware and every CLI
    command resolve it the same way.
    """
    if flag is None:
        flag = environ.get("IPDEBUG_FLAG") or default_flag()
    text = os.fspath(flag)
    if not text or "\0" in text:
        raise ConfigError("flag", flag, "is not a path")
    if "://" in text:
        return text
    return os.path.abspath(os.path.expanduser(text))


INSTANCE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)


def default_instance() -> str:
    """This host's name, as a fleet instance name (see ``instance``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:64]
    return name or "localhost"


def parse_instance(value: object, *, setting: str) -> str:
    """:raises ConfigError: unless 1 to 64 letters, digits, ``_ . -``."""
    if not isinstance(value, str) or not INSTANCE_RE.fullmatch(value):
        raise ConfigError(
            setting, value, "must be 1 to 64 letters, digits, '_', '.' or '-'"
        )
    return value


@dataclass(frozen=True)
class Settings:
    """Validated deployment settings (the middleware's ceiling)."""

    allow: Networks | None
    flag: str
    trusted_hosts: tuple[str, ...]
    trusted_proxies: Networks | None
    max_window: float
    instance: str
    attach_wait: float
    #: ``auto``, ``werkzeug`` or ``native`` (see :mod:`ipdebug.debugger.engines`).
    engine: str = "auto"
    max_captured: int = DEFAULT_MAX_CAPTURED


def parse_max_captured(value: object, *, setting: str) -> int:
    """:raises ConfigError: unless an integer from 1 to 1000 (a string of
    digits from the environment).
    """
    number: object = value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    if type(number) is not int or not 1 <= number <= 1000:
        raise ConfigError(setting, value, "must be an integer from 1 to 1000")
    return number


def load_settings(
    *,
    allow: Iterable[str] | str | None = None,
    flag: str | os.PathLike[str] | None = None,
    trusted_hosts: Iterable[str] | str | None = None,
    trusted_proxies: Iterable[str] | str | None = None,
    max_window: Duration | None = None,
    instance: str | None = None,
    attach_wait: Duration | None = None,
    engine: str | None = None,
    max_captured: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build :class:`Settings` from arguments, falling back to ``IPDEBUG_*``
    variables in ``environ`` (``os.environ`` by default) for each argument
    that is ``None``.

    :raises ConfigError: naming the setting and the bad value.
    """
    env = os.environ if environ is None else environ
    allow_list = _list_setting("allow", allow, env)
    proxies = _list_setting("trusted_proxies", trusted_proxies, env)
    hosts = _list_setting("trusted_hosts", trusted_hosts, env)
    if max_window is None:
        max_window = env.get("IPDEBUG_MAX_WINDOW") or DEFAULT_MAX_WINDOW
        window_setting = "IPDEBUG_MAX_WINDOW"
    else:
        window_setting = "max_window"
    if allow_list[1] == [] and allow is not None:
        raise ConfigError(
            "allow",
            allow,
            "is empty; leave it out to let each window's own allowlist decide",
        )
    return Settings(
        allow=Networks(allow_list[1], setting=allow_list[0]) if allow_list[1] else None,
        flag=resolve_flag(flag, env),
        trusted_hosts=parse_trusted_hosts(
            hosts[1] if hosts[1] is not None else DEFAULT_TRUSTED_HOSTS,
            setting=hosts[0],
        ),
        trusted_proxies=Networks(proxies[1], setting=proxies[0])
        if proxies[1]
        else None,
        max_window=parse_duration(max_window, setting=window_setting),
        instance=(
            parse_instance(instance, setting="instance")
            if instance is not None
            else parse_instance(env["IPDEBUG_INSTANCE"], setting="IPDEBUG_INSTANCE")
            if env.get("IPDEBUG_INSTANCE")
            else default_instance()
        ),
        attach_wait=parse_duration(attach_wait, setting="attach_wait")
        if attach_wait is not None
        else parse_duration(
            env.get("IPDEBUG_ATTACH_WAIT") or DEFAULT_ATTACH_WAIT,
            setting="IPDEBUG_ATTACH_WAIT",
        ),
        engine=engine_setting(engine, env),
        max_captured=parse_max_captured(max_captured, setting="max_captured")
        if max_captured is not None
        else parse_max_captured(
            env.get("IPDEBUG_MAX_CAPTURED") or DEFAULT_MAX_CAPTURED,
            setting="IPDEBUG_MAX_CAPTURED",
        ),
    )


def _list_setting(
    name: str, value: Iterable[str] | str | None, env: Mapping[str, str]
) -> tuple[str, list[str] | None]:
    """Return (name to blame in errors, list or None when unset)."""
    if value is None:
        var = f"IPDEBUG_{name.upper()}"
        raw = env.get(var)
        return (var, split_list(raw)) if raw else (var, None)
    if isinstance(value, str):
        return name, split_list(value)
    return name, list(value)


def state_directory(flag: str, name: str) -> str:
    """Where host-local sockets live (``relay``, ``attach``): a private
    directory beside a flag file, or, for a flag in Redis, one per flag URL
    in this user's default state directory.
    """
    if "://" not in flag:
        return os.path.join(os.path.dirname(flag), name)
    digest = hashlib.sha256(flag.encode()).hexdigest()[:12]
    return os.path.join(os.path.dirname(default_flag()), f"{name}-{digest}")
