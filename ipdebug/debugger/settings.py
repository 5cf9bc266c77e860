"""What the debugger is given: its settings, fixed at construction, and the
one thing it asks of the middleware in front of it, the gate.

The middleware (:class:`~ipdebug.IPDebugMiddleware`) validates its options
and hands the debugger's share of them over as one
:class:`DebuggerSettings`. It also answers, as a :class:`Gatekeeper`, the two
questions the debugger asks on its own: is this window still the open one
(a slow request, a pdb session, the relay's listener), and would this
request, forwarded by another worker, be gated in here.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from .banner import Banner

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from ..stores import Window

#: Set on debugger pages: a load balancer routes ``__debugger__`` requests
#: to the instance it names (see docs/fleet.md, Behind a load balancer).
ROUTE_COOKIE = "ipdebug_route"
#: The response header naming the instance that answered.
INSTANCE_HEADER = "X-IPDebug-Instance"


@dataclass(frozen=True)
class DebuggerSettings:
    """How the debugger serves gated-in requests.

    :param evalex: allow the interactive console; ``False`` shows tracebacks
        only.
    :param console_path: URL path of the standalone console, or ``None`` for
        none.
    :param max_tracebacks: tracebacks (with their frames and locals) kept per
        process; the oldest is dropped first.
    :param instance: this server's name in a fleet; debugger pages tell the
        browser (and the load balancer) to send console requests here.
    :param banner: what the banner says of the deployment.
    :param relay_dir: the relay's private socket directory, which routes
        console requests to the process holding the traceback; ``None`` for
        no relay.
    :param attach_dir: where pdb sessions of ``--attach pdb`` listen.
    :param attach_wait: how long a request waits for an external debugger.
    :param errors_path: the URL path of the captured errors' pages
        (:mod:`~ipdebug.debugger.errorpages`), or ``None`` for none.
    """

    evalex: bool
    console_path: str | None
    max_tracebacks: int
    instance: str
    banner: Banner
    relay_dir: str | None
    attach_dir: str
    attach_wait: float
    errors_path: str | None


class Gatekeeper(t.Protocol):
    """What the debugger asks of the middleware that gates requests to it."""

    def window(self, *, fresh: bool = False) -> Window | None:
        """The open window, or ``None``: as every request sees it (the flag
        read at most once per poll interval), or, ``fresh``, read from the
        store now (before a pdb command, which a person types).
        """

    def admit(self, environ: WSGIEnvironment, window: Window) -> str | None:
        """The client address when the request is gated in for ``window``,
        else ``None``: the gate again, for requests relayed from another
        worker.
        """
