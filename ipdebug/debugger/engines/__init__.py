"""The debugger engine: what draws the page and runs the console.

ipdebug's gate, PIN, lockout, relay, banner, audit and memory bounds are
shared (:mod:`ipdebug.debugger`); an *engine* supplies only what the browser
sees and the frames the console runs in:

- ``werkzeug``: Werkzeug's own debugger page, JavaScript and console,
  through :mod:`ipdebug.internals` (today's behaviour);
- ``native``: ipdebug's own traceback model, page, console and JSON, which
  keeps the PIN and console input out of URLs (:mod:`.native`).

``auto`` (the default) picks Werkzeug's when its debugger internals import
and pass a contract check, else the native engine, and logs one INFO line
saying which and why.

.. code-block:: python

    app = IPDebugMiddleware(app, engine="native")  # or IPDEBUG_ENGINE=native
"""

from __future__ import annotations

import logging
import os
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import ConfigError

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Request

ENGINES = ("auto", "werkzeug", "native")

#: A frame the console can evaluate code in; each engine has its own kind.
Frame = t.Any

logger = logging.getLogger("ipdebug")


#: The longest body of a debugger request that ipdebug reads (the native
#: engine's PIN and console input), in bytes.
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Command:
    """A debugger request, as read from an engine's wire protocol.

    :param cmd: ``resource``, ``page``, ``pinauth``, ``printpin``,
        ``close``, ``eval``, or ``""`` (none).
    :param secret: the page's secret as the request carried it.
    :param frame: the frame id for ``eval``, ``None`` if absent or bad.
    :param code: console input for ``eval``.
    :param pin: the PIN for ``pinauth``.
    :param name: the resource name, or the traceback reference of ``page``.
    :param window: the window id a ``close`` was meant for.
    :param refusal: ``(status, reason)`` when the request breaks the
        engine's protocol (wrong method, cross-site, body too large).
    """

    cmd: str
    secret: str = ""
    frame: int | None = None
    code: str = ""
    pin: str = ""
    name: str = ""
    window: str = ""
    refusal: tuple[int, str] | None = None


class Traceback(t.Protocol):
    """One exception as an engine shows it."""

    @property
    def frames(self) -> list[Frame]:
        """Every frame the console may run in; the page names them by
        ``id()``."""

    def page(self, *, evalex: bool, secret: str, evalex_trusted: bool) -> str:
        """The HTML page."""

    def text(self) -> str:
        """The plain-text traceback (for the server's error log)."""

    def json(self, page_url: str, *, show_locals: bool) -> str | None:
        """The traceback as JSON for API clients, or ``None`` if the
        engine has no JSON (the client then gets the HTML page).

        :param show_locals: include local variables' representations (only
            for a client the window's PIN unlocked).
        """


class Engine(t.Protocol):
    """What an engine does; everything else is ipdebug's shared code."""

    name: str
    #: Whether :meth:`Traceback.json` answers API clients.
    json_api: bool

    def traceback(
        self,
        error: BaseException,
        *,
        skip: int,
        names: t.Mapping[str, object] | None = None,
    ) -> Traceback:
        """Build the model of ``error`` (``skip`` frames of ipdebug's own).

        :param names: offered to the console of every frame that defines
            none of that name (Flask's ``request``, ``g``...).
        """

    def read_command(self, request: Request) -> Command:
        """Read a ``__debugger__`` request in the engine's protocol. Called
        only for gated-in requests."""

    def evaluate(self, frame: Frame, code: str) -> tuple[str, str]:
        """Run console input in ``frame``: ``(body, mimetype)``."""

    def describe(self, frame: Frame) -> str:
        """Where a frame is, for the audit trail."""

    def resource(self, name: str) -> bytes | None:
        """A static file of the engine (JavaScript, CSS), or ``None``."""

    def console_frame(self, namespace: dict[str, t.Any]) -> Frame:
        """The standalone console's frame (id 0)."""

    def console_page(self, *, secret: str, evalex_trusted: bool) -> str:
        """The standalone console's page."""

    def with_banner(self, html: str, banner: str) -> str:
        """Put the window's banner at the top of a page."""


def engine_setting(value: str | None, environ: Mapping[str, str] | None) -> str:
    """The ``engine`` setting, from the argument or ``IPDEBUG_ENGINE``.

    :raises ConfigError: naming the value and the choices.
    """
    setting = "engine"
    if value is None:
        env = os.environ if environ is None else environ
        value, setting = env.get("IPDEBUG_ENGINE") or "auto", "IPDEBUG_ENGINE"
    if value not in ENGINES:
        raise ConfigError(setting, value, f"must be one of {', '.join(ENGINES)}")
    return value


def choose(name: str) -> Engine:
    """The engine for the setting ``name`` (one of :data:`ENGINES`).

    ``auto`` logs which engine it chose and why; an explicit ``werkzeug``
    whose internals fail the contract check raises :class:`ConfigError`.
    """
    if name == "native":
        return _native()
    problem = werkzeug_problem()
    if name == "werkzeug":
        if problem:
            raise ConfigError("engine", name, f"cannot be used: {problem}")
        return _werkzeug()
    if problem:
        logger.info("ipdebug uses its native debugger engine: %s", problem)
        return _native()
    logger.info(
        "ipdebug uses Werkzeug's debugger engine: werkzeug.debug is importable "
        "and passed the contract check"
    )
    return _werkzeug()


_CHECKED: list[str | None] = []


def werkzeug_problem() -> str | None:
    """Why Werkzeug's debugger internals cannot be used, or ``None`` when
    they import and render a page as ipdebug expects (checked once per
    process).
    """
    if not _CHECKED:
        try:
            from .werkzeug import contract_problem

            _CHECKED.append(contract_problem())
        except ImportError as exc:
            _CHECKED.append(f"werkzeug.debug is not importable ({exc})")
        except Exception as exc:
            _CHECKED.append(f"werkzeug.debug failed the contract check ({exc!r})")
    return _CHECKED[0]


def _werkzeug() -> Engine:
    from .werkzeug import WerkzeugEngine

    return WerkzeugEngine()


def _native() -> Engine:
    from .native import NativeEngine

    return NativeEngine()
