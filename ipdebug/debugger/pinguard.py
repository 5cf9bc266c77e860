"""The PIN of a window, as the debugger's ``pinauth`` command sees it.

Werkzeug's own PIN logic is replaced: the PIN is checked against the flag's
scrypt hash, the unlock cookie is signed for the window (so it works on every
worker and no later window), and attempts are counted by the flag store
across every process, before the PIN is checked; ten wrong ones lock the
window's console for everyone, however many are tried at once.
"""

from __future__ import annotations

import json
import logging
import time
import typing as t

from werkzeug.wrappers import Request, Response

from ..audit import Auditor, LogOnce
from ..pin import MAX_PIN_FAILURES, cookie_is_valid, make_cookie
from ..stores import FlagStore, Window

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


def cookie_name(window: Window) -> str:
    """Per window, so windows of apps on one host never overwrite each
    other's cookie (cookies ignore the port).
    """
    return f"__ipdebug_{window.id[:12]}"


def cookie_value(header: str, name: str) -> str | None:
    """One cookie's value. Not Werkzeug's parse_cookie: it raises on any
    cookie that is not UTF-8, and another site's cookie must not hide ours.
    """
    for part in header.split(";"):
        key, sep, value = part.strip(" \t").partition("=")
        if sep and key == name:
            return value.strip(' \t"')
    return None


class PinGuard:
    """Checks PINs and PIN cookies for the windows of one flag store."""

    def __init__(self, store: FlagStore, audit: Auditor) -> None:
        self.store = store
        self.audit = audit
        self._log_once = LogOnce(limit=16)

    def trusted(self, environ: WSGIEnvironment, window: Window) -> bool:
        """Whether the browser holds a PIN cookie of this window and the
        window's console is not locked.
        """
        if self.failures(window) >= MAX_PIN_FAILURES:
            return False
        value = cookie_value(environ.get("HTTP_COOKIE", ""), cookie_name(window))
        return cookie_is_valid(
            value, window.pin, window.id, window.created, time.time()
        )

    def failures(self, window: Window) -> int:
        """Failed attempts in this window, across processes; a store that
        cannot say counts as locked (fail closed).
        """
        try:
            return self.store.pin_failures(window.id)
        except Exception:
            # Once per process: a store outage would otherwise log at
            # request rate.
            self._log_once(
                logging.ERROR,
                "ipdebug cannot read the PIN failure count: console locked",
                exc_info=True,
            )
            return MAX_PIN_FAILURES

    def _reserve(self, window: Window) -> int | None:
        """Count this attempt; ``None`` when the store cannot (locked)."""
        try:
            return self.store.count_pin_failure(window.id)
        except Exception:
            self._log_once(
                logging.ERROR,
                "ipdebug cannot count a PIN attempt: console locked",
                exc_info=True,
            )
            return None

    def _forgive(self, window: Window) -> None:
        """Take back a right PIN's count; when the store cannot, it stays
        counted (safe: the limit is then reached sooner).
        """
        try:
            self.store.forgive_pin_failure(window.id)
        except Exception:
            self._log_once(
                logging.ERROR,
                "ipdebug cannot take back the count of a right PIN: it stays "
                "counted against the limit (a Redis ACL needs +decr)",
                exc_info=True,
            )

    def authenticate(
        self, request: Request, window: Window, client: str, *, pin: str | None = None
    ) -> Response:
        """The ``pinauth`` command: JSON ``{"auth", "exhausted"}``.

        Each attempt is counted as a failure *before* its PIN is checked,
        atomically across processes, and checked only when its count is
        within the limit: concurrent guessers cannot get more than
        :data:`~ipdebug.pin.MAX_PIN_FAILURES` PINs checked. The count of a
        right PIN, or of an attempt refused unchecked, is then taken back.

        :param pin: the PIN as the engine read it (the native engine: from a
            POST body); default Werkzeug's ``pin`` query argument.
        """
        if pin is None:
            pin = request.args.get("pin", "")
        auth = exhausted = False
        if self.trusted(request.environ, window):
            auth = True
        elif self.failures(window) >= MAX_PIN_FAILURES:
            exhausted = True
            self.audit("pin.locked", client)
        else:
            attempt = self._reserve(window)
            if attempt is None or attempt > MAX_PIN_FAILURES:
                if attempt is not None:
                    # Over the limit while other attempts are being checked:
                    # not checked, so not a failure to keep.
                    self._forgive(window)
                exhausted = True
                self.audit("pin.locked", client)
            elif window.pin.verify(pin):
                auth = True
                self._forgive(window)
                self.audit("pin.success", client)
            else:
                exhausted = attempt >= MAX_PIN_FAILURES
                self.audit("pin.failure", client, failures=attempt)
        response = Response(
            json.dumps({"auth": auth, "exhausted": exhausted}),
            mimetype="application/json",
        )
        if auth:
            response.set_cookie(
                cookie_name(window),
                make_cookie(window.pin, window.id, time.time()),
                max_age=max(1, int(window.until - time.time())),
                httponly=True,
                samesite="Strict",
                secure=request.is_secure,
            )
        return response
