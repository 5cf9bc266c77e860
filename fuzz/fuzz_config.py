"""Fuzz the setting parsers: durations, CIDR networks and trusted hosts.

Run it alone with ``python fuzz/fuzz_config.py -max_total_time=60 [CORPUS]``
(any libFuzzer flag works), or all harnesses with ``python fuzz/run.py``.

The input is UTF-8 text (invalid bytes become lone surrogates); every line is
given, as it is and split on commas, to each parser:

- ``parse_duration`` (also as a number when ``int()``/``float()`` read it);
- ``Networks`` (CIDR parsing and membership);
- ``parse_trusted_hosts``;
- ``host_is_trusted``, against the hosts of the first line when
  ``parse_trusted_hosts`` accepts it, else against the defaults.

The parsers may raise :class:`~ipdebug.errors.ConfigError` (a
``ValueError``) naming the setting, and nothing else; ``host_is_trusted``
never raises and returns a ``bool``.
"""

from __future__ import annotations

import ipaddress
import math
import sys
from datetime import timedelta

import atheris

with atheris.instrument_imports(include=["ipdebug"]):
    from ipdebug.config import parse_duration
    from ipdebug.errors import ConfigError
    from ipdebug.gate.address import Networks
    from ipdebug.gate.hosts import (
        DEFAULT_TRUSTED_HOSTS,
        host_is_trusted,
        parse_trusted_hosts,
    )

SETTING = "fuzz_setting"
_YEAR = 366 * 86400


def _config_error(exc: ConfigError, value: object) -> None:
    if type(exc) is not ConfigError or exc.setting != SETTING:
        raise AssertionError(f"{exc!r} does not name the setting {SETTING!r}")
    if exc.value is not value and exc.value != value:
        raise AssertionError(f"{exc!r} does not name the value {value!r}")


def check_duration(value: str | float | timedelta) -> None:
    try:
        seconds = parse_duration(value, setting=SETTING)
    except ConfigError as exc:
        _config_error(exc, value)
        return
    if type(seconds) is not float or not math.isfinite(seconds):
        raise AssertionError(f"parse_duration({value!r}) is {seconds!r}")
    if not 0 < seconds < _YEAR:
        raise AssertionError(f"parse_duration({value!r}) is out of range: {seconds}")


def check_networks(entries: list[str]) -> None:
    try:
        nets = Networks(entries, setting=SETTING)
    except ConfigError as exc:
        if exc.setting != SETTING or exc.value not in entries:
            raise AssertionError(f"{exc!r} names no entry of {entries!r}") from None
        return
    if len(nets) != len(entries) or bool(nets) != bool(entries):
        raise AssertionError(f"{nets!r} has not the {len(entries)} entries given")
    # Normalised entries are valid entries, and normalising is idempotent.
    again = Networks(nets.entries, setting=SETTING)
    if again.entries != nets.entries:
        raise AssertionError(f"{nets!r} normalises again to {again!r}")
    networks = [ipaddress.ip_network(e) for e in nets.entries]
    # Membership agrees with ipaddress at the edges of every network.
    probes: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for net in networks:
        first, last = int(net.network_address), int(net.broadcast_address)
        cls = type(net.network_address)
        probes.extend(
            cls(value)
            for value in (first - 1, first, last, last + 1)
            if 0 <= value < 2**net.max_prefixlen
        )
    for addr in probes:
        expected = any(addr in net for net in networks)
        if (addr in nets) != expected:
            raise AssertionError(f"{addr!r} in {nets!r} is {not expected}")


def check_trusted_hosts(entries: list[str]) -> tuple[str, ...] | None:
    try:
        hosts = parse_trusted_hosts(entries, setting=SETTING)
    except ConfigError as exc:
        if exc.setting != SETTING:
            raise AssertionError(f"{exc!r} does not name {SETTING!r}") from None
        return None
    if type(hosts) is not tuple or len(hosts) != len(entries):
        raise AssertionError(f"parse_trusted_hosts({entries!r}) is {hosts!r}")
    for name in hosts:
        if type(name) is not str or not name or name != name.lower():
            raise AssertionError(f"parse_trusted_hosts({entries!r}) is {hosts!r}")
        # Every trusted name can be reached by some Host header.
        host = name[1:] if name.startswith(".") else name
        if len(host) <= 255 and not host_is_trusted(host, hosts):
            raise AssertionError(f"Host {host!r} is not trusted by {hosts!r}")
    return hosts


def check_host(host: object, trusted: tuple[str, ...]) -> None:
    result = host_is_trusted(host, trusted)
    if type(result) is not bool:
        raise AssertionError(f"host_is_trusted({host!r}, ...) is {result!r}")


def check_line(line: str, trusted: tuple[str, ...]) -> None:
    items = line.split(",")
    check_duration(line)
    for convert in (int, float):
        try:
            number = convert(line)
        except (ValueError, OverflowError):
            continue
        check_duration(number)
        try:
            delta = timedelta(seconds=number)
        except (ValueError, OverflowError):
            continue
        check_duration(delta)
    check_networks([line])
    check_networks(items)
    check_trusted_hosts([line])
    check_trusted_hosts(items)
    for host in (line, line.strip(), *items):
        check_host(host, trusted)
        check_host(host, DEFAULT_TRUSTED_HOSTS)
        check_host(host.encode("utf-8", "surrogateescape"), trusted)


def TestOneInput(data: bytes) -> None:
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    trusted = check_trusted_hosts(lines[0].split(",")) or DEFAULT_TRUSTED_HOSTS
    for line in lines:
        check_line(line, trusted)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
