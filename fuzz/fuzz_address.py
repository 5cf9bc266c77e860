"""Fuzz the client-address resolver (:mod:`ipdebug.gate.address`).

Run it alone with ``python fuzz/fuzz_address.py -max_total_time=60 [CORPUS]``
(any libFuzzer flag works), or all harnesses with ``python fuzz/run.py``.

The input is UTF-8 text (invalid bytes become lone surrogates), one
``name=value`` per line, so that seeds and reproducers can be read:

==============  ==========================================================
``remote=``     ``REMOTE_ADDR``
``xff=``        ``HTTP_X_FORWARDED_FOR``
``fwd=``        ``HTTP_FORWARDED``
``proxies=``    ``trusted_proxies``, comma separated; entries that
                :class:`~ipdebug.gate.address.Networks` refuses are dropped;
                without this line the request is resolved with no proxies
``NAME:b=``     the same environ key, holding bytes instead of a string
==============  ==========================================================

Every request is resolved without proxies too. Every value, and the whole
input, also goes to ``parse_address``, ``parse_hop`` and ``forwarded_for``.
Nothing may raise, and every address returned must be a normalised
``IPv4Address``/``IPv6Address``: never IPv4-mapped, never ``0.0.0.0``/``::``.
"""

from __future__ import annotations

import ipaddress
import sys

import atheris

with atheris.instrument_imports(include=["ipdebug"]):
    from ipdebug.errors import ConfigError
    from ipdebug.gate.address import (
        Networks,
        forwarded_for,
        forwarded_from_right,
        parse_address,
        parse_hop,
        resolve_client,
    )

_ENVIRON_KEYS = {
    "remote": "REMOTE_ADDR",
    "xff": "HTTP_X_FORWARDED_FOR",
    "fwd": "HTTP_FORWARDED",
}


def _check_address(addr: object, what: str) -> None:
    """The promise every function of the module makes about what it returns."""
    if addr is None:
        return
    if not isinstance(addr, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise AssertionError(f"{what} returned {addr!r}, not an IP address")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise AssertionError(f"{what} returned the IPv4-mapped {addr!r}")
    if addr.is_unspecified:
        raise AssertionError(f"{what} returned the unspecified {addr!r}")


def _check_membership(addr: object, nets: Networks) -> None:
    """``addr in nets`` must agree with :mod:`ipaddress` on the same networks."""
    if not isinstance(addr, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return
    expected = any(addr in ipaddress.ip_network(e) for e in nets.entries)
    if (addr in nets) != expected:
        raise AssertionError(f"{addr!r} in {nets!r} is {not expected}")


def _networks(value: str) -> Networks:
    kept = []
    for entry in value.split(","):
        try:
            Networks([entry], setting="trusted_proxies")
        except ConfigError:
            continue
        kept.append(entry)
    return Networks(kept, setting="trusted_proxies")


def check_strings(text: str) -> None:
    """``parse_address``, ``parse_hop`` and ``forwarded_for`` on one string."""
    addr = parse_address(text)
    _check_address(addr, f"parse_address({text!r})")
    if addr is not None:
        # The canonical form parses back to the same address.
        again = parse_address(str(addr))
        if again != addr:
            raise AssertionError(f"parse_address({str(addr)!r}) is {again!r}")
        # A bare address is a valid hop, with the same meaning (parse_hop
        # strips spaces first, which may empty a zone id: "fe80::1% ").
        hop = parse_hop(text)
        if text == text.strip() and hop != addr:
            raise AssertionError(f"parse_hop({text!r}) is {hop!r}, not {addr!r}")
    _check_address(parse_hop(text), f"parse_hop({text!r})")
    hops = forwarded_for(text)
    if hops is not None:
        if not isinstance(hops, list) or not all(isinstance(h, str) for h in hops):
            raise AssertionError(f"forwarded_for({text!r}) returned {hops!r}")
        for hop_text in hops:
            _check_address(parse_hop(hop_text), f"parse_hop({hop_text!r})")


def check_request(environ: dict[str, object], proxies: Networks | None) -> None:
    """``resolve_client`` on one request, against the rules of the README."""
    what = f"resolve_client({environ!r}, {proxies!r})"
    client = resolve_client(environ, proxies)
    _check_address(client, what)
    peer = parse_address(environ.get("REMOTE_ADDR"))
    if proxies is None or not proxies or peer is None or peer not in proxies:
        # Forwarding headers are read only from a trusted proxy.
        if client != peer:
            raise AssertionError(f"{what} is {client!r}, not the peer {peer!r}")
        return
    _check_membership(peer, proxies)
    if client is None:
        return
    _check_membership(client, proxies)
    # The client is the first hop from the right that is not a proxy.
    if client in proxies:
        raise AssertionError(f"{what} is the trusted proxy {client!r}")
    xff = environ.get("HTTP_X_FORWARDED_FOR")
    fwd = environ.get("HTTP_FORWARDED")
    if xff is not None and fwd is not None:
        raise AssertionError(f"{what} is {client!r} with both headers")
    if isinstance(xff, str):
        hops: list[str] = xff.split(",")
    elif isinstance(fwd, str):
        # Read from the right: a malformed element left of the client is
        # never read, so only the elements up to the client are hops.
        hops = [h for h in forwarded_from_right(fwd) if h is not None]
    else:
        raise AssertionError(f"{what} is {client!r} without a header")
    if client not in (parse_hop(h) for h in hops):
        raise AssertionError(f"{what} is {client!r}, which is in no hop")


def TestOneInput(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    check_strings(text)
    environ: dict[str, object] = {}
    proxies: Networks | None = None
    for line in text.split("\n"):
        name, sep, value = line.partition("=")
        if not sep:
            continue
        check_strings(value)
        key = _ENVIRON_KEYS.get(name.removesuffix(":b"))
        if key is not None:
            environ[key] = (
                value.encode("utf-8", "surrogateescape")
                if name.endswith(":b")
                else value
            )
        elif name == "proxies":
            proxies = _networks(value)
    check_request(environ, None)
    if proxies is not None:
        check_request(environ, proxies)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
