"""Holding a response's start until its first body bytes.

A gated-in request whose app fails *before* sending any body can still be
answered with the debugger page, in one clean ``start_response`` call
(gunicorn, for one, appends the headers of a second call to the first). One
that fails *after* can only be aborted.
"""

from __future__ import annotations

import typing as t

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
