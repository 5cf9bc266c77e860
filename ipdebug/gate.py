"""The gate: does this request, during this window, get the debugger?

All of these must hold:

- the client address (see :func:`~ipdebug.address.resolve_client`) is in the
  deployment's ``allow`` and in the window's own allowlist, where each is set
  (with only one set, that one decides; with neither, nobody);
- the ``Host`` header is trusted.

A :class:`WindowGate` is built once per window and caches its decisions per
input (bounded), so repeated requests cost a dictionary lookup whatever the
size of the allowlists. The cache key is everything the decision reads, so
no state leaks from one client to another.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping

from .address import parse_address, resolve_client
from .audit import LogOnce
from .config import Settings
from .flag import Window
from .hosts import host_is_trusted

#: Cached decisions per window; the cache is emptied when full.
CACHE_SIZE = 4096

_Key = object


class WindowGate:
    """The decisions for one window. See the module documentation."""

    __slots__ = (
        "_allow",
        "_decisions",
        "_flag_allow",
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
        self._decisions: dict[_Key, str | None] = {}
        self._host_decisions: dict[str, bool] = {}

    def client(self, environ: Mapping[str, object]) -> str | None:
        """The client address when the request is gated in, else ``None``."""
        if self._nobody:
            return None
        environ_get = environ.get
        if self._proxies is None:
            key: _Key = environ_get("REMOTE_ADDR")
        else:
            key = (
                environ_get("REMOTE_ADDR"),
                environ_get("HTTP_X_FORWARDED_FOR"),
                environ_get("HTTP_FORWARDED"),
            )
        try:
            client = self._decisions[key]
        except (KeyError, TypeError):  # TypeError: an unhashable environ value
            client = self._decide(environ)
            if len(self._decisions) >= CACHE_SIZE:
                self._decisions.clear()
            with contextlib.suppress(TypeError):
                self._decisions[key] = client
        if client is None:
            return None
        host = environ_get("HTTP_HOST")
        trusted = self._host_decisions.get(host)  # type: ignore[call-overload]
        if trusted is None:
            trusted = host_is_trusted(host, self._hosts)
            if isinstance(host, str):
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
