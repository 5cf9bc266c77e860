"""The Host check that stops DNS-rebinding pages from reading tracebacks.

A page on ``evil.example`` whose DNS name is re-pointed at the server can make
the operator's browser send requests that pass the address check; only the
``Host`` header tells them apart. The rules follow Werkzeug's
``trusted_hosts``: an exact name, or a name with a leading dot for that domain
and its subdomains. Unlike Werkzeug, names are compared case-insensitively
(DNS is) and the default port syntax for IPv6 literals is understood.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from ..errors import ConfigError

#: Werkzeug's own default for ``DebuggedApplication.trusted_hosts``.
DEFAULT_TRUSTED_HOSTS = (".localhost", "127.0.0.1")

_NAME_RE = re.compile(r"[a-z0-9_.-]+|\[[0-9a-f:.]+\]", re.ASCII)
_HOST_RE = re.compile(
    r"(?P<name>[a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?", re.ASCII
)


def parse_trusted_hosts(entries: Iterable[str], *, setting: str) -> tuple[str, ...]:
    """Validate and normalise a list of trusted host names.

    :raises ConfigError: for an empty list (Werkzeug >= 3.1.7 would treat it
        as "every host"), a port, a wildcard or a character that cannot
        appear in a host name.
    """
    out: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ConfigError(setting, entry, "is not a string")
        name = entry.strip().lower()
        if ":" in name:
            # An IPv6 literal, bracketed or not; anything else with a colon
            # has a port. Stored the way it appears in Host.
            ok = _is_ipv6(name.removeprefix("[").removesuffix("]"))
            name = f"[{name.removeprefix('[').removesuffix(']')}]"
        else:
            ok = (
                _NAME_RE.fullmatch(name) is not None
                and name not in (".", "")
                and len(name) <= 253
            )
        if not ok:
            raise ConfigError(
                setting,
                entry,
                "is not a host name (give names like 'app.example.com' or "
                "'.example.com' for a domain and its subdomains, without port "
                "or wildcard)",
            )
        out.append(name)
    if not out:
        raise ConfigError(
            setting, list(entries), "is empty; list at least one host name"
        )
    return tuple(out)


def _is_ipv6(text: str) -> bool:
    if "%" in text:
        return False  # zone ids have no place in a Host header
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def host_is_trusted(host: object, trusted: tuple[str, ...]) -> bool:
    """Return whether the ``Host`` header value names a trusted host.
    The port is ignored; a missing or malformed header is never trusted.

    >>> host_is_trusted("App.Example.com:8443", (".example.com",))
    True
    >>> host_is_trusted("example.com.evil.test", (".example.com",))
    False
    """
    if not isinstance(host, str) or len(host) > 255:
        return False
    match = _HOST_RE.fullmatch(host.lower())
    if match is None:
        return False
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return False
    name = match.group("name")
    for ref in trusted:
        if ref.startswith("."):
            if name == ref[1:] or name.endswith(ref):
                return True
        elif name == ref:
            return True
    return False
