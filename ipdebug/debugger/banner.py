"""The banner on debugger pages: an open window must be impossible to
overlook, and easy to close.

It says for whom the window is open, until when, why and who opened it, and
offers "Close window now": a POST to the page's own URL whose body (never
the URL, which access logs record) carries the debugger secret, honoured
only with the window's PIN cookie (which is ``SameSite=Strict``), so another
site cannot close (or probe) it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from markupsafe import escape

from ..config import format_duration
from ..stores import Window

#: Query parameter of the close request: ``?__debugger__=yes&ipdebug=close``
#: (its body: ``s=SECRET&window=ID``).
CLOSE_PARAM = "ipdebug"
CLOSE_VALUE = "close"

_STYLE = (
    "background:#fff3cd;border:2px solid #c9302c;color:#222;padding:8px 12px;"
    "margin:0 0 12px;font:14px/1.4 sans-serif"
)


@dataclass(frozen=True)
class Banner:
    """What the banner says of the deployment.

    :param max_window: the deployment's ceiling, for the window's "until".
    :param deployment_allow: how many entries the deployment's ``allow``
        has, shown when the window has no list of its own.
    """

    max_window: float
    deployment_allow: int

    def html(self, window: Window, secret: str, *, unlocked: bool = True) -> str:
        """The banner for ``window`` (see :func:`banner_html`)."""
        return banner_html(
            window,
            until=window.expires(self.max_window),
            secret=secret,
            deployment_allow=self.deployment_allow,
            unlocked=unlocked,
        )


def banner_html(
    window: Window,
    *,
    until: float,
    secret: str,
    deployment_allow: int,
    unlocked: bool = True,
) -> str:
    """The banner for ``window`` (``until`` is its effective end).

    :param deployment_allow: how many entries the deployment's ``allow``
        has, shown when the window has no list of its own.
    :param unlocked: whether this browser holds the window's PIN cookie.
        Closing needs it, so a locked page says how to close instead of
        offering a button that can only be refused.
    """
    end = datetime.fromtimestamp(until, timezone.utc)
    left = format_duration(max(0.0, until - time.time()))
    who = (
        ", ".join(window.allow)
        if window.allow
        else f"the deployment's allowlist ({deployment_allow} entries)"
    )
    reason = f" &middot; reason: {escape(window.reason)}" if window.reason else ""
    by = f" &middot; opened by {escape(window.by)}" if window.by else ""
    return (
        f'<div class="ipdebug-banner" style="{_STYLE}">'
        f"<strong>ipdebug</strong>: debugging window open for {escape(who)} "
        f"until {end:%H:%M:%S} UTC ({left} left){reason}{by}. "
        f"{_close_form(window.id, secret) if unlocked else _LOCKED_CLOSE}</div>"
    )


def _close_form(window_id: str, secret: str) -> str:
    return (
        f'<form method="post" action="?__debugger__=yes&amp;{CLOSE_PARAM}={CLOSE_VALUE}"'
        ' style="display:inline">'
        f'<input type="hidden" name="s" value="{escape(secret)}">'
        f'<input type="hidden" name="window" value="{escape(window_id)}">'
        '<button type="submit">Close window now</button>'
        "</form>"
    )


#: In place of the button until the console is unlocked.
_LOCKED_CLOSE = (
    '<span class="ipdebug-close-hint">To close it: <code>ipdebug disable</code> '
    "on the server, or unlock the console with the PIN and reload this page "
    "for a <em>Close window now</em> button.</span>"
)


def capture_html(count: int, errors_url: str | None, *, where: str) -> str:
    """The line under the banner of a capturing window: every client's
    errors are kept, how many (``count``, ``where``: "held by this worker",
    "listed below"), and the link to their list.
    """
    link = (
        f' <a href="{escape(errors_url)}">See the captured errors.</a>'
        if errors_url
        else " List them with <code>ipdebug errors</code>."
    )
    return (
        f'<div class="ipdebug-capture" style="{_STYLE}"><strong>ipdebug</strong>: '
        "this window captures the unhandled errors of every client (their data "
        f"is in the frames); {count} {escape(where)}.{link}</div>"
    )


CLOSED_HTML = (
    "<!doctype html><title>ipdebug: window closed</title>"
    f'<div style="{_STYLE}"><strong>ipdebug</strong>: the debugging window is '
    "closed. Every worker stops serving the debugger within a second; the "
    "audit trail records who closed it.</div>"
)
