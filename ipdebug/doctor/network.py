"""Who can reach the debugger: ``trusted_hosts`` against this server's
names, an ``allow`` or ``trusted_proxies`` that covers every address,
``trusted_proxies`` unset behind a reverse proxy, and set where no proxy is
(IPD020-IPD026).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping, Sequence

from ..config import Settings, covers_everyone
from ..errors import ConfigError
from ..gate import DEFAULT_TRUSTED_HOSTS, Networks, host_is_trusted
from .findings import INFO, Finding, finding

_LOCALHOST_RE = re.compile(r"(localhost|ip6-localhost|ip6-loopback)(\.localdomain)?")


def this_host_names() -> list[str]:
    """This server's names (``gethostname``, ``getfqdn``, which may wait for
    DNS), without ``localhost`` and its variants.
    """
    names = dict.fromkeys(n.lower() for n in (socket.gethostname(), socket.getfqdn()))
    return [n for n in names if n and not _LOCALHOST_RE.fullmatch(n)]


def check_settings(
    settings: Settings, where: str, hostnames: Sequence[str]
) -> list[Finding]:
    """``trusted_hosts`` against this server's names, and an ``allow`` or
    ``trusted_proxies`` that covers every address (IPD020-IPD022).
    """
    found: list[Finding] = []
    hosts = settings.trusted_hosts
    if hostnames and not any(host_is_trusted(n, hosts) for n in hostnames):
        default = hosts == DEFAULT_TRUSTED_HOSTS
        found.append(
            finding(
                "IPD020",
                None if default else INFO,
                hosts=list(hosts),
                where=where,
                names=", ".join(hostnames),
                tail="; only an SSH tunnel to localhost works" if default else "",
                name=hostnames[-1],
                excuse="you use an SSH tunnel"
                if default
                else "operators use another name (a load balancer's)",
            )
        )
    allow = settings.allow.entries if settings.allow else ()
    for entry in everyone_entries(allow):
        fix = "list only the operators' addresses in allow (IPDEBUG_ALLOW)"
        found.append(finding("IPD021", where=f"allow of {where}", entry=entry, fix=fix))
    proxies = settings.trusted_proxies.entries if settings.trusted_proxies else ()
    for entry in everyone_entries(proxies):
        found.append(finding("IPD022", where=where, entry=entry))
    return found


def window_allow(entries: Iterable[str]) -> tuple[str, ...]:
    """A window's allowlist as the gate reads it (``::ffff:0:0/96`` is
    ``0.0.0.0/0``).
    """
    try:
        return Networks(entries, setting="--allow").entries
    except ConfigError:  # the flag store refuses such a window anyway
        return ()


def everyone_entries(entries: Iterable[str]) -> list[str]:
    """Entries that are everyone in practice (as ``ipdebug enable`` judges)."""
    return [e for e in entries if covers_everyone(e)]


def _loopback(entries: Iterable[str]) -> str | None:
    for entry in entries:
        net = ipaddress.ip_network(entry, strict=False)
        if ipaddress.ip_address("127.0.0.1" if net.version == 4 else "::1") in net:
            return entry
    return None


def check_forwarding(
    settings: Settings,
    where: str,
    proxies: Sequence[str],
    records: Sequence[Mapping[str, object]],
    window_allow: Sequence[str] = (),
) -> list[Finding]:
    """``trusted_proxies`` unset while requests come through a proxy
    (IPD023), and, worse, with a loopback address allowed (IPD024).

    The evidence: a reverse proxy process on this host (``proxies``: their
    labels), or audit records marked ``"forwarded": true``. **Limits:** the
    audit trail has that field only where the middleware writes it (see the
    documentation); a proxy on another host (a load balancer) is not visible here.
    """
    if settings.trusted_proxies:
        return []
    evidence = [f"{p} runs on this host" for p in proxies[:1]]
    forwarded = [r for r in records if r.get("forwarded") is True]
    if forwarded:
        since = forwarded[0].get("time", "?")
        evidence.append(
            f"{len(forwarded)} requests in audit.log since {since} came with forwarding headers"
        )
    if not evidence:
        return []
    found = [finding("IPD023", where=where, evidence=" and ".join(evidence))]
    deployment = _loopback(settings.allow.entries if settings.allow else ())
    window = _loopback(window_allow)
    if proxies and (deployment or window):
        source = "allow" if deployment else "the open window's allowlist"
        entry = deployment or window
        found.append(
            finding("IPD024", source=source, entry=entry, where=where, proxy=proxies[0])
        )
    return found


def _overlap(entries: Iterable[str], proxies: Iterable[str]) -> tuple[str, str] | None:
    """The first (allowed entry, proxy entry) pair that share an address."""
    # A proxy entry that is everyone is IPD022's, a worse finding.
    nets = [
        ipaddress.ip_network(p, strict=False) for p in proxies if not covers_everyone(p)
    ]
    for entry in entries:
        net = ipaddress.ip_network(entry, strict=False)
        for proxy in nets:
            if net.version == proxy.version and net.overlaps(proxy):
                return entry, str(proxy)
    return None


def check_proxies(
    settings: Settings,
    where: str,
    records: Sequence[Mapping[str, object]],
    window_allow: Sequence[str] = (),
) -> list[Finding]:
    """``trusted_proxies`` set where it does not fit: an address both allowed
    and a trusted proxy (IPD025), and proxies that, by the audit trail, never
    forwarded a request while one of them sent requests without a forwarding
    header (IPD026: ``request.unforwarded`` records, and no record marked
    ``"forwarded": true``).
    """
    if not settings.trusted_proxies:
        return []
    proxies = settings.trusted_proxies.entries
    found: list[Finding] = []
    for source, entries in (
        ("allow", settings.allow.entries if settings.allow else ()),
        ("the open window's allowlist", window_allow),
    ):
        pair = _overlap(entries, proxies)
        if pair is not None:
            found.append(
                finding(
                    "IPD025", entry=pair[0], source=source, where=where, proxy=pair[1]
                )
            )
    unforwarded = [r for r in records if r.get("event") == "request.unforwarded"]
    if unforwarded and not any(r.get("forwarded") is True for r in records):
        peers = ", ".join(dict.fromkeys(str(r.get("peer")) for r in unforwarded))
        found.append(
            finding(
                "IPD026",
                where=where,
                count=len(unforwarded),
                peers=peers,
                since=unforwarded[0].get("time", "?"),
            )
        )
    return found
