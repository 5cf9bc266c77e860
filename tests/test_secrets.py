"""Secrets never leak: the PIN is in no log, flag, audit trail, process
title or message; the debugger secret reaches no denied client; every
debugger response is ``no-store``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ipdebug

from .servers import (
    debugger_page,
    debugger_path,
    gunicorn,
    open_window,
    pin_cookie,
    request,
    spread,
)

pytestmark = pytest.mark.server


def process_titles() -> str:
    titles = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                titles.append(
                    (entry / "cmdline")
                    .read_bytes()
                    .replace(b"\0", b" ")
                    .decode(errors="replace")
                )
            except OSError:
                continue
    return "\n".join(titles)


def test_secrets_stay_secret_under_gunicorn(tmp_path: Path) -> None:
    with gunicorn(tmp_path, "-w", "4") as server:
        opened = open_window(server)
        digits = opened.pin.replace("-", "")
        secret, frame, _ = debugger_page(server.get("/fail"))
        # Wrong PINs, then the right one, then console work.
        for _ in range(3):
            request(
                server.port, debugger_path(secret, cmd="pinauth", pin="123-456-789")
            )
        cookie = pin_cookie(server, secret, opened.pin)
        debugger_responses = [
            request(
                server.port,
                debugger_path(secret, cmd="x = 1", frm=frame),
                headers=cookie,
            ),
            request(server.port, debugger_path(secret, cmd="printpin")),
            request(server.port, "/?__debugger__=yes&cmd=resource&f=style.css"),
            request(
                server.port, debugger_path(secret, cmd="1", frm="12345"), headers=cookie
            ),
            request(
                server.port, debugger_path("1x2", cmd="1", frm=frame), headers=cookie
            ),
            request(server.port, "/fail"),
            *spread(
                server.port, [debugger_path(secret, cmd="x", frm=frame)] * 4, cookie
            ),
        ]
        for reply in debugger_responses:
            assert reply.header("Cache-Control") == "no-store", reply
            assert opened.pin not in reply.text and digits not in reply.text

        # A denied client, asking for everything it can think of without the
        # secret, never sees it.
        stranger_paths = [
            "/",
            "/fail",
            "/console",
            "/?__debugger__=yes&cmd=resource&f=debugger.js",
            "/?__debugger__=yes&cmd=printpin",
            "/?__debugger__=yes&cmd=pinauth&pin=000",
            f"/?__debugger__=yes&cmd=1&frm={frame}",
        ]
        for path in stranger_paths:
            for headers in ({}, {"X-Forwarded-For": "127.0.0.1"}, cookie):
                reply = request(server.port, path, source="127.0.0.2", headers=headers)
                assert (
                    secret not in reply.text and secret.split("x")[1] not in reply.text
                )
                assert reply.header("Cache-Control") is None

        # The CLI's own outputs.
        env = {**os.environ, "IPDEBUG_FLAG": server.flag}
        status = subprocess.run(
            [sys.executable, "-m", "ipdebug", "status", "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert json.loads(status.stdout)["enabled"] is True
        titles = process_titles()
        log = server.log_text()
        flag_text = Path(server.flag).read_text()
        trail = (Path(server.flag).parent / "audit.log").read_text()
        for text, where in [
            (status.stdout + status.stderr, "status"),
            (titles, "process titles"),
            (log, "gunicorn's log"),
            (flag_text, "the flag"),
            (trail, "the audit trail"),
        ]:
            assert opened.pin not in text, where
            assert digits not in text, where
        # The debugger secret is only in what the operator's browser got.
        assert secret not in log and secret not in trail


def test_error_messages_carry_no_pin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ipdebug.cli import main

    flag = str(tmp_path / "f" / "flag.json")
    opened = ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, environ={})
    for argv in (
        ["enable", "--for", "9h", "--flag", flag],
        ["enable", "--allow", "nope", "--flag", flag],
        ["status", "--flag", flag],
        ["status", "--json", "--flag", flag],
    ):
        main(argv)
    out, err = capsys.readouterr()
    assert opened.pin not in out + err and opened.pin.replace("-", "") not in out + err
