"""``ipdebug doctor`` and ASGI: uvicorn's own walk of X-Forwarded-For
(IPD027, IPD028), read from command lines and environments, and an ASGI app
wrapped by ipdebug found by the app walk.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ipdebug.config import load_settings
from ipdebug.doctor import run_checks
from ipdebug.doctor.processes import scan_processes
from ipdebug.doctor.uvicorn import check_uvicorn, uvicorn_proxy

from .doctoring import GOOD_ENV, HOSTNAMES, fake_process
from .servers import free_port, server_environ, spawn, stop, wait_for_port

UV = ["/usr/bin/python3", "-m", "uvicorn"]
GUNI = ["/srv/venv/bin/gunicorn", "-k", "uvicorn_worker.UvicornWorker"]


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        pytest.param([*UV, "main:app"], {}, (True, "127.0.0.1,::1"), id="uvicorn-default"),
        pytest.param([*UV, "main:app"], {"FORWARDED_ALLOW_IPS": "*"}, (True, "*"), id="env-star"),
        pytest.param([*UV, "--forwarded-allow-ips", "*", "main:app"], {}, (True, "*"), id="option-star"),
        pytest.param([*UV, "--forwarded-allow-ips=10.0.0.1", "main:app"], {"FORWARDED_ALLOW_IPS": "*"}, (True, "10.0.0.1"), id="option-wins"),
        pytest.param([*UV, "--no-proxy-headers", "main:app"], {}, (False, "127.0.0.1,::1"), id="no-proxy-headers"),
        pytest.param(["/srv/venv/bin/uvicorn", "main:app"], None, (True, "127.0.0.1,::1"), id="script-env-unreadable"),
        pytest.param([*GUNI, "--forwarded-allow-ips", "*", "main:app"], {}, (True, "*"), id="gunicorn-uvicorn-worker"),
        pytest.param([*GUNI, "--no-proxy-headers", "main:app"], {}, (True, "127.0.0.1,::1"), id="gunicorn-has-no-such-option"),
        pytest.param(["/srv/venv/bin/gunicorn", "--forwarded-allow-ips", "*", "wsgi:app"], {}, None, id="gunicorn-wsgi-not-uvicorn"),
        pytest.param(["/usr/bin/python3", "manage.py"], {}, None, id="other"),
    ],
)  # fmt: skip
def test_uvicorn_proxy(
    argv: list[str], environ: dict[str, str] | None, expected: object
) -> None:
    assert uvicorn_proxy(argv, environ) == expected


def test_doctor_flags_a_star_and_two_walks(tmp_path: Path, proc: Path) -> None:
    flag = str(tmp_path / "state" / "flag.json")
    fake_process(proc, 4101, [*UV, "--forwarded-allow-ips", "*", "main:app"], {})
    fake_process(proc, 4102, [*UV, "--no-proxy-headers", "main:app"], {})
    found = run_checks(None, GOOD_ENV, flag=flag, proc=str(proc), hostnames=HOSTNAMES)
    star = [f for f in found if f.id == "IPD027"]
    assert len(star) == 1 and star[0].severity == "critical"
    assert "4101" in star[0].message and "'*'" in star[0].message
    assert not [f for f in found if f.id == "IPD028"]  # trusted_proxies unset
    env = {**GOOD_ENV, "IPDEBUG_TRUSTED_PROXIES": "127.0.0.1"}
    found = run_checks(None, env, flag=flag, proc=str(proc), hostnames=HOSTNAMES)
    two = [f for f in found if f.id == "IPD028"]
    assert len(two) == 1 and "4101" in two[0].message  # not the --no-proxy-headers one
    assert "--no-proxy-headers" in two[0].fix


def test_an_asgi_app_wrapped_by_ipdebug_is_found(
    tmp_path: Path,
    proc: Path,
    app_module: Callable[[str], str],
) -> None:
    flag = str(tmp_path / "state" / "flag.json")
    source = textwrap.dedent(
        f"""
        from starlette.applications import Starlette
        from ipdebug.asgi import IPDebugASGIMiddleware

        app = IPDebugASGIMiddleware(
            Starlette(), allow=["203.0.113.7"], trusted_hosts=[".example.com"],
            flag={flag!r},
        )
        """
    )
    name = app_module(source)
    found = run_checks(
        f"{name}:app", GOOD_ENV, flag=flag, proc=str(proc), hostnames=HOSTNAMES
    )
    assert "IPD012" not in {f.id for f in found}  # "ipdebug is not installed"
    bare = app_module(
        "from starlette.applications import Starlette\napp = Starlette()\n"
    )
    found = run_checks(
        f"{bare}:app", GOOD_ENV, flag=flag, proc=str(proc), hostnames=HOSTNAMES
    )
    assert "IPD012" in {f.id for f in found}


@pytest.mark.server
def test_a_real_uvicorn_trusting_everyone_is_flagged(tmp_path: Path) -> None:
    port = free_port()
    environ = server_environ(
        tmp_path, "uvicorn", str(tmp_path / "flag.json"), {"FORWARDED_ALLOW_IPS": "*"}
    )
    process = spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "tests.apps.asgi_apps:fastapi_bare",
        ],
        environ=environ,
        log=tmp_path / "uvicorn.log",
    )
    try:
        wait_for_port(port, process=process, timeout=60)
        time.sleep(0.1)
        ours = [p for p in scan_processes("/proc") if process.pid in p.pids]
        assert ours, "the uvicorn process was not found in /proc"
        settings = [(load_settings(environ={}), "the IPDEBUG_* settings")]
        found = check_uvicorn(ours, settings)
        assert [f.id for f in found] == ["IPD027"]
    finally:
        stop(process)
