"""Django swallows view exceptions into its own 500: gated-in clients get the
debugger anyway, everyone else gets Django's own error handling (handler500,
the ``django.request`` log, mail to ADMINS) unchanged.

Django's settings can be configured once per process: this module uses the
example project's (``examples/djangoproject``), as its ``wsgi.py`` does, and
changes them per test with ``override_settings`` only.
"""

from __future__ import annotations

import html
import inspect
import logging
import os
import re
import typing as t
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import ENVIRONMENT_VARIABLE, settings
from django.core import checks, mail
from django.core.signals import got_request_exception
from django.core.wsgi import get_wsgi_application as django_application
from django.test import Client, override_settings
from webtest import TestApp

import ipdebug
import ipdebug.django
from ipdebug import IPDebugMiddleware
from ipdebug.django import get_wsgi_application

from .conftest import (
    HOST,
    OPERATOR,
    STRANGER,
    client,
    debugger_get,
    engine_options,
    is_debugger_page,
    open_window,
    secret_and_frame,
    unlock,
)
from .servers import (
    console_output,
    debugger_page,
    debugger_path,
    gunicorn,
    pin_cookie,
    request,
    spread,
    wait_until,
)
from .servers import (
    open_window as open_server_window,
)

SETTINGS_MODULE = "examples.djangoproject.settings"
SORRY = b"Sorry, something broke on our side. We have been told.\n"


@pytest.fixture(autouse=True, scope="module")
def django_project() -> None:
    """Set Django up with the example project's settings, once per process,
    without leaving ``DJANGO_SETTINGS_MODULE`` in the environment of the
    servers other tests start.
    """
    if not settings.configured:
        saved = os.environ.get(ENVIRONMENT_VARIABLE)
        os.environ[ENVIRONMENT_VARIABLE] = SETTINGS_MODULE
        try:
            django.setup()
        finally:
            if saved is None:
                del os.environ[ENVIRONMENT_VARIABLE]
            else:
                os.environ[ENVIRONMENT_VARIABLE] = saved
    assert settings.SETTINGS_MODULE == SETTINGS_MODULE, (
        "Django was configured with other settings before these tests"
    )


@pytest.fixture
def outbox() -> Iterator[list[t.Any]]:
    """Mail to ADMINS, kept in memory."""
    backend = "django.core.mail.backends.locmem.EmailBackend"
    # Django 6.0 takes ADMINS as addresses, 6.1 configures mail in MAILERS;
    # the older forms warn there (and warnings are errors here).
    admins: list[t.Any] = (
        ["ops@example.com"]
        if django.VERSION >= (6, 0)
        else [("Ops", "ops@example.com")]
    )
    mailer: dict[str, t.Any] = (
        {"MAILERS": {"default": {"BACKEND": backend}}}
        if django.VERSION >= (6, 1)
        else {"EMAIL_BACKEND": backend}
    )
    with override_settings(ADMINS=admins, **mailer):
        mail.outbox = []
        yield mail.outbox


def wrapped(flag: str, **options: t.Any) -> IPDebugMiddleware:
    """The example project's WSGI application, as its wsgi.py builds it."""
    return get_wsgi_application(
        flag=flag, environ={}, **{**engine_options(), **options}
    )


def console(app: TestApp, secret: str, frame: str, command: str) -> str:
    """The last line of the console's answer to ``command`` in ``frame``."""
    answer = debugger_get(app, secret, cmd=command, frm=frame)
    assert answer.status_int == 200, answer.text
    return html.unescape(re.sub(r"<[^>]+>", "", answer.text)).strip().splitlines()[-1]


def django_log(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    return [
        (r.name, r.levelname, r.getMessage())
        for r in caplog.records
        if r.name.startswith("django")
    ]


def mails(outbox: list[t.Any]) -> list[tuple[str, str]]:
    """Subject and body of each mail, without what differs between two runs
    of the same request (object addresses, the time).
    """
    return [
        (
            m.subject,
            re.sub(r"0x[0-9a-f]+|Server time: [^\n]*", "", m.body),
        )
        for m in outbox
    ]


@pytest.mark.usefixtures("both_engines")
def test_gated_client_gets_the_debugger_for_a_view_exception(
    flag: str, outbox: list[t.Any]
) -> None:
    app = wrapped(flag)
    opened = open_window(app)
    operator = client(app)
    page = operator.get("/fail", status=500)
    assert page.text.startswith("<!doctype html>")  # not handler500's page
    assert is_debugger_page(page.text)
    assert "ZeroDivisionError: division by zero" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    secret, frame = secret_and_frame(page.text)
    assert unlock(operator, secret, opened.pin)["auth"] is True
    # The console runs in the view's frame, with its locals and its request.
    assert console(operator, secret, frame, "basket") == "{'apples': 3, 'pears': 0}"
    assert console(operator, secret, frame, "request.path") == "'/fail'"
    assert console(operator, secret, frame, "worker_pid == os.getpid()") == "True"
    # Django still reported the error as it always does.
    assert [subject for subject, _ in mails(outbox)] == [
        "[Django] ERROR (EXTERNAL IP): Internal Server Error: /fail"
    ]


PATHS = [
    "/",
    "/fail",
    "/missing",
    "/forbidden",
    "/?__debugger__=yes&cmd=resource&f=debugger.js",
    "/?__debugger__=yes&cmd=pinauth&pin=000-000-000&s=1x2",
    "/console",
]


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"REMOTE_ADDR": STRANGER}, id="another address"),
        pytest.param(
            {"REMOTE_ADDR": STRANGER, "HTTP_X_FORWARDED_FOR": OPERATOR},
            id="spoofed X-Forwarded-For",
        ),
        pytest.param(
            {"REMOTE_ADDR": OPERATOR, "HTTP_HOST": "evil.example"},
            id="DNS rebinding Host",
        ),
    ],
)
@pytest.mark.usefixtures("both_engines")
def test_other_clients_get_djangos_own_error_handling(
    environ: dict[str, str],
    flag: str,
    outbox: list[t.Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = wrapped(flag)
    open_window(app)
    bare = TestApp(django_application(), extra_environ={"HTTP_HOST": HOST, **environ})
    ours = TestApp(app, extra_environ={"HTTP_HOST": HOST, **environ})
    for path in PATHS:
        outbox.clear()
        with caplog.at_level(logging.WARNING, logger="django"):
            caplog.clear()
            want = bare.get(path, expect_errors=True)
            want_log = django_log(caplog)
            want_mail = mails(outbox)
            outbox.clear()
            caplog.clear()
            got = ours.get(path, expect_errors=True)
            got_log = django_log(caplog)
        assert (got.status, got.headerlist, got.body) == (
            want.status,
            want.headerlist,
            want.body,
        ), path
        assert (got_log, mails(outbox)) == (want_log, want_mail), path
        if path == "/fail" and environ.get("HTTP_HOST") != "evil.example":
            assert got.body == SORRY  # handler500
            assert got_log == [
                ("django.request", "ERROR", "Internal Server Error: /fail")
            ]
            assert len(want_mail) == 1


def test_djangos_test_client_is_not_affected(outbox: list[t.Any]) -> None:
    """The test client bypasses WSGI middleware: even from the operator's
    address it gets Django's handling, and still sees the view's exception.
    """
    assert got_request_exception.has_listeners()
    django_client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    response = django_client.get("/fail", REMOTE_ADDR=OPERATOR)
    assert (response.status_code, response.content) == (500, SORRY)
    assert len(outbox) == 1
    with pytest.raises(ZeroDivisionError):
        Client(HTTP_HOST="127.0.0.1").get("/fail")


@pytest.mark.usefixtures("both_engines")
def test_debug_propagate_exceptions_also_works(flag: str) -> None:
    app = wrapped(flag)
    open_window(app)
    with override_settings(DEBUG_PROPAGATE_EXCEPTIONS=True):
        # The server's error stream gets the traceback, as from Werkzeug.
        page = client(app).get("/fail", status=500, expect_errors=True)
        assert "ZeroDivisionError: division by zero" in page.text
        with pytest.raises(ZeroDivisionError):
            client(app, STRANGER).get("/fail")
        with pytest.raises(ZeroDivisionError):
            client(django_application(), STRANGER).get("/fail")


@pytest.mark.usefixtures("both_engines")
def test_debug_true_gated_client_gets_the_debugger(flag: str) -> None:
    app = wrapped(flag)
    open_window(app)
    with override_settings(DEBUG=True):
        assert is_debugger_page(client(app).get("/fail", status=500).text)
        # Others get Django's own technical 500 page, as without ipdebug.
        assert not is_debugger_page(client(app, STRANGER).get("/fail", status=500).text)


@pytest.mark.usefixtures("both_engines")
@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/forbidden", 403)])
def test_http404_and_permission_denied_are_not_debugged(
    flag: str, path: str, status: int
) -> None:
    app = wrapped(flag)
    open_window(app)
    got = client(app).get(path, status=status)
    want = client(django_application()).get(path, status=status)
    assert (got.headerlist, got.body) == (want.headerlist, want.body)


def test_the_signal_receiver_is_connected_once(flag: str) -> None:
    for _ in range(3):
        ipdebug.django.connect_signal()
        wrapped(flag)
    keys = [key for key, *_ in got_request_exception.receivers]
    assert [k for k in keys if k[0] == ipdebug.django.DISPATCH_UID] == [
        (ipdebug.django.DISPATCH_UID, id(None))
    ]


# Settings: keyword argument > Django setting > environment variable >
# (trusted hosts only) ALLOWED_HOSTS > ipdebug's default.


def test_every_environment_setting_is_a_django_setting() -> None:
    names = set(ipdebug.django.SETTINGS)
    assert {"allow", "flag", "trusted_hosts", "trusted_proxies", "max_window"} <= names
    assert "environ" not in names
    assert names <= set(inspect.signature(IPDebugMiddleware).parameters)


@pytest.mark.parametrize(
    ("django_settings", "environ", "options", "expected"),
    [
        pytest.param({}, {}, {}, ["127.0.0.1", "::1"], id="settings.py"),
        pytest.param(
            {}, {"IPDEBUG_ALLOW": "10.0.0.1"}, {}, ["127.0.0.1", "::1"],
            id="setting beats environment",
        ),
        pytest.param(
            {"IPDEBUG_ALLOW": None}, {"IPDEBUG_ALLOW": "10.0.0.1"}, {}, ["10.0.0.1"],
            id="environment when the setting is None",
        ),
        pytest.param(
            {}, {}, {"allow": ["10.0.0.2"]}, ["10.0.0.2"],
            id="argument beats setting",
        ),
        pytest.param({"IPDEBUG_ALLOW": None}, {}, {}, None, id="none"),
    ],
)  # fmt: skip
def test_allow_precedence(
    flag: str,
    django_settings: dict[str, t.Any],
    environ: dict[str, str],
    options: dict[str, t.Any],
    expected: list[str] | None,
) -> None:
    with override_settings(**django_settings):
        app = get_wsgi_application(flag=flag, environ=environ, **options)
    allow = app.settings.allow
    assert (None if allow is None else list(allow.entries)) == expected


@pytest.mark.parametrize(
    ("django_settings", "environ", "expected"),
    [
        pytest.param({}, {}, ("127.0.0.1", ".localhost", "[::1]"), id="ALLOWED_HOSTS"),
        pytest.param(
            {"ALLOWED_HOSTS": ["*"]}, {}, (".localhost", "127.0.0.1"),
            id="'*' is not every host",
        ),
        pytest.param(
            {"ALLOWED_HOSTS": ["*", ".Example.com"]}, {}, (".example.com",),
            id="'*' left out",
        ),
        pytest.param(
            {"ALLOWED_HOSTS": []}, {}, (".localhost", "127.0.0.1"), id="empty"
        ),
        pytest.param(
            {"ALLOWED_HOSTS": ["app.example.com:443", "*.example.com", "app.example.com"]},
            {}, ("app.example.com",),
            id="entries Django cannot match left out",
        ),
        pytest.param(
            {}, {"IPDEBUG_TRUSTED_HOSTS": "env.example"}, ("env.example",),
            id="environment beats ALLOWED_HOSTS",
        ),
        pytest.param(
            {"IPDEBUG_TRUSTED_HOSTS": ["setting.example"]},
            {"IPDEBUG_TRUSTED_HOSTS": "env.example"}, ("setting.example",),
            id="setting beats environment",
        ),
    ],
)  # fmt: skip
def test_trusted_hosts(
    flag: str,
    django_settings: dict[str, t.Any],
    environ: dict[str, str],
    expected: tuple[str, ...],
) -> None:
    with override_settings(**django_settings):
        app = get_wsgi_application(flag=flag, environ=environ)
    assert app.settings.trusted_hosts == expected


@pytest.mark.parametrize(
    ("django_settings", "options", "message"),
    [
        pytest.param(
            {"IPDEBUG_ALLOW": ["10.0.0.300"]}, {},
            "IPDEBUG_ALLOW: '10.0.0.300' is not an IP address",
            id="bad setting named as a Django setting",
        ),
        pytest.param(
            {}, {"allow": ["10.0.0.300"]}, "allow: '10.0.0.300' is not an IP address",
            id="bad argument named as an argument",
        ),
        pytest.param(
            {"IPDEBUG_TRUSTED_HOSTS": []}, {}, "IPDEBUG_TRUSTED_HOSTS: [] is empty",
            id="no trusted host is never every host",
        ),
        pytest.param(
            {"IPDEBUG_MAX_WINDOW": "forever"}, {}, "IPDEBUG_MAX_WINDOW: 'forever'",
            id="bad duration",
        ),
        pytest.param(
            {"IPDEBUG_ALLOWED": ["10.0.0.1"]}, {},
            "IPDEBUG_ALLOWED: ['10.0.0.1'] is not an ipdebug setting",
            id="misspelt setting",
        ),
    ],
)  # fmt: skip
def test_bad_settings_raise_naming_the_setting(
    flag: str,
    django_settings: dict[str, t.Any],
    options: dict[str, t.Any],
    message: str,
) -> None:
    with (
        override_settings(**django_settings),
        pytest.raises(ValueError, match=f"^{re.escape(message)}"),
    ):
        get_wsgi_application(flag=flag, environ={}, **options)


# System checks (registered by IPDebugConfig in INSTALLED_APPS).


@pytest.mark.parametrize(
    ("django_settings", "environ", "deploy", "expected"),
    [
        pytest.param({}, {}, True, [], id="the example project"),
        pytest.param({"DEBUG": True}, {}, True, ["ipdebug.W001"], id="DEBUG"),
        pytest.param({"DEBUG": True}, {}, False, [], id="DEBUG without --deploy"),
        pytest.param({"ALLOWED_HOSTS": ["*"]}, {}, True, ["ipdebug.W002"], id="'*'"),
        pytest.param(
            {"ALLOWED_HOSTS": ["*"]}, {"IPDEBUG_TRUSTED_HOSTS": "app.example"}, True, [],
            id="'*' with IPDEBUG_TRUSTED_HOSTS",
        ),
        pytest.param({"IPDEBUG_ALLOW": None}, {}, True, ["ipdebug.W003"], id="no allow"),
        pytest.param(
            {"IPDEBUG_ALLOW": None}, {"IPDEBUG_ALLOW": "10.0.0.1"}, True, [],
            id="allow from the environment",
        ),
        pytest.param(
            {"IPDEBUG_ALLOW": ["10.0.0.300"]}, {}, False, ["ipdebug.E001"],
            id="bad value",
        ),
        pytest.param(
            {"IPDEBUG_TRUSTED_HOSTS": []}, {}, False, ["ipdebug.E001"],
            id="empty trusted hosts",
        ),
        pytest.param(
            {"IPDEBUG_ALOW": ["10.0.0.1"]}, {}, True, ["ipdebug.E001"],
            id="misspelt setting",
        ),
    ],
)  # fmt: skip
def test_system_checks(
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    django_settings: dict[str, t.Any],
    environ: dict[str, str],
    deploy: bool,
    expected: list[str],
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with override_settings(**django_settings):
        found = checks.run_checks(include_deployment_checks=deploy)
    ours = [m for m in found if m.id and m.id.startswith("ipdebug.")]
    assert sorted(m.id for m in ours) == expected
    for message in ours:
        assert message.hint and isinstance(message, checks.CheckMessage)


def test_a_bad_value_check_names_the_setting_and_value(clean_env: None) -> None:
    with override_settings(IPDEBUG_ALLOW=["10.0.0.300"]):
        (error,) = [m for m in checks.run_checks() if m.id == "ipdebug.E001"]
    assert error.level == checks.ERROR
    assert "IPDEBUG_ALLOW: '10.0.0.300' is not an IP address" in error.msg


# Under real gunicorn, with the example project's wsgi.py.


@pytest.mark.server
def test_gunicorn_console_across_workers_and_djangos_own_500_for_others(
    tmp_path: Path,
) -> None:
    with (
        gunicorn(
            tmp_path, "-w", "4", app="examples.djangoproject.wsgi:application"
        ) as server,
        gunicorn(
            tmp_path,
            "-w",
            "1",
            app="django.core.wsgi:get_wsgi_application()",
            ipdebug=False,
            env={ENVIRONMENT_VARIABLE: SETTINGS_MODULE},
            name="bare",
        ) as bare,
    ):
        opened = open_server_window(server, OPERATOR)
        secret, frame, owner = debugger_page(server.get("/fail"))
        cookie = pin_cookie(server, secret, opened.pin)
        expected = {
            "basket": "{'apples': 3, 'pears': 0}",
            "request.path": "'/fail'",
            "worker_pid": str(owner),
            "os.getpid()": str(owner),
        }
        for _ in range(3):
            replies = spread(
                server.port,
                [debugger_path(secret, cmd=c, frm=frame) for c in expected],
                cookie,
            )
            for (command, want), reply in zip(expected.items(), replies, strict=True):
                assert console_output(reply) == want, command
        # Some console requests reached another worker, which relayed them.
        wait_until(lambda: "event=debugger.relayed" in server.log_text())
        assert "already uses IPDebugMiddleware; not wrapping it again" in (
            server.log_text()
        )
        # Another address gets Django's own pages, byte for byte.
        for path in ["/", "/fail", "/missing", *PATHS[4:]]:
            got = request(server.port, path, source=STRANGER)
            want = request(bare.port, path, source=STRANGER)
            assert got.without_date() == want.without_date(), path
            if path == "/fail":
                assert (got.status, got.body) == (500, SORRY)


@pytest.mark.server
def test_gunicorn_hook_with_djangos_own_wsgi_application(tmp_path: Path) -> None:
    """An unchanged wsgi.py under ``-c python:ipdebug.gunicorn``: the hook
    wraps Django's handler with ipdebug.django, so the settings' IPDEBUG_ALLOW
    (127.0.0.1 and ::1) is the ceiling even where the environment and the
    window allow more.
    """
    with gunicorn(
        tmp_path,
        "-w",
        "2",
        app="django.core.wsgi:get_wsgi_application()",
        env={ENVIRONMENT_VARIABLE: SETTINGS_MODULE, "IPDEBUG_ALLOW": "127.0.0.0/8"},
    ) as server:
        open_server_window(server, OPERATOR, STRANGER)
        debugger_page(server.get("/fail"))
        got = request(server.port, "/fail", source=STRANGER)
        assert (got.status, got.body) == (500, SORRY)
