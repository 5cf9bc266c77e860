"""Client addresses: parsing, allowlists and proxy chains.

These are small pure functions with no WSGI in them, so that each rule can be
tested on its own with a table of attack rows.

Addresses are normalised before they are compared:

- an IPv4-mapped IPv6 address (``::ffff:203.0.113.7``) is the IPv4 address;
- a zone id (``fe80::1%eth0``) is dropped, so a link-local address matches
  the allowlist entry without a zone (allowlist entries may not carry one);
- anything that is not an IP address (``""``, ``None``, ``localhost``,
  a unix socket path) is no address, and ``0.0.0.0``/``::`` (what uWSGI
  reports for unix sockets) are no address either.

**Security:** forwarding headers are read only when the peer is a configured
proxy, and only from the right, one trusted hop at a time. Everything to the
left of the first untrusted address was written by the client and is never
read.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping

from .errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_UNSPECIFIED = (ipaddress.IPv4Address(0), ipaddress.IPv6Address(0))
_ZONE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
#: HTTP's own whitespace; ``str.strip()`` would also remove Unicode spaces
#: that make an entry malformed.
_HTTP_SPACE = " \t"


def parse_address(value: object) -> IPAddress | None:
    """Return the normalised IP address in ``value``, or ``None`` when it is
    not exactly one IP address.

    >>> parse_address("::ffff:203.0.113.7")
    IPv4Address('203.0.113.7')
    >>> parse_address("localhost") is None
    True
    """
    if not isinstance(value, str) or not value or len(value) > 128:
        return None
    text = value
    if "%" in text:
        text, _, zone = text.partition("%")
        # A zone id is an interface name or number, never an address part.
        if ":" not in text or not _ZONE_RE.fullmatch(zone):
            return None
    try:
        addr: IPAddress = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr in _UNSPECIFIED:
        return None
    return addr


def parse_hop(value: str) -> IPAddress | None:
    """Parse one entry of ``X-Forwarded-For`` or one ``for=`` value of
    ``Forwarded`` (already unquoted): a bare address, ``1.2.3.4:port`` or
    ``[v6]`` with an optional ``:port``. Anything else, including RFC 7239
    ``unknown`` and obfuscated ``_identifiers``, is ``None``.
    """
    text = value.strip(_HTTP_SPACE)
    if text.startswith("["):
        end = text.find("]")
        if end == -1 or not _is_port_suffix(text[end + 1 :]):
            return None
        inner = text[1:end]
        return parse_address(inner) if ":" in inner else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _is_port_suffix(":" + port):
            return None
        text = host
    return parse_address(text)


def _is_port_suffix(text: str) -> bool:
    if not text:
        return True
    port = text[1:]
    return (
        text[0] == ":"
        and port.isascii()
        and port.isdigit()
        and len(port) <= 5
        and int(port) <= 65535
    )


class Networks:
    """A set of IP networks with membership tests whose cost does not grow
    with the number of networks (one set lookup per distinct prefix length).

    :param entries: addresses and CIDR networks, IPv4 and IPv6.
    :param setting: the name used in error messages.
    :raises ConfigError: naming the first entry that is not an address or
        network.

    >>> nets = Networks(["10.8.0.0/16", "2001:db8::1"], setting="allow")
    >>> parse_address("10.8.3.4") in nets
    True
    """

    __slots__ = ("_v4", "_v6", "entries")

    def __init__(self, entries: Iterable[str], *, setting: str) -> None:
        by_len: dict[tuple[int, int], set[int]] = {}
        normalised: list[str] = []
        for entry in entries:
            net = _parse_network(entry, setting)
            bits = net.max_prefixlen
            shift = bits - net.prefixlen
            by_len.setdefault((bits, shift), set()).add(
                int(net.network_address) >> shift
            )
            normalised.append(str(net) if net.prefixlen != bits else str(net[0]))
        self.entries: tuple[str, ...] = tuple(normalised)
        # Longest prefixes first: single addresses are the common case.
        self._v4 = tuple(
            (shift, frozenset(nets))
            for (bits, shift), nets in sorted(by_len.items())
            if bits == 32
        )
        self._v6 = tuple(
            (shift, frozenset(nets))
            for (bits, shift), nets in sorted(by_len.items())
            if bits == 128
        )

    def __contains__(self, addr: object) -> bool:
        if isinstance(addr, ipaddress.IPv4Address):
            groups = self._v4
        elif isinstance(addr, ipaddress.IPv6Address):
            groups = self._v6
        else:
            return False
        value = int(addr)
        return any((value >> shift) in nets for shift, nets in groups)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Networks({list(self.entries)!r})"


def _parse_network(
    entry: object, setting: str
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(entry, str):
        raise ConfigError(setting, entry, "is not a string")
    text = entry.strip()
    if "%" in text:
        raise ConfigError(
            setting, entry, "has a zone id; list the address without '%zone'"
        )
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            raise ConfigError(
                setting,
                entry,
                "has host bits set; use the network address "
                f"({ipaddress.ip_network(text, strict=False)})",
            ) from None
        raise ConfigError(setting, entry, "is not an IP address or network") from None
    if isinstance(net, ipaddress.IPv6Network):
        mapped = net.network_address.ipv4_mapped
        if mapped is not None and net.prefixlen >= 96:
            # Clients are normalised to IPv4, so the entry must be too.
            return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


def forwarded_for(value: str) -> list[str] | None:
    """Return the ``for=`` values of an RFC 7239 ``Forwarded`` header, left
    to right, or ``None`` when the header is malformed or an element has no
    ``for=`` (a hop we cannot account for).
    """
    hops: list[str] = []
    for element in _split_unquoted(value, ","):
        found: str | None = None
        for pair in _split_unquoted(element, ";"):
            name, sep, raw = pair.strip(_HTTP_SPACE).partition("=")
            if not sep:
                return None
            if name.strip(_HTTP_SPACE).lower() != "for":
                continue
            if found is not None:
                return None
            unquoted = _unquote(raw.strip(_HTTP_SPACE))
            if unquoted is None:
                return None
            found = unquoted
        if found is None:
            return None
        hops.append(found)
    return hops


def _split_unquoted(value: str, sep: str) -> list[str]:
    parts: list[str] = []
    start = 0
    quoted = False
    escaped = False
    for i, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    # An unclosed quote is malformed: return one part that _unquote rejects.
    return ['"'] if quoted else parts


def _unquote(value: str) -> str | None:
    if not value.startswith('"'):
        return value if '"' not in value and value else None
    if len(value) < 2 or not value.endswith('"'):
        return None
    inner = value[1:-1]
    out: list[str] = []
    escaped = False
    for char in inner:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return None
        else:
            out.append(char)
    return None if escaped else "".join(out)


def resolve_client(
    environ: Mapping[str, object], trusted_proxies: Networks | None
) -> IPAddress | None:
    """Return the client's address for this request, or ``None`` to deny.

    Without ``trusted_proxies`` the client is ``REMOTE_ADDR`` and forwarding
    headers are ignored. With them, and only when ``REMOTE_ADDR`` is a trusted
    proxy, ``X-Forwarded-For`` (or ``Forwarded: for=``) is walked from the
    right, skipping trusted proxies; the client is the first address that is
    not one. A malformed entry, both headers at once, or a chain made only of
    proxies gives ``None``.
    """
    peer = parse_address(environ.get("REMOTE_ADDR"))
    if peer is None or not trusted_proxies or peer not in trusted_proxies:
        return peer
    xff = environ.get("HTTP_X_FORWARDED_FOR")
    fwd = environ.get("HTTP_FORWARDED")
    if xff is not None and fwd is not None:
        return None
    if isinstance(xff, str):
        hops: list[str] | None = xff.split(",")
    elif isinstance(fwd, str):
        hops = forwarded_for(fwd)
    else:
        return None
    if hops is None:
        return None
    for hop in reversed(hops):
        addr = parse_hop(hop)
        if addr is None:
            return None
        if addr not in trusted_proxies:
            return addr
    return None
