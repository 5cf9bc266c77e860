"""Shared fixtures: a plain WSGI app, a private flag, helpers to open windows
and to talk to the debugger the way Werkzeug's JavaScript does, and the
doctor's fake ``/proc`` and app modules (:mod:`tests.doctoring`).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
import time
import typing as t
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from webtest import TestApp

import ipdebug
from ipdebug import IPDebugMiddleware, doctor

from .doctoring import HOSTNAMES

OPERATOR = "127.0.0.1"
STRANGER = "127.0.0.2"
#: A client whose failures a capturing window keeps: not on the allowlist.
CUSTOMER = STRANGER
HOST = "127.0.0.1:8000"


class Boom(Exception):
    """What the failing views raise."""


class Payload:
    """A local variable of the failing view (weak-referenceable)."""


def plain_app(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> t.Iterable[bytes]:
    """A WSGI app with a route per behaviour the tests need."""
    path = environ["PATH_INFO"]
    if path == "/fail":
        local_value = 6 * 7
        payload = Payload()
        hold = environ.get("test.hold")  # lets memory tests watch a local
        if hold is not None:
            hold(payload)
        raise Boom(f"failed with local_value={local_value}")
    if path == "/stream-fail":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream_then_fail()
    if path == "/late-fail":
        return _late_fail(start_response)
    body = f"app:{environ['REQUEST_METHOD']} {path}?{environ.get('QUERY_STRING', '')}".encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
            ("X-App", "1"),
        ],
    )
    return [body]


def _stream_then_fail() -> Iterator[bytes]:
    yield b"first chunk;"
    raise Boom("after the first chunk")


def _late_fail(start_response: t.Callable[..., t.Any]) -> Iterator[bytes]:
    # Starts the response and fails before any body bytes.
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b""
    raise Boom("before the first byte")


@pytest.fixture
def flag(tmp_path: Path) -> str:
    return str(tmp_path / "state" / "flag.json")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("IPDEBUG_", "SSH_")):
            monkeypatch.delenv(name)


class Wire:
    """Which engine the tests of a module run against (``None``: the
    default, ``auto``), so the helpers below speak its protocol: Werkzeug's
    query string, or the native engine's POST bodies and secret header.
    """

    engine: str | None = None


WIRE = Wire()
SECRET_HEADER = "X-IPDebug-Secret"


@pytest.fixture(params=["werkzeug", "native"])
def both_engines(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test once per engine (``pytest.mark.usefixtures``)."""
    WIRE.engine = request.param
    try:
        yield request.param
    finally:
        WIRE.engine = None


def engine_options() -> dict[str, str]:
    """The ``engine`` option for a middleware built by a test."""
    return {"engine": WIRE.engine} if WIRE.engine else {}


@pytest.fixture
def make(flag: str, clean_env: None) -> t.Callable[..., IPDebugMiddleware]:
    def make(app: t.Any = plain_app, **options: t.Any) -> IPDebugMiddleware:
        options.setdefault("flag", flag)
        options.setdefault("allow", [OPERATOR])
        return IPDebugMiddleware(app, **{**engine_options(), **options})

    return make


def client(
    app: t.Any, addr: str = OPERATOR, host: str = HOST, **environ: t.Any
) -> TestApp:
    return TestApp(
        app, extra_environ={"REMOTE_ADDR": addr, "HTTP_HOST": host, **environ}
    )


def open_window(
    middleware: IPDebugMiddleware, duration: str = "5m", **options: t.Any
) -> ipdebug.Enabled:
    """Open a window on the middleware's flag and make it notice now."""
    options.setdefault("allow", [OPERATOR])
    opened = ipdebug.enable(
        duration, flag=middleware.settings.flag, environ={}, **options
    )
    middleware.switch.poll_now()
    return opened


def is_gated(app: TestApp) -> bool:
    """Whether the failing view gets the debugger (else the app's exception
    propagates, as without ipdebug).
    """
    try:
        page = app.get("/fail", expect_errors=True)
    except Boom:
        return False
    assert page.status_int == 500 and "Werkzeug Debugger" in page.text
    return True


def seconds_until(app: TestApp, gated: bool, limit: float = 10.0) -> float:
    """How long after now a request could still *start* and see the old
    state: the start of the last request that saw it (0 if none did).

    Measured at the start of each request, not at its end, so a busy machine
    that slows requests down cannot push the figure past the poll interval:
    a request that starts after the switch's next read sees the change,
    however long it then takes.
    """
    start = time.monotonic()
    last_old = 0.0
    while True:
        began = time.monotonic() - start
        if is_gated(app) is gated:
            return last_old
        last_old = began
        assert began < limit, "the change was not seen"
        time.sleep(0.02)


def is_native(html: str) -> bool:
    return 'data-engine="native"' in html


def is_debugger_page(html: str) -> bool:
    """A debugger page of either engine."""
    return "Werkzeug Debugger" in html or is_native(html)


def evalex_state(html: str) -> tuple[bool, bool]:
    """``(evalex, evalex_trusted)`` as the page tells its JavaScript."""
    if is_native(html):
        return 'data-evalex="true"' in html, 'data-trusted="true"' in html
    return "EVALEX = true" in html, "EVALEX_TRUSTED = true" in html


def secret_and_frame(html: str) -> tuple[str, str]:
    """What the engine's JavaScript reads from a debugger page: the secret
    and the id of the innermost frame.
    """
    if is_native(html):
        secret = re.search(r'data-secret="([^"]+)"', html)
        frame = re.findall(r'<li class="frame" id="frame-(\d+)"', html)
        frame = frame or re.findall(r'id="frame-(0)"', html)
    else:
        secret = re.search(r'SECRET = "([^"]+)"', html)
        frame = re.findall(r'<div class="frame" id="frame-(\d+)">', html)
    assert secret and frame, "not a debugger page"
    return secret.group(1), frame[-1]


def debugger_get(
    app: TestApp,
    secret: str,
    path: str = "/",
    *,
    engine: str | None = None,
    **params: str,
) -> t.Any:
    """A debugger command as the engine's JavaScript sends it: Werkzeug's
    in the query string; the native engine's PIN and console input in a
    POST body with the secret in a header.

    :param engine: whose protocol to speak; default the module's
        (:data:`WIRE`).
    """
    if (engine or WIRE.engine) != "native":
        return app.get(
            path,
            params={"__debugger__": "yes", "s": secret, **params},
            expect_errors=True,
        )
    cmd = params.pop("cmd", "")
    headers = {SECRET_HEADER: secret} if secret else {}
    if cmd in ("resource", "printpin", "") or "ipdebug" in params:
        query = {"__debugger__": "yes", **({"cmd": cmd} if cmd else {}), **params}
        return app.get(path, params=query, headers=headers, expect_errors=True)
    if cmd == "pinauth":
        body = {"pin": params.get("pin", "")}
    else:
        body, cmd = {"frm": params.get("frm", ""), "code": cmd}, "eval"
    return app.post(
        f"{path}?__debugger__=yes&cmd={cmd}",
        body,
        headers=headers,
        expect_errors=True,
    )


def unlock(
    app: TestApp, secret: str, pin: str, path: str = "/", engine: str | None = None
) -> dict[str, bool]:
    """Enter the PIN in-process; the ``pinauth`` answer (``auth``,
    ``exhausted``). Real servers: :func:`tests.servers.pin_cookie`.
    """
    response = debugger_get(app, secret, path, engine=engine, cmd="pinauth", pin=pin)
    assert response.status_int == 200
    return t.cast(dict[str, bool], response.json)


class Records(logging.Handler):
    """Collects every record of the ipdebug loggers."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self) -> list[str]:
        return [r.ipdebug_event for r in self.records if hasattr(r, "ipdebug_event")]

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("ipdebug")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# The doctor


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty fake ``/proc`` (:func:`tests.doctoring.fake_process` adds
    processes), also used by the command line.
    """
    root = tmp_path / "proc"
    root.mkdir()
    monkeypatch.setattr(doctor, "PROC", str(root))
    monkeypatch.setattr(doctor, "this_host_names", lambda: HOSTNAMES)
    return root


_app_names = itertools.count()


@pytest.fixture
def app_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], str]]:
    """Write an app module into a fresh directory, make it the current one,
    and return the module's name.
    """
    directory = tmp_path / "project"
    directory.mkdir()
    monkeypatch.chdir(directory)
    written: list[str] = []

    def write(source: str) -> str:
        name = f"doctor_app_{os.getpid()}_{next(_app_names)}"
        (directory / f"{name}.py").write_text(source)
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)
