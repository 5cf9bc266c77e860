"""A fleet behind a load balancer: two gunicorn instances behind one nginx
configured with examples/nginx-fleet.conf; console requests reach the
instance that rendered the page, and a misrouted one gets a clear answer.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .nginx import fleet_config, nginx
from .servers import (
    console_output,
    cookie_header,
    cookies_of,
    debugger_path,
    free_port,
    gunicorn,
    native_result,
    open_window,
    post,
    request,
)

pytestmark = pytest.mark.server

OPERATOR = "127.0.0.3"
ENV = {"IPDEBUG_TRUSTED_PROXIES": "127.0.0.1", "IPDEBUG_ALLOW": OPERATOR}


def test_console_requests_follow_the_route_cookie(tmp_path: Path) -> None:
    with (
        gunicorn(
            tmp_path, "-w", "2", name="a", env={**ENV, "IPDEBUG_INSTANCE": "a"}
        ) as a,
        gunicorn(
            tmp_path, "-w", "2", name="b", env={**ENV, "IPDEBUG_INSTANCE": "b"}
        ) as b,
    ):
        assert a.flag == b.flag  # one flag for the fleet (Redis in real life)
        listen = free_port()
        with nginx(
            tmp_path, [], http=fleet_config(a.port, b.port, listen), listen=[listen]
        ) as proxy:
            (port,) = proxy.ports
            opened = open_window(a, OPERATOR)
            # Pages are balanced: both instances render some.
            owners = set()
            for _ in range(4):
                page = request(port, "/fail", source=OPERATOR)
                assert page.status == 500 and "Werkzeug Debugger" in page.text
                owners.add(page.header("X-IPDebug-Instance"))
            assert owners == {"a", "b"}

            jar: dict[str, str] = {}
            cookies_of(page, jar)
            instance = page.header("X-IPDebug-Instance")
            assert jar["ipdebug_route"] == instance
            secret = re.search(r'SECRET = "([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            frame = re.findall(r'<div class="frame" id="frame-(\d+)">', page.text)[-1]
            assert secret.endswith(f"~{instance}")
            owner_pid = int(secret.split("x")[0])

            unlocked = request(
                port,
                debugger_path(secret, cmd="pinauth", pin=opened.pin),
                source=OPERATOR,
                headers=cookie_header(jar),
            )
            assert unlocked.text == '{"auth": true, "exhausted": false}'
            cookies_of(unlocked, jar)
            for _ in range(30):
                reply = request(
                    port,
                    debugger_path(secret, cmd="os.getpid()", frm=frame),
                    source=OPERATOR,
                    headers=cookie_header(jar),
                )
                assert reply.header("X-IPDebug-Instance") == instance
                assert console_output(reply) == str(owner_pid)

            # Without the cookie, or sent to the other instance, the answer
            # says where the traceback is.
            other = b if instance == "a" else a
            misrouted = request(
                other.port,
                debugger_path(secret, cmd="1+1", frm=frame),
                headers={"X-Forwarded-For": OPERATOR, **cookie_header(jar)},
            )
            assert misrouted.status == 421
            assert f"belongs to instance '{instance}'" in misrouted.text
            assert "ipdebug_route cookie" in misrouted.text


def test_native_console_posts_follow_the_route_cookie(tmp_path: Path) -> None:
    """The same with the native engine: console input in POST bodies."""
    env = {**ENV, "IPDEBUG_ENGINE": "native"}
    with (
        gunicorn(
            tmp_path, "-w", "2", name="a", env={**env, "IPDEBUG_INSTANCE": "a"}
        ) as a,
        gunicorn(
            tmp_path, "-w", "2", name="b", env={**env, "IPDEBUG_INSTANCE": "b"}
        ) as b,
    ):
        listen = free_port()
        with nginx(
            tmp_path, [], http=fleet_config(a.port, b.port, listen), listen=[listen]
        ) as proxy:
            (port,) = proxy.ports
            opened = open_window(a, OPERATOR)
            page = request(port, "/fail", source=OPERATOR)
            assert page.status == 500 and 'data-engine="native"' in page.text
            jar: dict[str, str] = {}
            cookies_of(page, jar)
            instance = page.header("X-IPDebug-Instance")
            assert jar["ipdebug_route"] == instance
            secret = re.search(r'data-secret="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            frame = re.findall(r'<li class="frame" id="frame-(\d+)"', page.text)[-1]
            owner_pid = int(secret.split("x")[0])
            headers = {
                "X-IPDebug-Secret": secret,
                "Origin": f"http://127.0.0.1:{port}",
            }
            unlocked = post(
                port,
                "/?__debugger__=yes&cmd=pinauth",
                {"pin": opened.pin},
                source=OPERATOR,
                headers={**headers, **cookie_header(jar)},
            )
            assert unlocked.text == '{"auth": true, "exhausted": false}'
            cookies_of(unlocked, jar)
            for _ in range(20):
                reply = post(
                    port,
                    "/?__debugger__=yes&cmd=eval",
                    {"frm": frame, "code": "import os\nos.getpid()"},
                    source=OPERATOR,
                    headers={**headers, **cookie_header(jar)},
                )
                assert reply.header("X-IPDebug-Instance") == instance
                assert native_result(reply) == str(owner_pid)
            other = b if instance == "a" else a
            misrouted = post(
                other.port,
                "/?__debugger__=yes&cmd=eval",
                {"frm": frame, "code": "1+1"},
                headers={
                    "X-Forwarded-For": OPERATOR,
                    "X-IPDebug-Secret": secret,
                    **cookie_header(jar),
                },
            )
            assert misrouted.status == 421
            assert f"belongs to instance '{instance}'" in misrouted.text
