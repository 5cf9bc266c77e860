"""Flask swallows view exceptions into its own 500: gated-in clients get the
debugger anyway, everyone else gets the app's own error handling unchanged.
"""

from __future__ import annotations

import logging
import typing as t

import flask
import pytest
from webtest import TestApp

import ipdebug.flask
from ipdebug import IPDebugMiddleware

from .conftest import (
    HOST,
    OPERATOR,
    STRANGER,
    debugger_get,
    engine_options,
    is_debugger_page,
    open_window,
    secret_and_frame,
    unlock,
)

pytestmark = pytest.mark.usefixtures("both_engines")


def create_app() -> flask.Flask:
    app = flask.Flask("shop")

    @app.route("/")
    def index() -> str:
        return "index"

    @app.route("/fail")
    def fail() -> str:
        basket = {"apples": 3}
        flask.g.user = "ann"
        raise RuntimeError(f"basket broke: {basket}")

    @app.errorhandler(500)
    def custom_500(error: Exception) -> tuple[str, int]:
        return "our own sorry page", 500

    return app


Wrapped = tuple[flask.Flask, t.Any]


def wrap_whole_app(flag: str) -> Wrapped:
    app = create_app()
    return app, IPDebugMiddleware(
        app, flag=flag, allow=[OPERATOR], environ={}, **engine_options()
    )


def wrap_wsgi_app(flag: str) -> Wrapped:
    app = create_app()
    app.wsgi_app = IPDebugMiddleware(
        app.wsgi_app, flag=flag, allow=[OPERATOR], environ={}, **engine_options()
    )  # type: ignore[method-assign]
    return app, app


def wrap_with_init_app(flag: str) -> Wrapped:
    app = create_app()
    ipdebug.flask.init_app(
        app, flag=flag, allow=[OPERATOR], environ={}, **engine_options()
    )
    return app, app


FORMS = [
    pytest.param(wrap_whole_app, id="IPDebugMiddleware(app)"),
    pytest.param(wrap_wsgi_app, id="app.wsgi_app=IPDebugMiddleware(app.wsgi_app)"),
    pytest.param(wrap_with_init_app, id="init_app"),
]


def middleware_of(app: flask.Flask, entry: t.Any) -> IPDebugMiddleware:
    return (
        entry
        if isinstance(entry, IPDebugMiddleware)
        else t.cast(IPDebugMiddleware, app.wsgi_app)
    )


@pytest.mark.parametrize("form", FORMS)
def test_gated_client_gets_the_debugger_for_a_view_exception(
    form: t.Callable[[str], Wrapped], flag: str
) -> None:
    app, entry = form(flag)
    opened = open_window(middleware_of(app, entry))
    browser = TestApp(entry, extra_environ={"REMOTE_ADDR": OPERATOR, "HTTP_HOST": HOST})
    page = browser.get("/fail", status=500)
    assert is_debugger_page(page.text) and "RuntimeError: basket broke" in page.text
    assert page.text.startswith("<!doctype html>")  # not the app's own 500 page
    assert page.headers["Cache-Control"] == "no-store"
    secret, frame = secret_and_frame(page.text)
    assert unlock(browser, secret, opened.pin)["auth"] is True
    # The view's frame, with Flask's request context preserved for the console.
    assert (
        "&#39;apples&#39;"
        in debugger_get(browser, secret, cmd="basket", frm=frame).text
    )
    assert (
        "/fail"
        in debugger_get(browser, secret, cmd="flask.request.path", frm=frame).text
    )
    # This module never imports request, g or current_app: the console
    # offers them, bound to the failing request (README, "Flask").
    for command, shown in [
        ("request.path", "&#39;/fail&#39;"),
        ("g.user", "&#39;ann&#39;"),
        ("current_app.name", "&#39;shop&#39;"),
        ("request.remote_addr", f"&#39;{OPERATOR}&#39;"),
    ]:
        output = debugger_get(browser, secret, cmd=command, frm=frame).text
        assert shown in output, (command, output)
    assert "request" not in globals()  # offered to the console, not the module


@pytest.mark.parametrize("form", FORMS)
def test_other_clients_get_the_apps_own_error_handling(
    form: t.Callable[[str], Wrapped], flag: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, entry = form(flag)
    open_window(middleware_of(app, entry))
    bare = TestApp(
        create_app(), extra_environ={"REMOTE_ADDR": STRANGER, "HTTP_HOST": HOST}
    )
    wrapped = TestApp(entry, extra_environ={"REMOTE_ADDR": STRANGER, "HTTP_HOST": HOST})
    for path in [
        "/",
        "/fail",
        "/?__debugger__=yes&cmd=resource&f=debugger.js",
        "/nope",
    ]:
        expected = bare.get(path, expect_errors=True)
        with caplog.at_level(logging.ERROR, logger=app.logger.name):
            caplog.clear()
            got = wrapped.get(path, expect_errors=True)
        assert (got.status, got.headerlist, got.body) == (
            expected.status,
            expected.headerlist,
            expected.body,
        )
        if path == "/fail":
            assert got.text == "our own sorry page"
            # Flask logged the exception as it always does.
            assert any("Exception on /fail" in r.getMessage() for r in caplog.records)


def test_propagate_exceptions_also_works(flag: str) -> None:
    app = create_app()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    middleware = IPDebugMiddleware(
        app, flag=flag, allow=[OPERATOR], environ={}, **engine_options()
    )
    open_window(middleware)
    gated = TestApp(
        middleware, extra_environ={"REMOTE_ADDR": OPERATOR, "HTTP_HOST": HOST}
    )
    assert (
        "RuntimeError: basket broke"
        in gated.get("/fail", status=500, expect_errors=True).text
    )
    denied = TestApp(
        middleware, extra_environ={"REMOTE_ADDR": STRANGER, "HTTP_HOST": HOST}
    )
    with pytest.raises(RuntimeError, match="basket broke"):
        denied.get("/fail")


def test_http_errors_are_not_debugged(flag: str) -> None:
    _app, entry = wrap_whole_app(flag)
    open_window(t.cast(IPDebugMiddleware, entry))
    gated = TestApp(entry, extra_environ={"REMOTE_ADDR": OPERATOR, "HTTP_HOST": HOST})
    assert not is_debugger_page(gated.get("/nope", status=404).text)


def test_a_window_closed_during_the_view_gets_the_apps_own_500(flag: str) -> None:
    """Gated in when it started, the request re-checks the window before the
    debugger page: closed, it gets Flask's own error page, byte for byte.
    """
    app = create_app()

    @app.route("/close-then-fail")
    def close_then_fail() -> str:
        ipdebug.disable(flag, environ={})
        middleware.switch.poll_now()  # as the next poll, within a second
        raise RuntimeError("basket broke after the window closed")

    middleware = IPDebugMiddleware(app, flag=flag, allow=[OPERATOR], environ={})
    open_window(middleware)
    browser = TestApp(
        middleware, extra_environ={"REMOTE_ADDR": OPERATOR, "HTTP_HOST": HOST}
    )
    got = browser.get("/close-then-fail", expect_errors=True)
    expected = TestApp(app, extra_environ={"HTTP_HOST": HOST}).get(
        "/fail", expect_errors=True
    )
    assert (got.status, got.headerlist, got.body) == (
        expected.status,
        expected.headerlist,
        expected.body,
    )
    assert got.text == "our own sorry page"
    assert middleware.debugger.traceback_count == 0
