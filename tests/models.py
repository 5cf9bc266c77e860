"""An independent model of who gets the debugger, written from README.md
("Who gets the debugger", "The client address", "Configuration") for the
property tests in ``test_properties.py``. It never calls ipdebug.

Where the README is silent, the docstrings of ``ipdebug/gate/address.py`` and
``ipdebug/gate/hosts.py`` decide, and HTTP decides what they leave open. Each such
choice is marked *Ambiguous* below.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")

#: HTTP's optional whitespace (RFC 9110 section 5.6.3): space and tab.
#: *Ambiguous*: the README does not say which whitespace may surround a
#: forwarding entry; HTTP allows only these two around list items.
OWS = " \t"


def address(value: object) -> Address | None:
    """README, "The client address": ``::ffff:203.0.113.7`` is
    ``203.0.113.7``, a zone id is dropped, and ``""``, ``None``,
    ``localhost`` and ``0.0.0.0`` (anything that is not an address, and the
    unspecified ``::`` per the ``parse_address`` docstring) are no address.
    """
    if not isinstance(value, str):
        return None
    text, percent, zone = value.partition("%")
    try:
        addr: Address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # RFC 4007 section 11: "<address>%<zone_id>", for IPv6 only. README: a
    # zone id is 1 to 64 letters, digits, "_", "." or "-" (an interface name
    # or number); anything else makes the address malformed.
    if percent and (
        addr.version != 6 or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", zone, re.ASCII)
    ):
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr in _MAPPED:
        addr = ipaddress.IPv4Address(addr.packed[-4:])
    if addr.is_unspecified:
        return None
    return addr


def network(entry: str) -> Network:
    """One ``allow``/``trusted_proxies`` entry as a network that normalised
    addresses can be compared with: an entry inside ``::ffff:0:0/96`` is the
    IPv4 network it maps. *Ambiguous*: the README normalises addresses, not
    entries; ``Networks`` rejects zone ids and host bits (its docstring and
    the README's ``ValueError`` example), so does this.

    :raises ValueError: for an entry ipdebug must refuse.
    """
    text = entry.strip()
    if "%" in text:
        raise ValueError(f"{entry!r} has a zone id")
    net = ipaddress.ip_network(text, strict=True)
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED):
        low = int(net.network_address) - int(_MAPPED.network_address)
        return ipaddress.IPv4Network((low, net.prefixlen - 96))
    return net


def networks(entries: Iterable[str] | None) -> list[Network] | None:
    """``None`` for a setting that is not set (or empty)."""
    nets = [network(e) for e in entries or ()]
    return nets or None


def member(addr: Address, nets: Iterable[Network]) -> bool:
    """The naive membership test: an IPv4 address is never in an IPv6
    network and vice versa (*Ambiguous*: so ``::/0`` does not hold
    ``::ffff:10.0.0.1``, which is normalised to IPv4 first).
    """
    return any(addr.version == net.version and addr in net for net in nets)


# One entry of X-Forwarded-For or one for= value of Forwarded.

_BRACKETED = re.compile(r"\[([^\]]*)\](?::([0-9]{1,5}))?", re.ASCII)
_WITH_PORT = re.compile(r"([^:]*):([0-9]{1,5})", re.ASCII)


def hop(text: str) -> Address | None:
    """README: entries are addresses, ``1.2.3.4:80`` or ``[v6]:port``
    (RFC 7239 ``node``: ``port = 1*5DIGIT``, brackets only around IPv6).
    *Ambiguous*: RFC 7239's ``unknown``, obfuscated ``_names`` and
    obfuscated ports are not addresses, so they are malformed entries (the
    ``parse_hop`` docstring says so); a bare IPv6 address is one address,
    never an address with a port.
    """
    text = text.strip(OWS)
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:
        inner = bracketed.group(1)
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            return None
        return address(inner)
    with_port = _WITH_PORT.fullmatch(text)
    if with_port:
        try:
            ipaddress.IPv4Address(with_port.group(1))
        except ValueError:
            return None
        return address(with_port.group(1))
    return address(text)


# RFC 7239 Forwarded: elements separated by commas, pairs by semicolons,
# values tokens or quoted strings.

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR = re.compile(
    rf"[ \t]*(?P<name>{_TOKEN})[ \t]*=[ \t]*"
    r'(?:"(?P<quoted>[^"]*)"|(?P<bare>[^;,"]*))[ \t]*'
)

#: README, "The client address": a forwarding header longer than this many
#: characters is denied (when it is read at all).
MAX_FORWARDED_LENGTH = 2048


def forwarded_elements(header: str) -> Iterator[str | None]:
    """The elements of a ``Forwarded`` header from the right, ``None`` for
    an unclosed quote. README: the header is read from the right and
    nothing left of the client is read, so commas are found by walking
    right to left, a ``"`` opening (from the right) a quoted string that the
    next ``"`` closes.
    """
    element: list[str] = []
    quoted = False
    for char in reversed(header):
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            yield "".join(reversed(element))
            element = []
            continue
        element.append(char)
    yield None if quoted else "".join(reversed(element))


def element_for(element: str) -> str | None:
    """The ``for=`` value of one element, or ``None`` when it cannot be
    read: no ``for=`` or two, an empty bare ``for=``, an empty pair, a pair
    that does not parse. *Ambiguous*: README says quoted-pairs (``\\``) are
    refused in an element that is read (no address needs one). Lenient where
    proxies often are: spaces and tabs around ``=`` and ``;``, and unquoted
    values holding ``:`` and ``[]`` (RFC 7239 wants them quoted).
    """
    if "\\" in element:
        return None
    found: str | None = None
    pos = 0
    while True:
        pair = _PAIR.match(element, pos)
        if pair is None:
            return None
        if pair["name"].lower() == "for":
            quoted = pair["quoted"]
            value = quoted if quoted is not None else pair["bare"]
            if found is not None or (quoted is None and not value.strip(OWS)):
                return None
            found = value
        pos = pair.end()
        if pos == len(element):
            return found
        if element[pos] != ";":
            return None
        pos += 1


def forwarded_for(header: str) -> Iterator[str | None]:
    """The ``for=`` values of a ``Forwarded`` header from the right, ending
    with ``None`` at the first element that cannot be read."""
    for element in forwarded_elements(header):
        value = None if element is None else element_for(element)
        yield value
        if value is None:
            return


# The client, the allowlists, the Host.


def client(
    environ: Mapping[str, object], proxies: list[Network] | None
) -> Address | None:
    """README, "The client address": ``REMOTE_ADDR`` unless it is a trusted
    proxy; then the first address from the right of the forwarding header
    that is not a trusted proxy. A malformed entry on the way, a header
    longer than ``MAX_FORWARDED_LENGTH``, both headers, no header, or only
    proxies: no client.
    """
    peer = address(environ.get("REMOTE_ADDR"))
    if peer is None or not proxies or not member(peer, proxies):
        return peer
    present = [
        name for name in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED") if name in environ
    ]
    if len(present) != 1:
        return None
    value = environ[present[0]]
    if not isinstance(value, str) or len(value) > MAX_FORWARDED_LENGTH:
        return None
    entries: Iterable[str | None] = (
        value.split(",")[::-1]
        if present[0] == "HTTP_X_FORWARDED_FOR"
        else forwarded_for(value)
    )
    for entry in entries:
        addr = None if entry is None else hop(entry)
        if addr is None:
            return None
        if not member(addr, proxies):
            return addr
    return None


_HOST = re.compile(r"(?P<name>\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>[^:]*))?", re.S)
_NAME = re.compile(r"[a-z0-9._-]+", re.ASCII)


def trusted_host_entry(entry: str) -> str:
    """A ``trusted_hosts`` entry as it appears in a Host header (lowercase,
    an IPv6 literal in brackets)."""
    name = entry.strip().lower()
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def host_trusted(host: object, trusted: Iterable[str]) -> bool:
    """README, "Configuration": an exact name, or ``.example.com`` for the
    domain and its subdomains, compared case-insensitively, port ignored.
    *Ambiguous*: the ``host_is_trusted`` docstring says a malformed header
    is never trusted, so the port must be 1 to 65535 and the name may hold
    only host-name characters (or be a bracketed IPv6 literal).
    """
    if not isinstance(host, str):
        return False
    parts = _HOST.fullmatch(host)
    if parts is None:
        return False
    port = parts["port"]
    if port is not None and not (
        port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536
    ):
        return False
    name = parts["name"].lower()
    if name.startswith("["):
        try:
            ipaddress.IPv6Address(name[1:-1])
        except ValueError:
            return False
        if "%" in name:
            return False
    elif not _NAME.fullmatch(name):
        return False
    for entry in map(trusted_host_entry, trusted):
        if entry.startswith("."):
            if name == entry[1:] or name.endswith(entry):
                return True
        elif name == entry:
            return True
    return False


@dataclass(frozen=True)
class Deployment:
    """What the middleware was built with and what the window says."""

    allow: tuple[str, ...] | None
    window_allow: tuple[str, ...] | None
    proxies: tuple[str, ...] | None
    hosts: tuple[str, ...]

    def client_allowed(self, environ: Mapping[str, object]) -> bool:
        """README rule 2: in each allowlist that is set; nobody with none."""
        if self.allow is None and self.window_allow is None:
            return False
        addr = client(environ, networks(self.proxies))
        if addr is None:
            return False
        return all(
            member(addr, networks(entries) or [])
            for entries in (self.allow, self.window_allow)
            if entries is not None
        )

    def gated_in(self, environ: Mapping[str, object], *, window_open: bool) -> bool:
        """README "Who gets the debugger": all three rules hold."""
        return (
            window_open
            and self.client_allowed(environ)
            and host_trusted(environ.get("HTTP_HOST"), self.hosts)
        )
