"""The command line, in-process for speed and once for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from ipdebug.cli import main
from ipdebug.stores.file import FileFlagStore

from .servers import wait_until


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_enable_status_disable_round_trip_in_json(
    flag: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    code, out, _ = run(
        capsys,
        "enable",
        "--for",
        "10m",
        "--allow",
        "203.0.113.7",
        "--allow",
        "10.8.0.0/16,2001:db8::/32",
        "--reason",
        "INC-42",
        "--flag",
        flag,
        "--json",
    )
    assert code == 0
    opened = json.loads(out)
    assert set(opened) >= {"until", "allow", "pin", "flag"}
    assert opened["allow"] == ["203.0.113.7", "10.8.0.0/16", "2001:db8::/32"]
    assert opened["flag"] == flag
    until = datetime.fromisoformat(opened["until"].replace("Z", "+00:00"))
    assert until.utcoffset() is not None
    assert 595 < until.timestamp() - time.time() <= 600

    code, out, _ = run(capsys, "status", "--flag", flag, "--json")
    status = json.loads(out)
    assert code == 0
    assert status["enabled"] is True and status["reason"] == "INC-42"
    assert status["until"] == opened["until"] and opened["until"].endswith("Z")
    assert status["allow"] == opened["allow"]
    assert 590 < status["remaining_s"] <= 600
    assert opened["pin"] not in out

    code, out, _ = run(capsys, "disable", "--flag", flag, "--json")
    assert code == 0 and json.loads(out)["enabled"] is False
    code, out, _ = run(capsys, "status", "--flag", flag, "--json")
    assert json.loads(out) | {"flag": None} == {
        "enabled": False,
        "until": None,
        "allow": [],
        "reason": "",
        "remaining_s": 0.0,
        "flag": None,
        "expired_at": None,
        "problem": None,
        "attach": None,
        "capture": False,
    }


def test_enable_for_people_prints_until_addresses_and_pin(
    flag: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    code, out, _ = run(capsys, "enable", "--allow", "203.0.113.7", "--flag", flag)
    assert code == 0
    assert "UTC" in out and "203.0.113.7" in out
    pin = next(
        line.split()[-1] for line in out.splitlines() if line.strip().startswith("PIN:")
    )
    window = FileFlagStore(flag).load(time.time())
    assert window is not None and window.pin.verify(pin)
    assert 895 < window.until - window.created <= 900  # default 15m
    code, out, _ = run(capsys, "status", "--flag", flag)
    assert "window open until" in out and "left" in out and pin not in out


def test_allow_ssh_takes_the_ssh_client(
    flag: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
) -> None:
    monkeypatch.setenv("SSH_CLIENT", "198.51.100.23 52022 22")
    code, out, _ = run(capsys, "enable", "--allow", "ssh", "--flag", flag, "--json")
    assert code == 0 and json.loads(out)["allow"] == ["198.51.100.23"]
    window = FileFlagStore(flag).load(time.time())
    assert window is not None and window.by.endswith("from 198.51.100.23")


def test_flag_from_environment_is_shared_with_every_command(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
) -> None:
    flag = str(tmp_path / "env" / "flag.json")
    monkeypatch.setenv("IPDEBUG_FLAG", flag)
    assert run(capsys, "enable", "--allow", "127.0.0.1", "--json")[0] == 0
    assert json.loads(run(capsys, "status", "--json")[1])["flag"] == flag
    assert json.loads(run(capsys, "disable", "--json")[1])["was_enabled"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["enable", "--for", "forever"],
            "'forever' is not a duration",
            id="bad-duration",
        ),
        pytest.param(
            ["enable", "--for", "2h"],
            "'2h' is longer than the maximum window (1h)",
            id="too-long",
        ),
        pytest.param(["enable", "--for", "0s"], "must be more than 0", id="zero"),
        pytest.param(
            ["enable", "--for", "15"],
            "ipdebug: --for: '15' has no unit; write '15m' for minutes",
            id="bare-number",
        ),
        pytest.param(
            ["enable", "--allow", "0.0.0.0/0"],
            "--allow: '0.0.0.0/0' lets every client get the debugger",
            id="everyone-v4",
        ),
        pytest.param(
            ["enable", "--allow", "203.0.113.7,::/0"],
            "--allow: '::/0' lets every client get the debugger",
            id="everyone-v6",
        ),
        pytest.param(
            ["enable", "--allow", "::ffff:0:0/96"],
            "--allow: '0.0.0.0/0' lets every client get the debugger",
            id="everyone-mapped",
        ),
        pytest.param(
            ["enable", "--allow", "0.0.0.0/5"],
            "pass --allow-everyone",
            id="nearly-everyone",
        ),
        pytest.param(
            ["enable", "--allow", "10.0.0.300"],
            "'10.0.0.300' is not an IP address or network",
            id="bad-address",
        ),
        pytest.param(
            ["enable", "--allow", "10.0.0.1/8"],
            "has host bits set; use the network address (10.0.0.0/8)",
            id="host-bits",
        ),
        pytest.param(
            ["enable", "--allow", "ssh"],
            "needs SSH_CLIENT or SSH_CONNECTION",
            id="ssh-without-ssh",
        ),
        pytest.param(
            ["enable", "--bogus"],
            "unrecognized arguments: --bogus",
            id="unknown-option",
        ),
        pytest.param(
            ["frobnicate"], "invalid choice: 'frobnicate'", id="unknown-command"
        ),
        pytest.param([], "choose a command", id="no-command"),
    ],
)
def test_usage_errors_exit_2_with_one_line_naming_the_value(
    argv: list[str],
    message: str,
    flag: str,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
) -> None:
    code, out, err = run(
        capsys, *argv, *(["--flag", flag] if argv and argv[0] == "enable" else [])
    )
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err
    assert not os.path.exists(flag)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("SUDO_USER", "alice\x1b[2J\x1b[31m", id="sudo-user-escape"),
        pytest.param("SUDO_USER", "alice\nwindow.disabled", id="sudo-user-newline"),
        pytest.param("SUDO_USER", "a" * 101, id="sudo-user-long"),
        pytest.param("SSH_CLIENT", "198.51.100.23\x07 52022 22", id="ssh-client-bell"),
        pytest.param("SSH_CLIENT", "198.51.100.23 52022 22\r", id="ssh-client-cr"),
        pytest.param("USER", "bob\x7f", id="user-delete"),
        pytest.param("LOGNAME", "bob\u202e", id="logname-bidi-override"),
    ],
)
def test_a_hostile_environment_is_refused_by_enable_and_ignored_by_disable(
    variable: str,
    value: str,
    flag: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
) -> None:
    """The operator's names flow into the flag's ``by``, which every
    middleware refuses unless it is printable: ``enable`` must not say
    "window open" for a window nobody honours.
    """
    monkeypatch.setenv(variable, value)
    code, out, err = run(capsys, "enable", "--allow", "127.0.0.1", "--flag", flag)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"ipdebug: {variable}: ")
    assert repr(value) in err
    assert not os.path.exists(flag)
    # Closing always works, and the audit trail gets the value escaped.
    monkeypatch.delenv(variable)
    assert run(capsys, "enable", "--allow", "127.0.0.1", "--flag", flag)[0] == 0
    monkeypatch.setenv(variable, value)
    code, out, _ = run(capsys, "disable", "--flag", flag)
    assert code == 0 and "window closed" in out
    audit = Path(FileFlagStore(flag).audit_path).read_text()
    disabled = json.loads(audit.splitlines()[-1])
    assert disabled["event"] == "window.disabled"
    assert str(disabled["by"]).isprintable()


def test_max_window_from_environment(
    flag: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clean_env: None,
) -> None:
    monkeypatch.setenv("IPDEBUG_MAX_WINDOW", "2h")
    assert run(capsys, "enable", "--for", "2h", "--flag", flag)[0] == 0
    monkeypatch.setenv("IPDEBUG_MAX_WINDOW", "5m")
    code, _, err = run(capsys, "enable", "--for", "10m", "--flag", flag)
    assert code == 2 and "maximum window (5m)" in err


def test_runtime_failures_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    (tmp_path / "file").write_text("not a directory")
    flag = str(tmp_path / "file" / "flag.json")
    code, out, err = run(capsys, "enable", "--flag", flag)
    assert code == 1 and out == ""
    assert "cannot create" in err and "IPDEBUG_FLAG" in err


def test_status_of_a_refused_flag_exits_1_and_says_why(
    flag: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    assert run(capsys, "enable", "--flag", flag)[0] == 0
    os.chmod(flag, 0o644 | 0o020)
    code, out, _ = run(capsys, "status", "--flag", flag, "--json")
    assert code == 1
    assert json.loads(out)["enabled"] is False
    assert "writable by group or others" in json.loads(out)["problem"]
    Path(flag).write_text("{")
    os.chmod(flag, 0o600)
    code, out, _ = run(capsys, "status", "--flag", flag)
    assert code == 1 and "is not valid JSON" in out


def test_status_after_expiry(
    flag: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    assert run(capsys, "enable", "--for", "1s", "--flag", flag)[0] == 0
    code, out, _ = run(capsys, "status", "--flag", flag)
    assert code == 0 and "window expired at" not in out
    wait_until(lambda: "window expired at" in run(capsys, "status", "--flag", flag)[1])
    code, out, _ = run(capsys, "status", "--flag", flag)
    assert code == 0 and "window expired at" in out


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            [os.path.join(os.path.dirname(sys.executable), "ipdebug")],
            id="console-script",
        ),
        pytest.param([sys.executable, "-m", "ipdebug"], id="python-m"),
    ],
)
def test_installed_commands_behave_the_same(command: list[str], flag: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPDEBUG_")}
    enabled = subprocess.run(
        [*command, "enable", "--json", "--flag", flag, "--allow", "127.0.0.1"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert enabled.returncode == 0, enabled.stderr
    status = subprocess.run(
        [*command, "status", "--json", "--flag", flag],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert json.loads(status.stdout)["enabled"] is True
    bad = subprocess.run(
        [*command, "enable", "--for", "soon", "--flag", flag],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and "'soon' is not a duration" in bad.stderr


def test_allow_everyone_is_explicit_and_audited(
    flag: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    code, out, _ = run(
        capsys, "enable", "--allow", "0.0.0.0/0", "--allow-everyone", "--flag", flag
    )
    assert code == 0
    assert "WARNING: 0.0.0.0/0 lets every client get the debugger" in out
    audit_log = Path(flag).parent / "audit.log"
    trail = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert trail[-1]["event"] == "window.enabled"
    assert trail[-1]["allow_everyone"] is True
    # A narrow list needs no flag, and is not marked.
    assert run(capsys, "enable", "--allow", "10.0.0.0/8", "--flag", flag)[0] == 0
    trail = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert "allow_everyone" not in trail[-1]


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        pytest.param(
            "UTC", r"until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n", id="utc-once"
        ),
        pytest.param(
            "CET-1",
            r"until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CET \(\d\d:\d\d:\d\d UTC\)\n",
            id="local-and-utc",
        ),
    ],
)
def test_times_are_printed_once_on_a_utc_host(
    tz: str,
    expected: str,
    flag: str,
    capsys: pytest.CaptureFixture[str],
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        out = run(capsys, "enable", "--allow", "127.0.0.1", "--flag", flag)[1]
        status = run(capsys, "status", "--flag", flag)[1]
    finally:
        monkeypatch.undo()
        time.tzset()
    assert re.search(expected, out), out
    assert re.search(expected.replace(r"\n", ","), status), status
    assert out.count("UTC") == 1


def test_attach_to_a_stale_session_socket_is_one_line(
    flag: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    import socket

    attach = Path(flag).parent / "attach"
    attach.mkdir(parents=True, mode=0o700)
    stale = attach / "12345.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))  # bound, never listening, then closed: refused
    code, out, err = run(capsys, "attach", "--wait", "1s", "--flag", flag)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    # The session is named as gone, and the way on is to attach again.
    assert "ipdebug attach" in err and "12345.sock" not in out


def test_unexpected_errors_are_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    flag = tmp_path / "state" / "flag.json"
    attach = flag.parent / "attach"
    attach.mkdir(parents=True, mode=0o700)
    # A debugpy port file that is not a file: an OSError nobody planned for.
    (attach / "1.debugpy").mkdir()
    code, out, err = run(capsys, "attach", "--wait", "1s", "--flag", str(flag))
    assert code == 1 and out == ""
    assert err.startswith("ipdebug: IsADirectoryError: ") and err.count("\n") == 1
    (attach / "1.debugpy").rmdir()
    (attach / "1.debugpy").write_text("{not json")
    code, out, err = run(capsys, "attach", "--wait", "1s", "--flag", str(flag))
    assert code == 1 and err.startswith("ipdebug: JSONDecodeError: ")


def test_usage_text_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    import ipdebug.cli

    for command in ("enable", "disable", "status", "attach", "doctor"):
        assert f"ipdebug {command}" in (ipdebug.cli.__doc__ or "")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("enable", "disable", "status", "attach", "doctor"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["enable", "--help"])
    assert "--allow-everyone" in capsys.readouterr().out


def test_enable_attach_and_the_attach_command(
    flag: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    code, out, _ = run(capsys, "enable", "--attach", "pdb", "--flag", flag, "--json")
    assert code == 0 and json.loads(out)["attach"] == "pdb"
    assert (
        json.loads(run(capsys, "status", "--flag", flag, "--json")[1])["attach"]
        == "pdb"
    )
    code, out, _ = run(capsys, "enable", "--attach", "pdb", "--flag", flag)
    assert "ipdebug attach" in out
    # No failing request comes: attach says so and exits 1.
    code, _, err = run(capsys, "attach", "--wait", "1s", "--flag", flag)
    assert code == 1 and "no debugger waiting" in err
    assert run(capsys, "attach", "--wait", "soon", "--flag", flag)[0] == 2
    code, _, err = run(capsys, "enable", "--attach", "gdb", "--flag", flag)
    assert code == 2 and "invalid choice: 'gdb'" in err
