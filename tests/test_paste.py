"""PasteDeploy: ``[filter:ipdebug] use = egg:ipdebug`` in an .ini pipeline."""

from __future__ import annotations

import textwrap
import typing as t
from pathlib import Path

import pytest
from paste.deploy import loadapp
from webtest import TestApp

import ipdebug
from ipdebug import IPDebugMiddleware
from ipdebug.paste import parse_options

from .conftest import HOST, secret_and_frame, unlock


def write_ini(tmp_path: Path, filter_options: str) -> str:
    ini = tmp_path / "app.ini"
    ini.write_text(
        textwrap.dedent(
            """\
            [pipeline:main]
            pipeline = ipdebug app

            [filter:ipdebug]
            use = egg:ipdebug
            {options}

            [app:app]
            use = call:tests.apps.plain:make_app
            """
        ).format(options=textwrap.dedent(filter_options).strip())
    )
    return f"config:{ini}"


def test_filter_from_an_ini_file(tmp_path: Path, clean_env: None) -> None:
    flag = tmp_path / "state" / "flag.json"
    app = loadapp(
        write_ini(
            tmp_path,
            f"""
            allow = 127.0.0.3, 10.8.0.0/16
            flag = {flag}
            trusted_hosts = 127.0.0.1 app.example.com
            trusted_proxies = 127.0.0.1
            max_window = 30m
            evalex = true
            max_tracebacks = 5
            """,
        )
    )
    assert isinstance(app, IPDebugMiddleware)
    assert app.settings.allow is not None and app.settings.allow.entries == (
        "127.0.0.3",
        "10.8.0.0/16",
    )
    assert app.settings.trusted_hosts == ("127.0.0.1", "app.example.com")
    assert app.settings.max_window == 1800
    assert app.debugger.max_tracebacks == 5
    opened = ipdebug.enable("5m", flag=str(flag), environ={})
    app.switch.poll_now()
    operator = TestApp(
        app,
        extra_environ={
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": HOST,
            "HTTP_X_FORWARDED_FOR": "127.0.0.3",
        },
    )
    secret, _ = secret_and_frame(
        operator.get("/fail", status=500, expect_errors=True).text
    )
    assert unlock(operator, secret, opened.pin)["auth"] is True
    stranger = TestApp(
        app,
        extra_environ={
            "REMOTE_ADDR": "127.0.0.2",
            "HTTP_HOST": HOST,
            "HTTP_X_FORWARDED_FOR": "127.0.0.3",
        },
    )
    with pytest.raises(ZeroDivisionError):
        stranger.get("/fail")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            "alow = 127.0.0.1", "alow: '127.0.0.1' is not an ipdebug option", id="typo"
        ),
        pytest.param("evalex = maybe", "evalex: 'maybe' is not a boolean", id="bool"),
        pytest.param(
            "max_tracebacks = many",
            "max_tracebacks: 'many' is not a whole number",
            id="int",
        ),
        pytest.param(
            "allow = 10.0.0.300",
            "allow: '10.0.0.300' is not an IP address",
            id="address",
        ),
    ],
)
def test_bad_options_fail_when_the_ini_is_loaded(
    tmp_path: Path, options: str, message: str, clean_env: None
) -> None:
    with pytest.raises(ValueError, match=message):
        loadapp(write_ini(tmp_path, options + f"\nflag = {tmp_path}/flag.json"))


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        pytest.param(
            {"allow": " 1.2.3.4,5.6.7.8  9.9.9.9 "},
            {"allow": ["1.2.3.4", "5.6.7.8", "9.9.9.9"]},
            id="list",
        ),
        pytest.param(
            {"relay": "Off", "evalex": "YES"},
            {"relay": False, "evalex": True},
            id="bools",
        ),
        pytest.param({"console_path": ""}, {"console_path": None}, id="empty-text"),
    ],
)
def test_parse_options(conf: dict[str, str], expected: dict[str, t.Any]) -> None:
    assert parse_options(conf) == expected
