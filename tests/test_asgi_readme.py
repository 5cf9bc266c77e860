"""The ASGI page of the documentation (docs/asgi.md) is a promise: its
``main.py`` and its commands run as written (only the port 8000 becomes a
free one), each server on loopback and always stopped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .appservers import Served
from .docblocks import asgi_blocks
from .servers import (
    FLAG_POLL,
    ROOT,
    console_output,
    debugger_page,
    debugger_path,
    free_port,
    pin_cookie,
    spawn,
    stop,
    wait_for_port,
)

pytestmark = pytest.mark.server


def command(word: str) -> str:
    (found,) = [b.strip() for b in asgi_blocks("sh") if re.search(rf"\b{word}\b", b)]
    return found


def environ(home: Path) -> dict[str, str]:
    bin_dir = os.path.dirname(sys.executable)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
    }


def run_server(tmp_path: Path, line: str, name: str) -> tuple[Served, int]:
    port = free_port()
    process = spawn(
        ["bash", "-c", f"cd {tmp_path} && {line.replace('8000', str(port))}"],
        environ=environ(tmp_path),
        log=tmp_path / f"{name}.log",
    )
    return (
        Served(
            process=process, log=tmp_path / f"{name}.log", flag="", port=port, unix=None
        ),
        port,
    )


@pytest.mark.parametrize("word", ["uvicorn", "gunicorn"])
def test_fastapi_in_60_seconds(tmp_path: Path, word: str) -> None:
    (main,) = asgi_blocks("python")[:1]
    (tmp_path / "main.py").write_text(main)
    line = next(
        b.strip()
        for b in asgi_blocks("sh")
        if b.strip().startswith(f"IPDEBUG_ALLOW=127.0.0.1 {word}")
    )
    server, port = run_server(tmp_path, line, word)
    try:
        wait_for_port(port, process=server.process, timeout=60)
        enable = command("enable")
        out = subprocess.run(
            ["bash", "-c", enable],
            env=environ(tmp_path),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        pin = re.search(r"PIN:\s+(\d{3}-\d{3}-\d{3})", out)
        assert pin, out
        time.sleep(FLAG_POLL)  # every worker honours the window
        page = server.get("/")
        secret, _, _ = debugger_page(page)
        frame = re.findall(r'<div class="frame" id="frame-(\d+)">', page.text)[-1]
        cookie = pin_cookie(server, secret, pin.group(1))
        answer = server.get(
            debugger_path(secret, cmd="basket", frm=frame), headers=cookie
        )
        assert console_output(answer) == "{'apples': 3, 'pears': 0}"
        # Everybody else gets the app's own 500.
        denied = server.get("/", source="127.0.0.2")
        assert denied.status == 500 and denied.body == b"Internal Server Error"
    finally:
        stop(server.process)


def test_one_walk_recipe(tmp_path: Path) -> None:
    (main,) = asgi_blocks("python")[:1]
    (tmp_path / "main.py").write_text(main)
    line = next(
        b.strip()
        for b in asgi_blocks("sh")
        if b.strip().startswith("IPDEBUG_TRUSTED_PROXIES")
    )
    server, port = run_server(tmp_path, line, "one-walk")
    try:
        wait_for_port(port, process=server.process, timeout=60)
        # uvicorn left the client alone: the app sees nginx's (here: our) peer
        # and the header, which only ipdebug walks.
        reply = server.get("/", headers={"X-Forwarded-For": "203.0.113.7"})
        assert reply.status == 500 and reply.body == b"Internal Server Error"
    finally:
        stop(server.process)
