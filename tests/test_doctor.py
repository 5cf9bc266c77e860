"""``ipdebug doctor``: each mistake is reported with its id, severity and
value; a clean deployment reports nothing.

Apps are modules written into a temporary directory and imported by name
from there (as gunicorn would); processes are a fake ``/proc``; the host's
names are fixed, so nothing depends on the machine the tests run on.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import typing as t
from collections.abc import Callable
from pathlib import Path

import pytest

import ipdebug
from ipdebug import config, doctor
from ipdebug.cli import main
from ipdebug.doctor import Finding, environment, run_checks
from ipdebug.pin import MAX_PIN_FAILURES
from ipdebug.stores.file import FileFlagStore

from .doctoring import GOOD_ENV, HOSTNAMES, fake_process

ROOT = os.geteuid() == 0


def ids(found: list[Finding]) -> set[str]:
    return {f.id for f in found}


def only(found: list[Finding], check: str) -> Finding:
    matching = [f for f in found if f.id == check]
    assert len(matching) == 1, found
    return matching[0]


def checks(
    flag: str,
    proc: Path,
    app: str | None = None,
    env: dict[str, str] | None = None,
    **changes: str,
) -> list[Finding]:
    environ = {**GOOD_ENV, **changes} if env is None else env
    return run_checks(app, environ, flag=flag, proc=str(proc), hostnames=HOSTNAMES)


WSGI = textwrap.dedent(
    """
    from ipdebug import IPDebugMiddleware

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    """
)
GOOD_OPTIONS = (
    'allow=["203.0.113.7"], trusted_hosts=[".example.com"], '
    'trusted_proxies=["127.0.0.1"], flag={flag!r}'
)


# A clean deployment


def test_a_clean_deployment_reports_nothing(
    flag: str, proc: Path, app_module: Callable[[str], str], clean_env: None
) -> None:
    ipdebug.enable("5m", allow=["203.0.113.7"], flag=flag, environ={})
    ipdebug.disable(flag, environ={})  # leaves a private directory and audit.log
    name = app_module(
        WSGI
        + f"\napplication = IPDebugMiddleware(app, {GOOD_OPTIONS.format(flag=flag)})\n"
    )
    assert checks(flag, proc, f"{name}:application", env={}) == []
    assert checks(flag, proc, name, env={}) == []  # module alone: application
    assert checks(flag, proc) == []  # no app: the IPDEBUG_* settings


# The environment


@pytest.mark.parametrize(
    ("changes", "check", "severity", "value"),
    [
        pytest.param({"FLASK_DEBUG": "1"}, "IPD001", "critical", "FLASK_DEBUG='1'", id="flask-debug"),
        pytest.param({"FLASK_DEBUG": "True"}, "IPD001", "critical", "'True'", id="flask-debug-true"),
        pytest.param({"FLASK_DEBUG": "0"}, None, None, None, id="flask-debug-0"),
        pytest.param({"FLASK_DEBUG": "false"}, None, None, None, id="flask-debug-false"),
        pytest.param({"FLASK_ENV": "development"}, "IPD002", "warning", "FLASK_ENV='development'", id="flask-env"),
        pytest.param({"FLASK_ENV": "production"}, None, None, None, id="flask-env-production"),
        pytest.param({"WERKZEUG_DEBUG_PIN": "off"}, "IPD003", "critical", "WERKZEUG_DEBUG_PIN='off'", id="pin-off"),
        pytest.param({"WERKZEUG_DEBUG_PIN": "123-456-789"}, "IPD004", "warning", "fixed PIN", id="pin-fixed"),
        pytest.param({"WERKZEUG_DEBUG_PIN": "OFF"}, None, None, None, id="pin-ignored-by-werkzeug"),
        pytest.param({"WERKZEUG_RUN_MAIN": "true"}, "IPD005", "critical", "WERKZEUG_RUN_MAIN='true'", id="reloader-child"),
        pytest.param({"WERKZEUG_SERVER_FD": "3"}, "IPD005", "critical", "WERKZEUG_SERVER_FD='3'", id="reloader-socket"),
        pytest.param({"IPDEBUG_ALLOW": "10.0.0.300"}, "IPD006", "critical", "'10.0.0.300' is not an IP address", id="bad-allow"),
        pytest.param({"IPDEBUG_MAX_WINDOW": "forever"}, "IPD006", "critical", "'forever' is not a duration", id="bad-max-window"),
        pytest.param({"IPDEBUG_MAX_WINDOW": "3600"}, "IPD006", "critical", "'3600' has no unit; write '3600m' for minutes", id="max-window-without-unit"),
        pytest.param({"IPDEBUG_TRUSTED_HOSTS": "*.example.com"}, "IPD006", "critical", "'*.example.com' is not a host name", id="bad-host"),
        pytest.param({"IPDEBUG_FLAG": "ftp://flags/x"}, "IPD006", "critical", "'ftp://flags/x' is a URL of an unknown kind", id="bad-flag-url"),
        pytest.param({"IPDEBUG_ALOW": "203.0.113.7"}, "IPD007", "warning", "IPDEBUG_ALOW in this shell's environment is not an ipdebug setting and is ignored (did you mean IPDEBUG_ALLOW?)", id="misspelt"),
        pytest.param({"IPDEBUG_TRUSTED_HOSTS": ""}, "IPD020", "warning", "['.localhost', '127.0.0.1'] of the IPDEBUG_* settings covers none of this server's names (web1.example.com)", id="default-hosts"),
        pytest.param({"IPDEBUG_TRUSTED_HOSTS": "app.example.org"}, "IPD020", "info", "['app.example.org']", id="other-hosts"),
        pytest.param({"IPDEBUG_TRUSTED_HOSTS": "WEB1.example.com"}, None, None, None, id="host-case"),
        pytest.param({"IPDEBUG_ALLOW": "0.0.0.0/0"}, "IPD021", "critical", "allow of the IPDEBUG_* settings contains '0.0.0.0/0'", id="allow-everyone"),
        pytest.param({"IPDEBUG_ALLOW": "::/0"}, "IPD021", "critical", "'::/0'", id="allow-everyone-v6"),
        pytest.param({"IPDEBUG_ALLOW": "0.0.0.0/1"}, "IPD021", "critical", "'0.0.0.0/1', every address in practice (a network wider than /8)", id="allow-half"),
        pytest.param({"IPDEBUG_ALLOW": "10.0.0.0/8"}, None, None, None, id="allow-private-8"),
        pytest.param({"IPDEBUG_ALLOW": "::ffff:0.0.0.0/96"}, "IPD021", "critical", "'0.0.0.0/0'", id="allow-everyone-mapped"),
        pytest.param({"IPDEBUG_TRUSTED_PROXIES": "0.0.0.0/0"}, "IPD022", "critical", "trusted_proxies of the IPDEBUG_* settings contains '0.0.0.0/0'", id="proxies-everyone"),
    ],
)  # fmt: skip
def test_environment(
    changes: dict[str, str],
    check: str | None,
    severity: str | None,
    value: str | None,
    flag: str,
    proc: Path,
) -> None:
    found = checks(flag, proc, env={**GOOD_ENV, **changes})
    if check is None:
        assert found == []
        return
    assert ids(found) == {check}
    assert only(found, check).severity == severity
    assert value is not None and value in only(found, check).message


def test_a_fixed_werkzeug_pin_is_not_shown(flag: str, proc: Path) -> None:
    found = checks(flag, proc, WERKZEUG_DEBUG_PIN="314159265")
    assert "314159265" not in json.dumps([f.to_json() for f in found])


# The app


@pytest.mark.parametrize(
    ("source", "attr", "expected", "value"),
    [
        pytest.param(
            """
            from werkzeug.debug import DebuggedApplication
            application = IPDebugMiddleware(DebuggedApplication(app, evalex=True), {options})
            """,
            "application",
            {"IPD010": "critical"},
            "{name}:application.app is a werkzeug.debug.DebuggedApplication (evalex=True)",
            id="debugged-inside-ipdebug",
        ),
        pytest.param(
            """
            from werkzeug.debug import DebuggedApplication
            from werkzeug.middleware.dispatcher import DispatcherMiddleware
            from werkzeug.middleware.proxy_fix import ProxyFix
            admin = DebuggedApplication(app)
            application = ProxyFix(DispatcherMiddleware(IPDebugMiddleware(app, {options}), {{"/admin": admin}}))
            """,
            "application",
            {"IPD010": "critical"},
            "{name}:application.app.mounts['/admin'] is a werkzeug.debug.DebuggedApplication",
            id="debugged-in-a-mount",
        ),
        pytest.param(
            """
            import functools
            from werkzeug.debug import DebuggedApplication
            inner = DebuggedApplication(IPDebugMiddleware(app, {options}))
            @functools.wraps(inner)
            def application(environ, start_response):
                return inner(environ, start_response)
            """,
            "application",
            {"IPD010": "critical"},
            "{name}:application.__wrapped__ is a werkzeug.debug.DebuggedApplication",
            id="debugged-behind-functools-wraps",
        ),
        pytest.param(
            """
            from flask import Flask
            flask_app = Flask(__name__)
            flask_app.debug = True
            flask_app.wsgi_app = IPDebugMiddleware(flask_app.wsgi_app, {options})
            """,
            "flask_app",
            {"IPD011": "critical"},
            "{name}:flask_app is a Flask app with debug on",
            id="flask-debug",
        ),
        pytest.param(
            """
            from flask import Flask
            def create_app(mode="production"):
                flask_app = Flask(__name__)
                flask_app.config["DEBUG"] = mode == "dev"
                return IPDebugMiddleware(flask_app, {options})
            """,
            "create_app('dev')",
            {"IPD011": "critical"},
            "{name}:create_app('dev').app is a Flask app with debug on",
            id="factory-with-arguments",
        ),
        pytest.param(
            "application = app\n",
            "application",
            {"IPD012": "info"},
            "ipdebug is not installed in {name}:application",
            id="no-ipdebug",
        ),
        pytest.param(
            """
            class Loop:
                def __init__(self):
                    self.app = self
                def __call__(self, environ, start_response):
                    return app(environ, start_response)
            application = Loop()
            """,
            "application",
            {"IPD012": "info"},
            "no IPDebugMiddleware",
            id="cycle",
        ),
        pytest.param(
            """
            application = IPDebugMiddleware(IPDebugMiddleware(app, {options}), {options})
            """,
            "application",
            {"IPD013": "warning"},
            "{name}:application is wrapped in 2 IPDebugMiddleware ({name}:application, {name}:application.app)",
            id="wrapped-twice",
        ),
        pytest.param(
            """
            from werkzeug.serving import run_simple
            application = IPDebugMiddleware(app, {options})
            run_simple("0.0.0.0", 5000, application, use_debugger=True)
            """,
            "application",
            {"IPD014": "critical"},
            "importing {name}:application starts Werkzeug's development server (run_simple('0.0.0.0', 5000, use_debugger=True))",
            id="run-simple-at-import",
        ),
        pytest.param(
            """
            from flask import Flask
            flask_app = Flask(__name__)
            flask_app.wsgi_app = IPDebugMiddleware(flask_app.wsgi_app, {options})
            flask_app.run(host="0.0.0.0", port=8000, debug=True)
            """,
            "flask_app",
            {"IPD014": "critical", "IPD011": "critical"},
            "run_simple('0.0.0.0', 8000, use_debugger=True)",
            id="flask-app-run-at-import",
        ),
        pytest.param(
            """
            application = IPDebugMiddleware(app, allow=["203.0.113.7"], trusted_proxies=["127.0.0.1"], flag={flag!r})
            """,
            "application",
            {"IPD020": "warning"},
            "trusted_hosts ['.localhost', '127.0.0.1'] of the IPDebugMiddleware in {name}:application covers none of this server's names (web1.example.com)",
            id="app-default-trusted-hosts",
        ),
        pytest.param(
            """
            application = IPDebugMiddleware(app, allow=["203.0.113.7"], trusted_hosts=[".example.com"], flag={flag!r} + ".other")
            """,
            "application",
            {"IPD040": "warning"},
            "the IPDebugMiddleware in {name}:application reads the flag {flag}.other (its flag setting), but this command checks {flag}",
            id="app-reads-another-flag",
        ),
        pytest.param(
            """
            application = IPDebugMiddleware(app, allow="10.0.0.300", flag={flag!r})
            """,
            "application",
            {"IPD006": "critical"},
            "allow in the IPDebugMiddleware in {name}:application is refused: allow: '10.0.0.300' is not an IP address or network; the middleware cannot be built with it, so the app does not start",
            id="app-with-a-bad-setting",
        ),
    ],
)  # fmt: skip
def test_app(
    source: str,
    attr: str,
    expected: dict[str, str],
    value: str,
    flag: str,
    proc: Path,
    app_module: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = GOOD_OPTIONS.format(flag=flag)
    name = app_module(WSGI + textwrap.dedent(source).format(options=options, flag=flag))
    found = checks(flag, proc, f"{name}:{attr}")
    assert {f.id: f.severity for f in found} == expected
    assert any(value.format(name=name, flag=flag) in f.message for f in found), found
    assert capsys.readouterr().out == ""  # what the app prints goes to stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("doctor_no_such_module:app", "ModuleNotFoundError: No module named 'doctor_no_such_module'", id="no-module"),
        pytest.param("{name}:nothing", "AttributeError", id="no-attribute"),
        pytest.param("{name}:broken()", "RuntimeError: no database", id="factory-fails"),
        pytest.param("{name}:app(open('/etc/passwd'))", "ValueError", id="not-literal"),
        pytest.param("{name}:VALUE", "is not a WSGI application", id="not-callable"),
        pytest.param("{name}_raises:app", "RuntimeError: import-time failure", id="import-fails"),
    ],
)  # fmt: skip
def test_an_app_that_cannot_be_loaded_is_a_usage_error(
    spec: str,
    message: str,
    flag: str,
    proc: Path,
    app_module: Callable[[str], str],
) -> None:
    name = app_module(
        WSGI + "VALUE = 42\ndef broken():\n    raise RuntimeError('no database')\n"
    )
    (Path.cwd() / f"{name}_raises.py").write_text(
        "raise RuntimeError('import-time failure')\n"
    )
    with pytest.raises(ipdebug.ConfigError) as info:
        checks(flag, proc, spec.format(name=name))
    assert str(info.value).startswith(f"APP_IMPORT_PATH: {spec.format(name=name)!r}")
    assert message in str(info.value)
    sys.modules.pop(f"{name}_raises", None)


# The flag and the files beside it


def _enable(flag: str, duration: str = "5m", **options: t.Any) -> ipdebug.Enabled:
    options.setdefault("allow", ["203.0.113.7"])
    return ipdebug.enable(duration, flag=flag, environ={}, **options)


def test_a_refused_flag_is_critical_with_the_store_s_reason(
    flag: str, proc: Path
) -> None:
    _enable(flag)
    os.chmod(flag, 0o666)
    finding = only(checks(flag, proc), "IPD030")
    assert finding.severity == "critical"
    assert f"the flag {flag} is refused" in finding.message
    assert "writable by group or others (mode 0666)" in finding.message


def test_a_flag_in_an_open_directory_is_refused(flag: str, proc: Path) -> None:
    _enable(flag)
    os.chmod(os.path.dirname(flag), 0o777)
    finding = only(checks(flag, proc), "IPD030")
    assert "its directory is writable by group or others (mode 0777)" in finding.message


def test_a_corrupt_flag_is_refused(flag: str, proc: Path) -> None:
    _enable(flag)
    Path(flag).write_text("{")
    assert "is not valid JSON" in only(checks(flag, proc), "IPD030").message


@pytest.mark.skipif(not ROOT, reason="needs root to give the flag away")
def test_a_flag_of_another_user_is_refused(flag: str, proc: Path) -> None:
    _enable(flag)
    os.chown(flag, 65534, 65534)
    assert "is owned by uid 65534" in only(checks(flag, proc), "IPD030").message


@pytest.mark.skipif(not ROOT, reason="only root judges another user's flag")
def test_root_does_not_judge_another_user_s_flag(flag: str, proc: Path) -> None:
    _enable(flag)
    os.chown(os.path.dirname(flag), 65534, 65534)
    found = checks(flag, proc)
    assert ids(found) == {"IPD041"}
    assert os.path.dirname(flag) in found[0].message
    assert "sudo -u" in found[0].fix


@pytest.mark.skipif(not ROOT, reason="about running as root")
def test_root_s_default_flag_is_reported(
    tmp_path: Path, proc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = str(tmp_path / "root-home" / "flag.json")
    monkeypatch.setattr(config, "default_flag", lambda uid=None: default)
    found = run_checks(None, GOOD_ENV, proc=str(proc), hostnames=HOSTNAMES)
    assert ids(found) == {"IPD039"}
    assert f"the flag {default} is root's default" in found[0].message


def test_an_open_directory_without_a_flag_is_reported(flag: str, proc: Path) -> None:
    os.makedirs(os.path.dirname(flag), mode=0o700)
    os.chmod(os.path.dirname(flag), 0o770)
    finding = only(checks(flag, proc), "IPD031")
    assert finding.severity == "warning"
    assert "(mode 0770)" in finding.message
    os.chmod(os.path.dirname(flag), 0o1777)  # sticky, like /tmp: refused too
    finding = only(checks(flag, proc), "IPD031")
    assert "is shared with other users (mode 1777, like /tmp)" in finding.message
    os.chmod(os.path.dirname(flag), 0o700)
    assert checks(flag, proc) == []


def test_a_long_window_is_reported(flag: str, proc: Path) -> None:
    _enable(flag, "55m", reason="INC-42")
    found = checks(flag, proc)
    assert ids(found) == {"IPD032", "IPD035"}
    finding = only(found, "IPD032")
    assert finding.severity == "warning"
    assert re.search(r"open for 5[45]m(\d+s)? more", finding.message), finding
    assert "reason 'INC-42'" in finding.message
    assert ids(checks(flag, proc)) - {"IPD035"} == {"IPD032"}
    _enable(flag, "30m")
    assert ids(checks(flag, proc)) == {"IPD035"}


def test_a_window_nobody_can_use_is_reported(flag: str, proc: Path) -> None:
    _enable(flag, allow=None)
    found = checks(flag, proc, IPDEBUG_ALLOW="")
    assert ids(found) == {"IPD033", "IPD035"}
    assert "nobody gets the debugger" in only(found, "IPD033").message
    assert ids(checks(flag, proc)) == {"IPD035"}  # the deployment's allow decides


@pytest.mark.parametrize("everyone", ["0.0.0.0/0", "::/0", "::ffff:0:0/96"])
def test_a_window_for_everyone_is_critical(
    everyone: str, flag: str, proc: Path
) -> None:
    _enable(flag, allow=["203.0.113.7", everyone], allow_everyone=True)
    finding = only(checks(flag, proc), "IPD021")
    assert finding.severity == "critical"
    assert "the open window's allowlist contains '" in finding.message
    assert everyone.replace("::ffff:0:0/96", "0.0.0.0/0") in finding.message


def test_a_locked_console_is_reported(flag: str, proc: Path) -> None:
    _enable(flag)
    window = FileFlagStore(flag).load(time.time())
    assert window is not None
    for _ in range(MAX_PIN_FAILURES):
        FileFlagStore(flag).count_pin_failure(window.id)
    finding = only(checks(flag, proc), "IPD034")
    assert f"window {window.id[:8]} is locked after 10 wrong PINs" in finding.message


def test_a_window_seen_by_the_app_is_not_reported(
    flag: str, proc: Path, make: Callable[..., ipdebug.IPDebugMiddleware]
) -> None:
    middleware = make(allow=["203.0.113.7"], trusted_hosts=[".example.com"])
    opened = _enable(flag)
    assert only(checks(flag, proc), "IPD035").message.startswith(
        f"no app process has reported window {opened.window_id[:8]} yet"
    )
    middleware.switch.poll_now()  # writes window.opened to audit.log
    assert checks(flag, proc) == []


@pytest.mark.skipif(
    "attach" not in inspect.signature(ipdebug.enable).parameters,
    reason="ipdebug enable --attach is not there",
)
def test_a_debugpy_window_is_reported(flag: str, proc: Path) -> None:
    _enable(flag, attach="debugpy")
    assert only(checks(flag, proc), "IPD036").severity == "warning"


def test_a_long_capturing_window_is_reported(flag: str, proc: Path) -> None:
    _enable(flag, "45m", capture=True)
    found = only(checks(flag, proc), "IPD060")
    assert found.severity == "warning"
    assert "captures every client's unhandled errors" in found.message
    _enable(flag, "15m", capture=True)
    assert not [f for f in checks(flag, proc) if f.id == "IPD060"]


def _open_relay(d: Path) -> None:
    (d / "relay").mkdir()
    os.chmod(d / "relay", 0o755)


def _rotated_writable(d: Path) -> None:
    os.replace(d / "audit.log", d / "audit.log.1")
    os.chmod(d / "audit.log.1", 0o622)


def _foreign_attach(d: Path) -> None:
    if not ROOT:
        pytest.skip("giving a file to another user needs root")
    (d / "attach").mkdir(mode=0o700)
    os.chown(d / "attach", 65534, 65534)


def _foreign_audit(d: Path) -> None:
    if not ROOT:
        pytest.skip("giving a file to another user needs root")
    os.chown(d / "audit.log", 65534, 65534)


def _audit_symlink(d: Path) -> None:
    (d / "audit.log").unlink()
    (d / "audit.log").symlink_to("/dev/null")


@pytest.mark.parametrize(
    ("damage", "check", "value"),
    [
        pytest.param(_open_relay, "IPD037", "relay has mode 0755, not 0700", id="relay-open"),
        pytest.param(lambda d: (d / "relay").symlink_to(d), "IPD037", "relay is a symbolic link", id="relay-symlink"),
        pytest.param(_foreign_attach, "IPD037", "attach is owned by uid 65534", id="attach-foreign"),
        pytest.param(lambda d: (d / "attach").write_text(""), "IPD037", "attach is not a directory", id="attach-file"),
        pytest.param(lambda d: os.chmod(d / "audit.log", 0o644), "IPD038", "audit.log has mode 0644", id="audit-readable"),
        pytest.param(_rotated_writable, "IPD038", "audit.log.1 has mode 0622", id="old-audit-writable"),
        pytest.param(_audit_symlink, "IPD038", "is not a regular file", id="audit-symlink"),
        pytest.param(_foreign_audit, "IPD038", "ipdebug refuses to write to it", id="audit-foreign"),
    ],
)  # fmt: skip
def test_files_beside_the_flag(
    damage: Callable[[Path], object], check: str, value: str, flag: str, proc: Path
) -> None:
    _enable(flag)
    ipdebug.disable(flag, environ={})
    damage(Path(flag).parent)
    finding = only(checks(flag, proc), check)
    assert finding.severity == "warning"
    assert value in finding.message


# Processes


def test_werkzeug_s_development_server_is_found(flag: str, proc: Path) -> None:
    fake_process(proc, 100, ["/srv/venv/bin/python", "/srv/venv/bin/flask", "--app", "wsgi", "run", "--host", "0.0.0.0"], {})  # fmt: skip
    fake_process(proc, 200, ["python3", "-m", "werkzeug.serving", "wsgi:app"], {})
    fake_process(proc, 300, ["python3", "manage.py", "runserver_plus"], {})
    found = checks(flag, proc)
    messages = [f.message for f in found if f.id == "IPD015"]
    assert len(messages) == 3 and {f.severity for f in found} == {"critical"}
    assert "'/srv/venv/bin/python /srv/venv/bin/flask --app wsgi run --host 0.0.0.0' (pid 100)" in messages[0]  # fmt: skip
    assert "(pid 200)" in messages[1] and "(pid 300)" in messages[2]


def test_the_reloader_child_is_found_by_its_environment(flag: str, proc: Path) -> None:
    # app.run(debug=True): the reloader, and its child that serves.
    parent = {"PATH": "/usr/bin"}
    child = {**parent, "WERKZEUG_RUN_MAIN": "true", "WERKZEUG_SERVER_FD": "3"}
    fake_process(proc, 100, ["python3", "app.py"], parent)
    fake_process(proc, 101, ["python3", "app.py"], child)
    fake_process(proc, 102, ["python3", "other.py"], parent)  # a script
    found = checks(flag, proc)
    assert ids(found) == {"IPD015"}
    assert "'python3 app.py' (pids 100, 101)" in found[0].message


def test_the_app_module_run_as_a_script_is_found(
    flag: str, proc: Path, app_module: Callable[[str], str]
) -> None:
    options = GOOD_OPTIONS.format(flag=flag)
    name = app_module(
        WSGI
        + f"\napplication = IPDebugMiddleware(app, {options})\n"
        + "if __name__ == '__main__':\n"
        + "    from werkzeug.serving import run_simple\n"
        + "    run_simple('0.0.0.0', 5000, application)\n"
    )
    here = Path.cwd()
    fake_process(proc, 100, ["python3", "-u", f"{name}.py"], {}, cwd=here)
    fake_process(proc, 101, ["/usr/bin/python3", "-m", name], {}, cwd=Path("/"))
    fake_process(proc, 102, ["python3", "other.py"], {}, cwd=here)
    found = checks(flag, proc, f"{name}:application")
    assert ids(found) == {"IPD015"}
    assert sorted(re.findall(r"pid (\d+)", " ".join(f.message for f in found))) == ["100", "101"]  # fmt: skip


def test_the_environment_of_servers_is_checked(flag: str, proc: Path) -> None:
    argv = ["gunicorn: worker [wsgi:app]"]
    environ = {"FLASK_DEBUG": "1", "WERKZEUG_DEBUG_PIN": "off"}
    for pid in (100, 101, 102):
        fake_process(proc, pid, argv, environ)
    found = checks(flag, proc)
    assert {f.id: f.severity for f in found} == {
        "IPD001": "critical",
        "IPD003": "critical",
    }
    where = "the environment of 'gunicorn: worker [wsgi:app]' (pids 100, 101, 102)"
    assert all(where in f.message for f in found)


def test_servers_reading_another_flag_are_reported(flag: str, proc: Path) -> None:
    fake_process(proc, 100, ["/srv/venv/bin/gunicorn", "-c", "python:ipdebug.gunicorn", "wsgi:app"], {**GOOD_ENV, "IPDEBUG_FLAG": "/run/app/flag.json", "IPDEBUG_TRUSTED_PROXIES": "127.0.0.1"})  # fmt: skip
    fake_process(proc, 200, ["uwsgi", "--ini", "app.ini"], {**GOOD_ENV, "IPDEBUG_FLAG": flag})  # fmt: skip
    found = checks(flag, proc)
    assert {f.id: f.severity for f in found} == {"IPD040": "warning", "IPD017": "info"}
    mismatch = only(found, "IPD040")
    assert (
        "(pid 100) reads the flag /run/app/flag.json (its IPDEBUG_FLAG)"
        in mismatch.message
    )
    assert f"but this command checks {flag}" in mismatch.message
    assert "(IPDEBUG_TRUSTED_PROXIES)" in only(found, "IPD017").message


def test_unreadable_server_environments_are_mentioned(flag: str, proc: Path) -> None:
    fake_process(proc, 100, ["waitress-serve", "wsgi:app"], None)
    assert {f.id: f.severity for f in checks(flag, proc)} == {"IPD016": "info"}


def test_a_local_proxy_without_trusted_proxies(flag: str, proc: Path) -> None:
    fake_process(proc, 50, ["nginx: master process /usr/sbin/nginx"])
    assert checks(flag, proc, IPDEBUG_TRUSTED_PROXIES="127.0.0.1") == []
    found = checks(flag, proc)
    assert {f.id: f.severity for f in found} == {"IPD023": "warning"}
    assert "'nginx: master process /usr/sbin/nginx' (pid 50) runs on this host" in found[0].message  # fmt: skip
    found = checks(flag, proc, IPDEBUG_ALLOW="127.0.0.0/8,203.0.113.7")
    finding = only(found, "IPD024")
    assert finding.severity == "critical"
    assert "allow contains '127.0.0.0/8'" in finding.message
    _enable(flag, allow=["::1"])
    finding = only(checks(flag, proc), "IPD024")
    assert "the open window's allowlist contains '::1'" in finding.message


def test_forwarded_requests_in_the_audit_trail(flag: str, proc: Path) -> None:
    _enable(flag)
    ipdebug.disable(flag, environ={})
    store = FileFlagStore(flag)
    store.append_audit({"time": "2026-01-01T10:00:00Z", "event": "debugger.page", "client": "127.0.0.1", "forwarded": True})  # fmt: skip
    store.append_audit({"time": "2026-01-01T10:01:00Z", "event": "debugger.page", "client": "127.0.0.1", "forwarded": True})  # fmt: skip
    finding = only(checks(flag, proc), "IPD023")
    assert "2 requests in audit.log since 2026-01-01T10:00:00Z came with forwarding headers" in finding.message  # fmt: skip
    assert checks(flag, proc, IPDEBUG_TRUSTED_PROXIES="127.0.0.1") == []


def test_a_werkzeug_outside_the_tested_range(
    flag: str, proc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # check_werkzeug reads _version in ipdebug.doctor.environment: patch it there.
    monkeypatch.setattr(environment, "_version", lambda dist: (3, 2, 0))
    finding = only(checks(flag, proc), "IPD050")
    assert finding.message.startswith("Werkzeug 3.2.0 is installed")
    assert "werkzeug" in finding.fix.lower()


def test_classify() -> None:
    assert doctor.classify(["gunicorn: master [wsgi:app]"]) == "server"
    assert doctor.classify(["/v/bin/python", "/v/bin/gunicorn", "wsgi:app"]) == "server"
    assert doctor.classify(["python3", "-m", "waitress", "wsgi:app"]) == "server"
    assert doctor.classify(["uWSGI master"]) == "server"
    assert doctor.classify(["flask", "run"]) == "werkzeug"
    assert doctor.classify(["flask", "shell"]) is None
    assert doctor.classify(["nginx: worker process"]) == "proxy"
    assert doctor.classify(["/usr/bin/python3.11", "x.py"]) == "python"
    assert doctor.classify(["bash"]) is None and doctor.classify([]) is None


def test_every_check_has_a_test() -> None:
    here = Path(__file__)
    source = here.read_text() + (here.parent / "test_asgi_doctor.py").read_text()
    untested = [check for check in doctor.CHECKS if f'"{check}"' not in source]
    assert untested == []


# The command line


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    for name in list(os.environ):
        if name.startswith(("FLASK_", "WERKZEUG_")):
            monkeypatch.delenv(name)
    for name, value in GOOD_ENV.items():
        monkeypatch.setenv(name, value)


def test_command_clean_exits_0(
    flag: str, proc: Path, quiet_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--flag", flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ipdebug doctor: no problems found (flag ")
    assert "app not checked" in out


def test_command_looks_for_processes_in_the_patched_proc(
    flag: str, proc: Path, quiet_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command passes no proc=: run_checks reads ipdebug.doctor.PROC, which
    # the proc fixture patches. This fails if that patch stops taking effect.
    fake_process(proc, 100, ["flask", "run"], {})
    assert main(["doctor", "--flag", flag]) == 1
    out = capsys.readouterr().out
    assert "CRITICAL IPD015 Werkzeug's development server runs here: 'flask run' (pid 100)" in out  # fmt: skip


def test_command_prints_each_finding_and_exits_1_when_critical(
    flag: str,
    proc: Path,
    quiet_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("IPDEBUG_ALOW", "x")
    assert main(["doctor", "--flag", flag]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("CRITICAL IPD001 FLASK_DEBUG='1' in this shell's")
    assert lines[1].startswith("  fix: unset FLASK_DEBUG")
    assert lines[2].startswith("WARNING IPD007 IPDEBUG_ALOW")
    assert lines[3].startswith("  fix: ")
    assert lines[4].startswith("ipdebug doctor: 1 critical, 1 warning(s), 0 info")
    monkeypatch.delenv("FLASK_DEBUG")
    assert main(["doctor", "--flag", flag]) == 0  # warnings alone exit 0


def test_command_json(
    flag: str,
    proc: Path,
    quiet_env: None,
    app_module: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = app_module(
        WSGI
        + "print('banner from the app')\n"
        + "from werkzeug.debug import DebuggedApplication\n"
        + "application = DebuggedApplication(app)\n"
    )
    assert main(["doctor", f"{name}:application", "--flag", flag, "--json"]) == 1
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert "banner from the app" in err
    assert data == {
        "findings": [
            {
                "id": "IPD010",
                "severity": "critical",
                "message": f"{name}:application is a werkzeug.debug.DebuggedApplication (evalex=False): Werkzeug's debugger (tracebacks with source code) for every client, whatever ipdebug decides",
                "fix": doctor.CHECKS["IPD010"][2],
            },
            {
                "id": "IPD012",
                "severity": "info",
                "message": f"ipdebug is not installed in {name}:application: no IPDebugMiddleware in the app or anything it wraps",
                "fix": doctor.CHECKS["IPD012"][2],
            },
        ],
        "critical": 1,
        "warnings": 0,
        "info": 1,
        "app": f"{name}:application",
        "flag": flag,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["doctor", "doctor_missing_module:app"], "ipdebug: APP_IMPORT_PATH: 'doctor_missing_module:app' cannot be loaded: ModuleNotFoundError", id="no-module"),
        pytest.param(["doctor", "a", "b"], "unrecognized arguments: b", id="two-apps"),
        pytest.param(["doctor", "--bogus"], "unrecognized arguments: --bogus", id="unknown-option"),
    ],
)  # fmt: skip
def test_command_usage_errors_exit_2(
    argv: list[str],
    message: str,
    flag: str,
    proc: Path,
    quiet_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*argv, "--flag", flag]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert message in err


def test_installed_command(flag: str, tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IPDEBUG_", "FLASK_", "WERKZEUG_"))
    }
    command = os.path.join(os.path.dirname(sys.executable), "ipdebug")
    ran = subprocess.run(
        [command, "doctor", "--json", "--flag", flag],
        capture_output=True,
        text=True,
        env={**env, "FLASK_DEBUG": "1"},
        cwd=tmp_path,
        check=False,
    )
    assert ran.returncode == 1, ran.stderr
    data = json.loads(ran.stdout)
    assert {"findings", "critical", "warnings", "info", "app", "flag"} <= data.keys()
    assert data["critical"] >= 1 and data["flag"] == flag
    assert "IPD001" in {f["id"] for f in data["findings"]}


# trusted_proxies where no proxy is (issue 13)


def test_an_address_both_allowed_and_a_trusted_proxy(flag: str, proc: Path) -> None:
    found = checks(
        flag,
        proc,
        IPDEBUG_ALLOW="203.0.113.7,127.0.0.1",
        IPDEBUG_TRUSTED_PROXIES="127.0.0.0/8",
    )
    finding = only(found, "IPD025")
    assert finding.severity == "warning"
    assert finding.message.startswith(
        "'127.0.0.1' is in allow and in trusted_proxies of the IPDEBUG_* settings ('127.0.0.0/8')"
    )
    assert "unset IPDEBUG_TRUSTED_PROXIES" in finding.fix
    # Disjoint lists: nothing to say.
    assert "IPD025" not in ids(checks(flag, proc, IPDEBUG_TRUSTED_PROXIES="10.0.0.1"))
    # The open window's own list counts too.
    _enable(flag, allow=["::1"])
    finding = only(checks(flag, proc, IPDEBUG_TRUSTED_PROXIES="::1"), "IPD025")
    assert "'::1' is in the open window's allowlist" in finding.message


def test_trusted_proxies_that_never_forwarded_a_request(
    flag: str,
    proc: Path,
    make: Callable[..., ipdebug.IPDebugMiddleware],
    records: t.Any,
) -> None:
    from webtest import TestApp

    # The "In 60 seconds" mistake: a proxy listed, no proxy in front.
    middleware = make(
        allow=["127.0.0.1", "203.0.113.7"],
        trusted_proxies=["127.0.0.1"],
        trusted_hosts=[".example.com"],
    )
    _enable(flag, allow=["127.0.0.1", "203.0.113.7"])
    middleware.switch.poll_now()
    direct = TestApp(
        middleware,
        extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "app.example.com"},
    )
    for _ in range(3):
        with pytest.raises(Exception, match="local_value=42"):  # as without ipdebug
            direct.get("/fail")
    # Denied, said once at WARNING (shown without any logging configured),
    # and recorded once for doctor.
    warnings = [
        r.getMessage()
        for r in records.records
        if r.levelname == "WARNING" and "a trusted proxy" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "ipdebug denied a request from 127.0.0.1, a trusted proxy"
    )
    assert "unset trusted_proxies (IPDEBUG_TRUSTED_PROXIES)" in warnings[0]
    assert records.events().count("request.unforwarded") == 1
    env = {**GOOD_ENV, "IPDEBUG_TRUSTED_PROXIES": "127.0.0.1"}
    finding = only(checks(flag, proc, env=env), "IPD026")
    assert finding.severity == "warning"
    assert "1 request(s) from 127.0.0.1 (a trusted proxy) came without a forwarding header" in finding.message  # fmt: skip
    # Once a request came through the proxy, the list is right.
    proxied = direct.get(
        "/fail", headers={"X-Forwarded-For": "203.0.113.7"}, expect_errors=True
    )
    assert "__debugger__" in proxied.text  # the debugger page: forwarded=True
    assert "IPD026" not in ids(checks(flag, proc, env=env))
    # Without trusted_proxies, there is nothing to say about them.
    assert "IPD026" not in ids(checks(flag, proc))


def test_a_window_open_longer_than_it_is_used(flag: str, proc: Path) -> None:
    from ipdebug.pin import PinHash
    from ipdebug.stores.window import Window

    now = time.time()
    store = FileFlagStore(flag)

    def save(created: float) -> Window:
        window = Window.new(
            now=created,
            duration=1800,
            allow=("203.0.113.7",),
            reason="INC-42",
            by="test",
            pin_hash=PinHash.create("123456789"),
        )
        store.save(window)
        return window

    save(now - 60)
    assert "IPD042" not in ids(checks(flag, proc))  # young
    window = save(now - 20 * 60)
    finding = only(checks(flag, proc), "IPD042")
    assert finding.severity == "warning"
    assert (
        finding.message.startswith(f"window {window.id[:8]} has been open for 20m")
        and "nobody has used its debugger" in finding.message
    )
    assert "ipdebug disable" in finding.fix
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 16 * 60))
    store.append_audit({"time": stamp, "event": "debugger.page", "client": "203.0.113.7"})  # fmt: skip
    assert "last used 16m" in only(checks(flag, proc), "IPD042").message
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
    store.append_audit({"time": stamp, "event": "console.command", "client": "203.0.113.7"})  # fmt: skip
    assert "IPD042" not in ids(checks(flag, proc))  # in use
