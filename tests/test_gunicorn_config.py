"""The two ways to add ipdebug to gunicorn, and an app that wraps itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .servers import (
    ROOT,
    console_output,
    console_text,
    debugger_page,
    debugger_path,
    gunicorn,
    open_window,
    pin_cookie,
    request,
    spread,
)

pytestmark = pytest.mark.server


def test_install_into_an_existing_config_keeps_its_hooks(tmp_path: Path) -> None:
    """examples/gunicorn.conf.py: a config of its own, behind a proxy on
    127.0.0.1 (simulated here by sending its X-Forwarded-For).
    """
    config = str(ROOT / "examples" / "gunicorn.conf.py")
    operator = {"X-Forwarded-For": "198.51.100.7"}
    with gunicorn(
        tmp_path, "-c", config, ipdebug=False, env={"IPDEBUG_ALLOW": "198.51.100.0/24"}
    ) as server:
        opened = open_window(server, "198.51.100.7")
        # Direct, without the proxy's header: denied (a proxy that sent no
        # header cannot vouch for anyone).
        assert "Werkzeug Debugger" not in request(server.port, "/fail").text
        secret, frame, owner = debugger_page(server.get("/fail", headers=operator))
        cookie = {
            **pin_cookie(server, secret, opened.pin, headers=operator),
            **operator,
        }
        for _ in range(2):
            paths = [debugger_path(secret, cmd="os.getpid()", frm=frame)] * 4
            for reply in spread(server.port, paths, cookie):
                assert console_output(reply) == str(owner)
        log = server.log_text()
        # The config's own hook ran in every worker, before ipdebug's.
        assert len(re.findall(r"worker \d+ ready", log)) == 4
        assert "event=debugger.relayed client=198.51.100.7" in log


def test_an_app_that_wraps_itself_is_not_wrapped_twice(tmp_path: Path) -> None:
    """examples/flask_app.py wraps its own wsgi_app; the gunicorn hook sees
    that and only routes the logs.
    """
    with gunicorn(tmp_path, "-w", "4", app="examples.flask_app:app") as server:
        opened = open_window(server)
        page = request(server.port, "/checkout")
        assert page.status == 500 and "ZeroDivisionError" in page.text
        secret = re.search(r'SECRET = "([^"]+)"', page.text)
        frames = re.findall(r'<div class="frame" id="frame-(\d+)">', page.text)
        assert secret and frames
        cookie = pin_cookie(server, secret.group(1), opened.pin)
        for reply in spread(
            server.port,
            [debugger_path(secret.group(1), cmd="basket", frm=frames[-1])] * 4,
            cookie,
        ):
            assert "'apples': 3" in console_text(reply)
        assert server.log_text().count("already uses IPDebugMiddleware") == 4
        # Everyone else gets the shop's own error page.
        other = request(server.port, "/checkout", source="127.0.0.2")
        assert other.status == 500 and "Sorry, something went wrong" in other.text
