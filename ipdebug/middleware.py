"""The WSGI middleware: Werkzeug's debugger for one address, for a while.

.. code-block:: python

    from ipdebug import IPDebugMiddleware

    app = IPDebugMiddleware(
        app,
        allow=["203.0.113.7", "10.8.0.0/16"],
        trusted_hosts=["app.example.com"],
        trusted_proxies=["127.0.0.1"],
    )

Then, on the server, ``ipdebug enable --for 15m --allow ssh`` opens a window
and prints a one-time PIN. Until it ends, a request is *gated in* when all of
these hold: the window is open, the client address (resolved through
``trusted_proxies`` only) is allowed by the deployment and by the window, and
the ``Host`` is trusted. Gated-in requests get Werkzeug's debugger for
unhandled exceptions. **Everybody else gets exactly what the app returns**:
same status, headers and body, exceptions propagated as without ipdebug.

**Security:** the debugger runs arbitrary Python in the server process. Keep
``allow`` to the operators' addresses, list your reverse proxies in
``trusted_proxies`` (and nothing else), and keep windows short.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import typing as t
import weakref
from datetime import datetime, timezone

from .audit import Auditor, LogOnce, logger
from .capture import Capture, Captures, Summary, is_client_error
from .config import Duration, Settings, load_settings, state_directory
from .debugger.banner import Banner
from .debugger.dispatch import Debugger
from .debugger.engines import choose
from .debugger.errorpages import ErrorPages
from .debugger.settings import DebuggerSettings
from .errors import ConfigError
from .gate import WindowGate, make_window_gate, parse_address, resolve_client
from .stash import CAPTURE_KEY, GATED_KEY
from .stores import FlagStore, Window, open_store
from .switch import Switch
from .ticker import Ticker
from .ticker import register as register_ticked

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class IPDebugMiddleware:
    """Serve Werkzeug's debugger to allowed clients while a window is open.

    Each argument left as ``None`` is read from its environment variable
    (``IPDEBUG_ALLOW``, ``IPDEBUG_FLAG``, ``IPDEBUG_TRUSTED_HOSTS``,
    ``IPDEBUG_TRUSTED_PROXIES``, ``IPDEBUG_MAX_WINDOW``; lists are comma
    separated), else takes its default.

    :param app: the WSGI application to wrap (a Flask app, or its
        ``wsgi_app``, works as is).
    :param allow: addresses and CIDR networks allowed to get the debugger;
        the deployment's ceiling. Each window may narrow it with its own list.
    :param flag: path of the enable flag written by ``ipdebug enable``.
        Default ``~/.local/state/ipdebug/flag.json`` of the effective user.
    :param trusted_hosts: ``Host`` names for which the debugger may be
        served; ``.example.com`` means the domain and its subdomains. Default
        ``[".localhost", "127.0.0.1"]`` (Werkzeug's default).
    :param trusted_proxies: addresses and networks of reverse proxies whose
        ``X-Forwarded-For``/``Forwarded`` headers are believed. Default none.
    :param evalex: ``False`` serves tracebacks without the console.
    :param console_path: path of Werkzeug's standalone console, or ``None``
        (the default) for none.
    :param max_window: the longest any window is honoured after it was
        written: seconds, a ``timedelta`` or ``"30m"``. Default one hour.
    :param max_tracebacks: tracebacks (with their local variables) kept per
        process while a window is open. Default 20.
    :param relay: forward console requests to the process that rendered
        the page, over private unix sockets beside the flag, so the console
        works under pre-forking servers (gunicorn, uWSGI). Default ``True``.
    :param instance: this server's name in a fleet behind a load balancer
        (``IPDEBUG_INSTANCE``; default: the host name). Debugger pages carry
        it in the secret, a ``X-IPDebug-Instance`` header and an
        ``ipdebug_route`` cookie, so the balancer can send console requests
        back to the instance that holds the traceback.
    :param attach_wait: how long a gated-in request waits for an external
        debugger when the window asks for one (``ipdebug enable --attach``):
        seconds or ``"30s"`` (``IPDEBUG_ATTACH_WAIT``; default 30 s).
    :param engine: what draws the debugger page and runs the console
        (``IPDEBUG_ENGINE``): ``"werkzeug"`` (Werkzeug's), ``"native"``
        (ipdebug's own; keeps the PIN and console input out of URLs, answers
        JSON to API clients) or ``"auto"`` (the default: Werkzeug's when its
        debugger internals work, else native). See :mod:`ipdebug.debugger.engines`.
    :param errors_path: where gated-in clients list and open the errors
        captured from other clients during a window opened with
        ``ipdebug enable --capture``; ``None`` turns the pages off (``ipdebug
        errors`` still lists them). Default ``/__ipdebug__/errors``.
    :param max_captured: captured errors kept per process, oldest dropped
        first (``IPDEBUG_MAX_CAPTURED``; default 50).
    :param environ: the environment to read settings from; default
        ``os.environ``.
    :raises ValueError: (:class:`~ipdebug.errors.ConfigError`) naming the
        bad setting and value.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        allow: Iterable[str] | str | None = None,
        flag: str | os.PathLike[str] | None = None,
        trusted_hosts: Iterable[str] | str | None = None,
        trusted_proxies: Iterable[str] | str | None = None,
        evalex: bool = True,
        console_path: str | None = None,
        max_window: Duration | None = None,
        max_tracebacks: int = 20,
        relay: bool = True,
        instance: str | None = None,
        attach_wait: Duration | None = None,
        engine: str | None = None,
        errors_path: str | None = "/__ipdebug__/errors",
        max_captured: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not callable(app):
            raise ConfigError("app", app, "is not a WSGI application (not callable)")
        for name, value in (("evalex", evalex), ("relay", relay)):
            if not isinstance(value, bool):
                raise ConfigError(name, value, "must be True or False")
        if console_path is not None and (
            not isinstance(console_path, str) or not console_path.startswith("/")
        ):
            raise ConfigError(
                "console_path", console_path, "must be a path starting with '/'"
            )
        if errors_path is not None and (
            not isinstance(errors_path, str)
            or not errors_path.startswith("/")
            or errors_path.endswith("/")
            or "?" in errors_path
            or errors_path == console_path
        ):
            raise ConfigError(
                "errors_path",
                errors_path,
                "must be None or a path starting with '/', not ending with '/', "
                "other than console_path",
            )
        if type(max_tracebacks) is not int or not 1 <= max_tracebacks <= 1000:
            raise ConfigError(
                "max_tracebacks", max_tracebacks, "must be an integer from 1 to 1000"
            )
        self.app = app
        self.settings: Settings = load_settings(
            allow=allow,
            flag=flag,
            trusted_hosts=trusted_hosts,
            trusted_proxies=trusted_proxies,
            max_window=max_window,
            instance=instance,
            attach_wait=attach_wait,
            engine=engine,
            max_captured=max_captured,
            environ=environ,
        )
        self.store: FlagStore = open_store(self.settings.flag)
        self._log_once = LogOnce()
        self.audit = Auditor(self.store.append_audit)
        #: The switch's ``closed_until``, copied here by the switch, so the
        #: hot path reads one attribute (not ``self.switch.closed_until``).
        self.closed_until = float("-inf")
        #: Set while no flag check is due before the ticker's next tick,
        #: which clears it: the hot path reads only this.
        self.quiet = False
        # A store may ask to be read more often (Redis: its cache).
        poll_interval = self.store.poll_interval
        self.switch = Switch(
            self.store,
            max_window=self.settings.max_window,
            on_change=self._window_changed,
            monotonic=_monotonic,
            poll_interval=poll_interval,
            publish=self._publish_closed_until,
        )
        self._ticker = Ticker(self, poll_interval)
        register_ticked(self)
        self.captures = Captures(
            self.settings.instance, self.settings.max_captured, after=self._captured
        )
        self.debugger = Debugger(
            app,
            DebuggerSettings(
                evalex=evalex,
                console_path=console_path,
                max_tracebacks=max_tracebacks,
                instance=self.settings.instance,
                banner=Banner(
                    max_window=self.settings.max_window,
                    deployment_allow=len(self.settings.allow or ()),
                ),
                relay_dir=state_directory(self.settings.flag, "relay")
                if relay
                else None,
                attach_dir=state_directory(self.settings.flag, "attach"),
                attach_wait=self.settings.attach_wait,
                errors_path=errors_path,
            ),
            store=self.store,
            audit=self.audit,
            captures=self.captures,
            gate=self,
            engine=choose(self.settings.engine),
        )
        self.errors: ErrorPages | None = self.debugger.errors
        # Bound once: put in the environ of every request not gated in.
        self._capture_hook = self.capture
        #: ``REMOTE_ADDR`` -> the client address a capture records.
        self._clients: dict[str, str] = {}
        self._gate: WindowGate | None = None
        #: Peers of denied requests without a forwarding header looked at in
        #: this window, while ``trusted_proxies`` is set; ``None`` when done.
        self._unforwarded: set[str] | None = None
        _INSTANCES.add(self)
        _connect_integrations()
        #: Whether a framework's signal receiver may hand errors over (Flask
        #: or Django is loaded): only then do requests carry the hook.
        self._hand_over = "flask" in sys.modules or "django" in sys.modules

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        # The hot path: no window open, and no flag check due before the
        # ticker's next tick (see ipdebug.ticker): one attribute read.
        if self.quiet:
            return self.app(environ, start_response)
        mono = _monotonic()
        # No window open and no flag check due.
        if self.closed_until > mono:
            self._quieten(mono)
            return self.app(environ, start_response)
        window = None
        try:
            window = self.switch.current(mono)
            client = None if window is None else self._admit(environ, window)
        except Exception:
            # Fail closed: a bug in ipdebug serves the request as without it.
            self._log_once(
                logging.ERROR,
                "ipdebug denied a request after an internal error",
                exc_info=True,
            )
            client = None
        if client is None:
            if (window is None or not window.capture) and not self.switch.changing():
                return self.app(environ, start_response)
            # Not gated in, and the window captures (or may: another thread
            # is reading the flag, and capture() asks again): record an
            # unhandled error (the integrations hand over Flask's and
            # Django's), then re-raise the very same exception.
            if self._hand_over:
                environ[CAPTURE_KEY] = self._capture_hook
            try:
                return self.app(environ, start_response)
            except Exception as exc:
                self.capture(exc, environ, skip=1)
                raise
        if self.debugger.cross_site(environ):
            # Another site's page in the operator's browser sent it: not
            # gated in (no page, list, resource or command for it).
            return self.app(environ, start_response)
        errors = self.errors
        if errors is not None and errors.handles(environ.get("PATH_INFO")):
            return errors(environ, start_response, window, client)  # type: ignore[arg-type]
        return self.debugger(environ, start_response, window, client)  # type: ignore[arg-type]

    def _publish_closed_until(self, value: float) -> None:
        self.closed_until = value
        self.quiet = False  # earned again by a request that reads the clock

    def _quieten(self, mono: float) -> None:
        """Let requests skip the clock until the ticker's next tick, when
        no flag check is due before it (see :mod:`ipdebug.ticker`).
        """
        try:
            ticker = self._ticker
            tick = ticker.next_tick()
            if not mono < tick <= self.closed_until - ticker.slack:
                # No thread ticks (or it is late), or a check comes first.
                return
            self.quiet = True
            # A tick or a new closed_until in between: undo (they clear it
            # after changing what was read; this reads after setting it).
            if ticker.next != tick or self.closed_until - ticker.slack < tick:
                self.quiet = False
        except Exception:
            # Fail closed and keep reading the clock.
            self.quiet = False
            self._log_once(logging.ERROR, "ipdebug's ticker failed", exc_info=True)

    def capture(
        self,
        error: BaseException,
        environ: WSGIEnvironment,
        *,
        skip: int = 0,
        contexts: t.Sequence[object] = (),
    ) -> Capture | None:
        """Record the unhandled ``error`` of a request that is not gated in,
        if the window open now captures. Never raises.

        :param skip: frames of ipdebug at the top of the traceback.
        :param contexts: context managers to enter around console commands
            in its frames (Flask's app and request context).
        """
        try:
            if environ.get(GATED_KEY) is True or is_client_error(error):
                return None
            window = self.switch.current()
            if window is None or not window.capture:
                return None
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            return self.captures.add(
                window,
                error,
                method=str(environ.get("REQUEST_METHOD", ""))[:16],
                path=_text(path)[:500],
                client=self._client_of(environ),
                skip=skip,
                contexts=contexts,
            )
        except Exception:
            # Fail closed: not captured; the request goes on unchanged.
            self._log_once(
                logging.ERROR, "ipdebug could not capture an error", exc_info=True
            )
            return None

    def _client_of(self, environ: WSGIEnvironment) -> str:
        """The resolved client address of a failing request, or its raw
        ``REMOTE_ADDR`` when it does not resolve. Kept per ``REMOTE_ADDR``
        (bounded) only when the answer depends on nothing else: the peer is
        not a trusted proxy. Requests from a trusted proxy are resolved each
        time: a cache keyed by the forwarding headers would let any failing
        client fill memory with them (the gate reads them only from trusted
        proxies, bounded); resolving reads at most
        :data:`~ipdebug.gate.address.MAX_FORWARDED_LENGTH` characters from the
        right.
        """
        remote = environ.get("REMOTE_ADDR")
        known = self._clients.get(remote) if type(remote) is str else None
        if known is not None:
            return known
        proxies = self.settings.trusted_proxies
        address = resolve_client(environ, proxies)
        text = str(address) if address is not None else _text(str(remote))[:100]
        if type(remote) is str and len(remote) <= 128:
            peer = parse_address(remote)
            if not proxies or peer is None or peer not in proxies:
                if len(self._clients) >= _CLIENTS:
                    self._clients.clear()
                self._clients[remote] = text
        return text

    def _captured(self, capture: Summary) -> None:
        """After a capture, on a background thread: audit it, and add it to
        the fleet's list (a store that keeps none, a file, ignores it).
        """
        self.audit(
            "error.captured",
            capture.client,
            id=capture.id,
            method=capture.method,
            path=capture.path,
            exception=capture.type_name,
        )
        meta = capture.meta()
        if self.errors is not None:
            meta["url"] = self.errors.url_for(meta)
        self.store.append_capture(capture.window_id, meta)

    def _admit(self, environ: WSGIEnvironment, window: Window) -> str | None:
        gate = self._gate
        if gate is None or gate.window is not window:
            gate = self._gate = make_window_gate(
                self.settings, window, self._log_once, self._forwarded_seen
            )
        client = gate.client(environ)
        if client is None and self._unforwarded is not None:
            self._note_unforwarded(environ)
        return client

    def _note_unforwarded(self, environ: WSGIEnvironment) -> None:
        """Evidence for ``ipdebug doctor`` (IPD026): a trusted proxy sent a
        request without a forwarding header, as a client reaching the app
        directly does when ``trusted_proxies`` names its address by mistake.
        Once per window and process; at most a few distinct peers looked at,
        so a denied request pays two dictionary lookups.
        """
        seen = self._unforwarded
        peer = environ.get("REMOTE_ADDR")
        if (
            seen is None
            or not isinstance(peer, str)
            or peer in seen
            or "HTTP_X_FORWARDED_FOR" in environ
            or "HTTP_FORWARDED" in environ
        ):
            return
        if len(seen) >= _UNFORWARDED_PEERS:
            self._unforwarded = None
            return
        seen.add(peer)
        addr = parse_address(peer)
        proxies = self.settings.trusted_proxies
        if addr is not None and proxies is not None and addr in proxies:
            self._unforwarded = None
            self.audit("request.unforwarded", peer=str(addr), forwarded=False)

    # The gate, as the debugger asks it (ipdebug.debugger.settings.Gatekeeper)

    def window(self, *, fresh: bool = False) -> Window | None:
        """The open window as every request sees it (the flag read at most
        once per poll interval), or, ``fresh``, read from the store now.
        """
        return self.switch.poll_now() if fresh else self.switch.current()

    def admit(self, environ: WSGIEnvironment, window: Window) -> str | None:
        """The client of a request gated in for ``window``, else ``None``."""
        return self._admit(environ, window)

    def _forwarded_seen(self, peer: str) -> None:
        """Evidence for ``ipdebug doctor``, and a hint for the operator."""
        self.audit("request.forwarded", peer=peer, forwarded=True)
        self._log_once(
            logging.WARNING,
            f"ipdebug saw a forwarding header on a request from {peer} but "
            "trusted_proxies is unset: behind a proxy, every client looks like "
            "the proxy; list it in trusted_proxies (IPDEBUG_TRUSTED_PROXIES)",
        )

    def close(self) -> None:
        """Stop relaying and drop every traceback (for server shutdown)."""
        self.debugger.close()
        self.captures.reset(None)

    @property
    def recycle(self) -> t.Callable[[], None] | None:
        """Set by a server integration that can replace this process
        gracefully (gunicorn); needed by ``--attach debugpy``.
        """
        return self.debugger.recycle

    @recycle.setter
    def recycle(self, recycle: t.Callable[[], None] | None) -> None:
        self.debugger.recycle = recycle

    def _window_changed(self, old: Window | None, new: Window | None, why: str) -> None:
        """Audit the transition and forget everything of the old window."""
        self.debugger.window_changed(old, new)
        self.captures.reset(new)
        self._gate = None
        self._unforwarded = (
            set() if new is not None and self.settings.trusted_proxies else None
        )
        if old is not None:
            self.audit(
                "window.expired" if why == "expired" else "window.closed",
                window=old.id[:8],
                why=why,
            )
        if new is not None:
            until = datetime.fromtimestamp(
                new.expires(self.settings.max_window), timezone.utc
            )
            self.audit(
                "window.opened",
                window=new.id[:8],
                until=until.isoformat(timespec="seconds"),
                allow=list(new.allow) or "deployment",
                reason=new.reason,
                by=new.by,
            )
            logger.warning(
                "ipdebug debugging window open until %s UTC for %s (%s)",
                until.strftime("%Y-%m-%d %H:%M:%S"),
                ", ".join(new.allow) or "the deployment's allowlist",
                new.reason or "no reason given",
            )
            self._log_once.forget()


_monotonic = time.monotonic

#: Peers whose capture address :meth:`IPDebugMiddleware._client_of` keeps.
_CLIENTS = 256

#: Distinct peers :meth:`IPDebugMiddleware._note_unforwarded` looks at per
#: window before it stops looking.
_UNFORWARDED_PEERS = 64


def _text(value: str) -> str:
    """A WSGI string (bytes as latin-1) as the text the client sent."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeError:
        return value


#: Every middleware of this process, so server integrations can find them.
_INSTANCES: weakref.WeakSet[IPDebugMiddleware] = weakref.WeakSet()


def instances() -> list[IPDebugMiddleware]:
    """The middlewares alive in this process."""
    return list(_INSTANCES)


def _connect_integrations() -> None:
    # Frameworks are imported only by their own modules, and only when the
    # application already uses them.
    if "flask" in sys.modules:
        from .flask import connect_signal

        connect_signal()
    if "django" in sys.modules:
        from .django import connect_signal as connect_django

        connect_django()
