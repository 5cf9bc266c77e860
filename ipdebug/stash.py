"""How frameworks that swallow exceptions hand them to ipdebug.

Flask and Django turn an unhandled view exception into their own 500
response before any outer middleware sees it. For a gated-in request, ipdebug
marks the WSGI environ; the framework integration's signal receiver then puts
the exception there, and the middleware renders the debugger for it instead
of the 500 page it received. Requests that are not gated in carry no mark,
so their error handling is untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence

#: Set in the environ of gated-in requests only.
GATED_KEY = "ipdebug.gated"
#: Where an integration leaves the exception it saw.
EXCEPTION_KEY = "ipdebug.exception"
#: Where an integration leaves names the console offers in every frame of
#: the failing request that does not define them (Flask: ``request``, ``g``,
#: ``current_app``, ``session``), valid under the preserved contexts.
NAMES_KEY = "ipdebug.console_names"
#: Set in the environ of requests that are not gated in while a window
#: captures (``ipdebug enable --capture``): ``capture(exc, environ)``
#: records the error and never raises.
CAPTURE_KEY = "ipdebug.capture"


def stash_exception(
    environ: MutableMapping[str, object],
    exc: BaseException,
    contexts: Sequence[object] = (),
) -> bool:
    """Hand ``exc`` to ipdebug if this request is gated in; return whether it
    was taken. For a request that is not gated in, while the window
    captures, record it instead (the framework's error handling goes on
    unchanged), with ``contexts`` (Flask's app and request context) for
    its console. Safe to call for any request.
    """
    if environ.get(GATED_KEY) is not True:
        capture = environ.get(CAPTURE_KEY)
        if callable(capture):
            capture(exc, environ, contexts=contexts)
        return False
    environ.setdefault(EXCEPTION_KEY, exc)
    return True


def offer_names(
    environ: MutableMapping[str, object], names: Mapping[str, object]
) -> None:
    """Offer ``names`` to the console of a gated-in request's frames (see
    :data:`NAMES_KEY`); nothing for other requests.
    """
    if environ.get(GATED_KEY) is True:
        environ.setdefault(NAMES_KEY, names)
