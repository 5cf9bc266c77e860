"""The gate: does this request, during this window, get the debugger?

All of these must hold:

- the client address (see :func:`~ipdebug.gate.address.resolve_client`) is
  in the deployment's ``allow`` and in the window's own allowlist, where
  each is set (with only one set, that one decides; with neither, nobody);
- the ``Host`` header is trusted.

A :class:`WindowGate` is built once per window and caches its decisions per
input, so repeated requests cost a dictionary lookup whatever the size of
the allowlists. The cache key is everything the decision reads, so no state
leaks from one client to another, and nothing more: ``REMOTE_ADDR`` alone
unless it is a trusted proxy, and then also the forwarding headers (at most
:data:`~ipdebug.gate.address.MAX_FORWARDED_LENGTH` characters each; longer is
denied). The caches are bounded in entries, and the one holding headers in
bytes too (:data:`CACHE_BYTES`).
"""

from __future__ import annotations

import enum
import logging
import sys
import typing as t
from collections.abc import Callable, Mapping

from ..audit import LogOnce
from .address import MAX_FORWARDED_LENGTH, parse_address, resolve_client
from .hosts import host_is_trusted

if t.TYPE_CHECKING:
    # Annotations only: at run time the gate depends on nothing of
    # ipdebug's but its own modules and the audit log, so that the
    # configuration and the stores (which use the gate's address parsing)
    # can import it without a cycle.
    from ..config import Settings
    from ..stores import Window

#: Cached decisions per window, per cache; a cache is emptied when full.
CACHE_SIZE = 4096
#: The most memory the per-request keys of the forwarded-decision cache may
#: hold, in bytes: each key carries up to two forwarding headers of
#: :data:`~ipdebug.gate.address.MAX_FORWARDED_LENGTH` characters.
CACHE_BYTES = 1 << 20
#: Longer ``REMOTE_ADDR`` or ``Host`` values are decided every time, never
#: cached (no address is this long; a DNS name is at most 253 characters).
_MAX_CACHED_KEY = 300
#: What a key costs beyond its strings: the tuple and the dict slot.
_KEY_OVERHEAD = 160

_Key = object


class _Peer(enum.Enum):
    """A peer-cache entry: the peer is a trusted proxy, so the decision
    depends on its forwarding headers."""

    PROXY = 0


class WindowGate:
    """The decisions for one window. See the module documentation."""

    __slots__ = (
        "_allow",
        "_decisions",
        "_flag_allow",
        "_forwarded_bytes",
        "_forwarded_decisions",
        "_host_decisions",
        "_hosts",
        "_log_once",
        "_nobody",
        "_on_forwarded",
        "_proxies",
        "window",
    )

    def __init__(
        self,
        settings: Settings,
        window: Window,
        log_once: LogOnce,
        on_forwarded: Callable[[str], None] | None = None,
    ) -> None:
        self.window = window
        self._on_forwarded = on_forwarded
        self._allow = settings.allow
        self._flag_allow = window.networks
        self._proxies = settings.trusted_proxies
        self._hosts = settings.trusted_hosts
        self._log_once = log_once
        self._nobody = not self._allow and not self._flag_allow
        # Per REMOTE_ADDR: the decision, or PROXY for a trusted proxy.
        self._decisions: dict[_Key, str | _Peer | None] = {}
        # Per (REMOTE_ADDR, X-Forwarded-For, Forwarded) of trusted proxies.
        self._forwarded_decisions: dict[_Key, str | None] = {}
        self._forwarded_bytes = 0
        self._host_decisions: dict[str, bool] = {}

    @property
    def cached_bytes(self) -> int:
        """The accounted size of the forwarded-decision keys (for tests and
        benchmarks; at most :data:`CACHE_BYTES`)."""
        return self._forwarded_bytes

    def client(self, environ: Mapping[str, object]) -> str | None:
        """The client address when the request is gated in, else ``None``.

        The peer decides first, so a peer that is not a trusted proxy is
        decided (and cached) by ``REMOTE_ADDR`` alone: its forwarding
        headers are never read, and its cost does not depend on them.
        """
        if self._nobody:
            return None
        environ_get = environ.get
        remote = environ_get("REMOTE_ADDR")
        try:
            client = self._decisions[remote]
        except (KeyError, TypeError):  # TypeError: an unhashable environ value
            client = self._decide_peer(environ, remote)
        if client is _Peer.PROXY:
            client = self._forwarded(environ, remote)
        if client is None:
            return None
        host = environ_get("HTTP_HOST")
        trusted = self._host_decisions.get(host)  # type: ignore[call-overload]
        if trusted is None:
            trusted = host_is_trusted(host, self._hosts)
            if isinstance(host, str) and len(host) <= _MAX_CACHED_KEY:
                if len(self._host_decisions) >= CACHE_SIZE:
                    self._host_decisions.clear()
                self._host_decisions[host] = trusted
        if not trusted:
            self._log_once(
                logging.WARNING,
                f"ipdebug refused the debugger to allowed client {client} because "
                f"Host {host!r} is not trusted; if that is this server's name, add "
                "it to trusted_hosts (IPDEBUG_TRUSTED_HOSTS)",
            )
            return None
        return client

    def _decide_peer(
        self, environ: Mapping[str, object], remote: object
    ) -> str | _Peer | None:
        proxies = self._proxies
        if proxies:
            peer = parse_address(remote)
            decision: str | _Peer | None = (
                _Peer.PROXY
                if peer is not None and peer in proxies
                else self._decide(environ)
            )
        else:
            decision = self._decide(environ)
        if isinstance(remote, str) and len(remote) <= _MAX_CACHED_KEY:
            if len(self._decisions) >= CACHE_SIZE:
                self._decisions.clear()
            self._decisions[remote] = decision
        return decision

    def _forwarded(self, environ: Mapping[str, object], remote: object) -> str | None:
        """The decision for a request from a trusted proxy, cached by the
        headers it is made from, bounded in entries and bytes."""
        environ_get = environ.get
        xff = environ_get("HTTP_X_FORWARDED_FOR")
        fwd = environ_get("HTTP_FORWARDED")
        if (isinstance(xff, str) and len(xff) > MAX_FORWARDED_LENGTH) or (
            isinstance(fwd, str) and len(fwd) > MAX_FORWARDED_LENGTH
        ):
            self._log_once(
                logging.WARNING,
                "ipdebug denied a request from a trusted proxy whose "
                "X-Forwarded-For or Forwarded header is longer than "
                f"{MAX_FORWARDED_LENGTH} characters",
            )
            return None
        if not (xff is None or isinstance(xff, str)) or not (
            fwd is None or isinstance(fwd, str)
        ):
            return self._decide(environ)  # denied; not cached (unbounded bytes)
        key = (remote, xff, fwd)
        decisions = self._forwarded_decisions
        try:
            return decisions[key]
        except KeyError:
            pass
        client = self._decide(environ)
        size = _KEY_OVERHEAD + sum(sys.getsizeof(part) for part in key)
        if len(decisions) >= CACHE_SIZE or self._forwarded_bytes + size > CACHE_BYTES:
            decisions.clear()
            self._forwarded_bytes = 0
        decisions[key] = client
        self._forwarded_bytes += size
        return client

    def _decide(self, environ: Mapping[str, object]) -> str | None:
        if (
            self._on_forwarded is not None
            and self._proxies is None
            and ("HTTP_X_FORWARDED_FOR" in environ or "HTTP_FORWARDED" in environ)
        ):
            # A proxy ipdebug was not told about, probably: once per window.
            on_forwarded, self._on_forwarded = self._on_forwarded, None
            on_forwarded(str(environ.get("REMOTE_ADDR")))
        addr = resolve_client(environ, self._proxies)
        if addr is None:
            if parse_address(environ.get("REMOTE_ADDR")) is None:
                self._log_once(
                    logging.WARNING,
                    "ipdebug denied a request whose REMOTE_ADDR is not an IP address "
                    "(a unix socket or PROXY protocol LOCAL connection); serve the "
                    "app on TCP or behind a proxy listed in trusted_proxies",
                )
            else:
                self._log_once(
                    logging.WARNING,
                    "ipdebug denied a request from "
                    f"{environ.get('REMOTE_ADDR')}, a trusted proxy, whose forwarding "
                    "header was missing, malformed, doubled (X-Forwarded-For and "
                    "Forwarded) or listed only trusted proxies; if clients reach the "
                    "app directly (no proxy in front), unset trusted_proxies "
                    "(IPDEBUG_TRUSTED_PROXIES); if this is your proxy, have it append "
                    "X-Forwarded-For",
                )
            return None
        if self._allow is not None and addr not in self._allow:
            return None
        if self._flag_allow is not None and addr not in self._flag_allow:
            return None
        return str(addr)


def make_window_gate(
    settings: Settings,
    window: Window,
    log_once: LogOnce,
    on_forwarded: Callable[[str], None] | None = None,
) -> WindowGate:
    """Build the gate for a newly opened window, logging a window that
    nobody can use.

    :param on_forwarded: called (once per window) with the peer address of
        the first request carrying a forwarding header while
        ``trusted_proxies`` is unset.
    """
    gate = WindowGate(settings, window, log_once, on_forwarded)
    if not settings.allow and not window.networks:
        log_once(
            logging.WARNING,
            f"ipdebug window {window.id[:8]} is open but neither the deployment "
            "(allow, IPDEBUG_ALLOW) nor the window (ipdebug enable --allow) lists "
            "any address: nobody gets the debugger",
        )
    return gate
