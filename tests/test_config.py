from __future__ import annotations

import os
import pwd
from datetime import timedelta

import pytest

from ipdebug.config import (
    covers_everyone,
    default_flag,
    format_duration,
    load_settings,
    parse_duration,
    resolve_flag,
)
from ipdebug.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param("90s", 90, id="seconds"),
        pytest.param("15m", 900, id="minutes"),
        pytest.param("1h", 3600, id="hours"),
        pytest.param("1h30m", 5400, id="combined"),
        pytest.param(" 2M ", 120, id="case-space"),
        pytest.param(30, 30, id="int"),
        pytest.param(1.5, 1.5, id="float"),
        pytest.param(timedelta(minutes=30), 1800, id="timedelta"),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value, setting="max_window") == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0",
        "45",  # no unit: minutes or seconds? (issue 13)
        "0s",
        "-5m",
        "15 minutes",
        "1d",
        "m",
        "1.5h",
        "\u00b2",  # a superscript two: str.isdigit() says yes
        "\u0663",  # an Arabic-Indic three
        "1" + "0" * 400 + "h",
        "1" * 4301 + "s",
        10**400,
        True,
        None,
        [],
        -1,
        10**9,
        timedelta(0),
    ],
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^max_window: "):
        parse_duration(value, setting="max_window")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["15", " 90 ", "3600"])
def test_text_without_a_unit_is_refused_with_the_fix(text: str) -> None:
    number = text.strip()
    with pytest.raises(ConfigError) as error:
        parse_duration(text, setting="IPDEBUG_MAX_WINDOW")
    assert str(error.value) == (
        f"IPDEBUG_MAX_WINDOW: {text!r} has no unit; write '{number}m' for minutes, "
        f"'{number}s' for seconds or '{number}h' for hours"
    )


def test_python_numbers_stay_seconds() -> None:
    # Documented: ipdebug.enable(90) and max_window=3600 are seconds.
    assert parse_duration(90, setting="duration") == 90
    assert load_settings(max_window=3600, environ={}).max_window == 3600
    with pytest.raises(ConfigError, match="IPDEBUG_MAX_WINDOW: '3600' has no unit"):
        load_settings(environ={"IPDEBUG_MAX_WINDOW": "3600"})


@pytest.mark.parametrize(
    ("network", "everyone"),
    [
        pytest.param("0.0.0.0/0", True, id="v4-all"),
        pytest.param("0.0.0.0/1", True, id="v4-half"),
        pytest.param("8.0.0.0/7", True, id="v4-slash7"),
        pytest.param("10.0.0.0/8", False, id="v4-private-8"),
        pytest.param("203.0.113.7", False, id="v4-host"),
        pytest.param("::/0", True, id="v6-all"),
        pytest.param("2000::/3", True, id="v6-global-unicast"),
        pytest.param("fd00::/8", False, id="v6-ula-8"),
        pytest.param("2001:db8::/32", False, id="v6-32"),
    ],
)
def test_covers_everyone(network: str, everyone: bool) -> None:
    assert covers_everyone(network) is everyone


def test_format_duration_round_trips() -> None:
    for text in ["90s", "15m", "1h", "1h30m", "2h0m5s"]:
        assert parse_duration(
            format_duration(parse_duration(text, setting="x")), setting="x"
        ) == parse_duration(text, setting="x")


def test_arguments_win_over_environment() -> None:
    env = {
        "IPDEBUG_ALLOW": "10.0.0.0/8",
        "IPDEBUG_TRUSTED_HOSTS": "env.example",
        "IPDEBUG_TRUSTED_PROXIES": "127.0.0.1",
        "IPDEBUG_MAX_WINDOW": "30m",
        "IPDEBUG_FLAG": "/tmp/env-flag.json",
    }
    from_env = load_settings(environ=env)
    assert from_env.allow is not None and from_env.allow.entries == ("10.0.0.0/8",)
    assert from_env.trusted_hosts == ("env.example",)
    assert (
        from_env.trusted_proxies is not None
        and from_env.trusted_proxies.entries == ("127.0.0.1",)
    )
    assert from_env.max_window == 1800
    assert from_env.flag == "/tmp/env-flag.json"
    explicit = load_settings(
        allow=["192.0.2.1"],
        trusted_hosts="a.example, b.example",
        trusted_proxies=[],
        max_window="5m",
        flag="/tmp/arg.json",
        environ=env,
    )
    assert explicit.allow is not None and explicit.allow.entries == ("192.0.2.1",)
    assert explicit.trusted_hosts == ("a.example", "b.example")
    assert explicit.trusted_proxies is None
    assert explicit.max_window == 300
    assert explicit.flag == "/tmp/arg.json"


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.allow is None
    assert settings.trusted_proxies is None
    assert settings.trusted_hosts == (".localhost", "127.0.0.1")
    assert settings.max_window == 3600
    assert settings.flag == default_flag()


def test_default_flag_comes_from_the_password_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", "/somewhere/else")
    home = pwd.getpwuid(os.geteuid()).pw_dir
    assert default_flag() == os.path.join(home, ".local/state/ipdebug/flag.json")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"allow": ["10.0.0.300"]},
            "allow: '10.0.0.300' is not an IP address or network",
            id="allow",
        ),
        pytest.param({"allow": []}, "allow: [] is empty", id="allow-empty"),
        pytest.param(
            {"trusted_proxies": "127.0.0.1,nginx"},
            "trusted_proxies: 'nginx' is not an IP",
            id="proxies",
        ),
        pytest.param(
            {"trusted_hosts": []}, "trusted_hosts: [] is empty", id="hosts-empty"
        ),
        pytest.param(
            {"max_window": "forever"},
            "max_window: 'forever' is not a duration",
            id="window",
        ),
        pytest.param(
            {"environ": {"IPDEBUG_ALLOW": "1.2.3.4,bad"}},
            "IPDEBUG_ALLOW: 'bad' is not an IP",
            id="env-names-variable",
        ),
        pytest.param(
            {"environ": {"IPDEBUG_MAX_WINDOW": "1y"}},
            "IPDEBUG_MAX_WINDOW: '1y'",
            id="env-window",
        ),
        pytest.param({"flag": ""}, "flag: '' is not a path", id="flag"),
    ],
)
def test_errors_name_setting_and_value(kwargs: dict[str, object], message: str) -> None:
    kwargs.setdefault("environ", {})
    with pytest.raises(
        ValueError, match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        load_settings(**kwargs)  # type: ignore[arg-type]


def test_resolve_flag_expands_user_and_makes_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.chdir(str(tmp_path))
    assert resolve_flag("rel/flag.json", {}) == os.path.join(
        str(tmp_path), "rel/flag.json"
    )
    assert resolve_flag(None, {"IPDEBUG_FLAG": "/x/y.json"}) == "/x/y.json"
