"""The gate: who gets the debugger, and for which requests.

A request is gated in when a window is open (:mod:`ipdebug.switch`), its
client address is allowed and its ``Host`` is trusted. Each rule is a small
pure function with its own table test; :mod:`ipdebug.gate.decisions`
combines them and caches the answers per window.

- :mod:`ipdebug.gate.address`: client addresses, allowlists
  (:class:`Networks`) and the walk through trusted proxies
  (:func:`resolve_client`);
- :mod:`ipdebug.gate.hosts`: the trusted ``Host`` check;
- :mod:`ipdebug.gate.crosssite`: whether a request comes from a page of
  another site (such a request is not gated in);
- :mod:`ipdebug.gate.decisions`: :class:`WindowGate`, the decisions for one
  window.

At run time the gate imports nothing of ipdebug's but its own modules, the
errors and the audit log, so that everything else can build on it.
"""

from __future__ import annotations

from .address import Networks, parse_address, resolve_client
from .crosssite import is_cross_site
from .decisions import WindowGate, make_window_gate
from .hosts import DEFAULT_TRUSTED_HOSTS, host_is_trusted, parse_trusted_hosts

__all__ = [
    "DEFAULT_TRUSTED_HOSTS",
    "Networks",
    "WindowGate",
    "host_is_trusted",
    "is_cross_site",
    "make_window_gate",
    "parse_address",
    "parse_trusted_hosts",
    "resolve_client",
]
