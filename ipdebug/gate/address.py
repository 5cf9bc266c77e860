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
from collections.abc import Iterable, Iterator, Mapping

from ..errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_UNSPECIFIED = (ipaddress.IPv4Address(0), ipaddress.IPv6Address(0))
_ZONE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
#: HTTP's own whitespace; ``str.strip()`` would also remove Unicode spaces
#: that make an entry malformed.
_HTTP_SPACE = " \t"
#: An RFC 9110 token: the name of a ``Forwarded`` parameter.
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", re.ASCII)

#: The longest ``X-Forwarded-For`` or ``Forwarded`` value ipdebug reads, in
#: characters (WSGI strings hold one byte per character). Ten hops of
#: ``[IPv6]:port`` take about 500 in ``X-Forwarded-For`` and, with ``by=``,
#: ``proto=`` and ``host=``, about 1,500 in ``Forwarded``; a longer value
#: means *denied*. It also bounds what the gate caches per request.
MAX_FORWARDED_LENGTH = 2048


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
    to right, or ``None`` when an element is malformed or has no ``for=``
    (a hop we cannot account for). The whole header is read; the gate reads
    only as far as it needs, with :func:`forwarded_from_right`.
    """
    hops: list[str] = []
    for hop in forwarded_from_right(value):
        if hop is None:
            return None
        hops.append(hop)
    hops.reverse()
    return hops


def forwarded_from_right(value: str) -> Iterator[str | None]:
    """Yield the ``for=`` values of a ``Forwarded`` header from the right,
    one element at a time, and ``None`` (then stop) for a malformed element.

    Elements end at commas outside quoted strings, quotes being paired from
    the right, so reading the last element costs the same whatever the
    client wrote to the left of it. An element holding a backslash is
    malformed: RFC 7239 allows quoted-pairs, but no address needs one, and
    without them quotes pair the same way from either end.
    """
    end = len(value)
    while True:
        start = _part_start(value, end, ",")
        if start < 0:
            yield None
            return
        hop = _element_for(value[start:end])
        yield hop
        if hop is None or start == 0:
            return
        end = start - 1


def _part_start(value: str, end: int, sep: str) -> int:
    """Where the last ``sep``-separated part of ``value[:end]`` starts
    (quotes paired from the right), or -1 for an unclosed quote. The scan
    never goes left of that part's separator.
    """
    while True:
        found = value.rfind(sep, 0, end)
        quote = value.rfind('"', found + 1, end)
        if quote == -1:
            return found + 1
        end = value.rfind('"', 0, quote)
        if end == -1:
            return -1


def _element_for(element: str) -> str | None:
    """The ``for=`` value of one element, or ``None`` when it has none, has
    two, or a pair that is not ``token=value`` or ``token="quoted"`` (with
    spaces and tabs allowed around ``=`` and ``;``)."""
    if "\\" in element:
        return None
    found: str | None = None
    end = len(element)
    while True:
        start = _part_start(element, end, ";")
        if start < 0:
            return None
        name, sep, raw = element[start:end].partition("=")
        name = name.strip(_HTTP_SPACE)
        raw = raw.strip(_HTTP_SPACE)
        if not sep or not _TOKEN_RE.fullmatch(name):
            return None
        if raw.startswith('"'):
            if len(raw) < 2 or not raw.endswith('"') or '"' in raw[1:-1]:
                return None
            text: str | None = raw[1:-1]
        else:
            text = None if '"' in raw else raw
        if text is None:
            return None
        if name.lower() == "for":
            if found is not None or not (text or raw):
                return None
            found = text
        if start == 0:
            return found
        end = start - 1


def resolve_client(
    environ: Mapping[str, object], trusted_proxies: Networks | None
) -> IPAddress | None:
    """Return the client's address for this request, or ``None`` to deny.

    Without ``trusted_proxies`` the client is ``REMOTE_ADDR`` and forwarding
    headers are ignored. With them, and only when ``REMOTE_ADDR`` is a trusted
    proxy, ``X-Forwarded-For`` (or ``Forwarded: for=``) is walked from the
    right, skipping trusted proxies; the client is the first address that is
    not one, and nothing left of it is read. A malformed entry on the way, a
    header longer than :data:`MAX_FORWARDED_LENGTH`, both headers at once, or
    a chain made only of proxies gives ``None``.
    """
    peer = parse_address(environ.get("REMOTE_ADDR"))
    if peer is None or not trusted_proxies or peer not in trusted_proxies:
        return peer
    xff = environ.get("HTTP_X_FORWARDED_FOR")
    fwd = environ.get("HTTP_FORWARDED")
    if xff is not None and fwd is not None:
        return None
    header = fwd if xff is None else xff
    if not isinstance(header, str) or len(header) > MAX_FORWARDED_LENGTH:
        return None
    hops = _xff_from_right(header) if xff is not None else forwarded_from_right(header)
    for hop in hops:
        addr = None if hop is None else parse_hop(hop)
        if addr is None:
            return None
        if addr not in trusted_proxies:
            return addr
    return None


def _xff_from_right(value: str) -> Iterator[str]:
    end = len(value)
    while True:
        start = value.rfind(",", 0, end) + 1
        yield value[start:end]
        if start == 0:
            return
        end = start - 1
