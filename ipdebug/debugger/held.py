"""Holding a response's start until its first body bytes.

A gated-in request whose app fails *before* sending any body can still be
answered with the debugger page, in one clean ``start_response`` call
(gunicorn, for one, appends the headers of a second call to the first). One
that fails *after* can only be aborted.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse


class HeldResponse:
    """Wraps the server's ``start_response``; ``send()`` passes the app's
    status and headers on, at the first body bytes (or the end).
    """

    def __init__(self, start_response: StartResponse) -> None:
        self._start_response = start_response
        self._held: tuple[str, list[tuple[str, str]], OptExcInfo | None] | None = None
        self._write: t.Callable[[bytes], object] | None = None
        self.sent = False

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
    ) -> t.Callable[[bytes], object]:
        if self.sent:
            # PEP 3333: only legal with exc_info, and the server re-raises.
            return self._start_response(status, headers, exc_info)
        self._held = (status, headers, exc_info)
        return self.write

    def send(self) -> None:
        if not self.sent and self._held is not None:
            self._write = self._start_response(*self._held)
            self.sent = True

    def write(self, data: bytes) -> None:
        """The ``write`` callable of PEP 3333, for apps that use it."""
        self.send()
        if self._write is not None:
            self._write(data)

    def body(self, app_iter: t.Iterable[bytes]) -> t.Iterator[bytes]:
        """The app's body; the held status and headers are sent at its
        first bytes (or its end).
        """
        for chunk in app_iter:
            if chunk:
                self.send()
            elif not self.sent:
                # Nothing may be yielded before start_response, and the
                # headers stay held until real bytes arrive.
                continue
            yield chunk
        self.send()

    def replace(self, status: str, headers: list[tuple[str, str]]) -> None:
        """Start the response with ``status`` and ``headers`` instead of the
        app's held ones (nothing of which was sent): the debugger page.
        """
        self._start_response(status, headers)

    def abort(self, exc_info: OptExcInfo) -> None:
        """After the body started: hand the error to the server (PEP 3333),
        which aborts the connection rather than end a truncated body.
        """
        self._start_response("500 Internal Server Error", [], exc_info)


@dataclass
class AppRun:
    """What came of running the app for a gated-in request."""

    #: The app's response body, once it returned one.
    app_iter: t.Iterable[bytes] | None = None
    #: The unhandled exception, raised or handed over by a framework.
    error: BaseException | None = None
    #: Frames of ipdebug at the top of the error's traceback.
    skip: int = 0
    #: The framework turned the error into its own response (kept, unread,
    #: in case the window closed before the debugger page is shown).
    handed_over: bool = False


def close_iterable(app_iter: t.Iterable[bytes] | None) -> None:
    """Close an app's response body, as a WSGI server must."""
    close = getattr(app_iter, "close", None)
    if close is not None:
        close()
