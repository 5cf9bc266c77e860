"""The native engine under real gunicorn: the console across workers over
POST, and an access log that never records the PIN or console input.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.parse
from http.client import HTTPResponse
from pathlib import Path

import pytest

import ipdebug

from .servers import (
    Gunicorn,
    Reply,
    connected_elsewhere,
    gunicorn,
    native_result,
    open_window,
    request,
    wait_until,
)

pytestmark = pytest.mark.server

ACCESS_FORMAT = '%(h)s "%(r)s" query=%(q)s %(s)s'


def native_page(server: Gunicorn) -> tuple[str, str, int]:
    page = request(server.port, "/fail")
    assert page.status == 500 and 'data-engine="native"' in page.text, page.text[:300]
    secret = re.search(r'data-secret="([^"]+)"', page.text)
    frames = re.findall(r'<li class="frame" id="frame-(\d+)"', page.text)
    assert secret and frames
    return secret.group(1), frames[-1], int(secret.group(1).split("x")[0])


def post_on(
    sock: socket.socket, path: str, fields: dict[str, str], headers: dict[str, str]
) -> Reply:
    body = urllib.parse.urlencode(fields).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{sock.getpeername()[1]}",
        "Connection: close",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    response = HTTPResponse(sock)
    response.begin()
    return Reply(response.status, response.getheaders(), response.read())


def post_spread(
    port: int, cmd: str, bodies: list[dict[str, str]], headers: dict[str, str]
) -> list[Reply]:
    """Like ``spread``: every connection opened first, so that the POSTs
    land on different workers.
    """
    socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in bodies]
    try:
        time.sleep(0.05)
        return [
            post_on(sock, f"/?__debugger__=yes&cmd={cmd}", body, headers)
            for sock, body in zip(socks, bodies, strict=True)
        ]
    finally:
        for sock in socks:
            sock.close()


def test_native_console_across_workers_and_nothing_secret_in_the_access_log(
    tmp_path: Path,
) -> None:
    access = tmp_path / "access.log"
    with gunicorn(
        tmp_path,
        "-w",
        "4",
        "--access-logfile",
        str(access),
        "--access-logformat",
        ACCESS_FORMAT,
        env={"IPDEBUG_ENGINE": "native"},
    ) as server:
        opened = open_window(server)
        secret, frame, owner = native_page(server)
        headers = {
            "X-IPDebug-Secret": secret,
            "Origin": f"http://127.0.0.1:{server.port}",
        }
        # PIN: a POST; wrong then right, on whatever worker accepts it.
        (wrong,) = post_spread(
            server.port, "pinauth", [{"pin": "000-000-000"}], headers
        )
        assert wrong.status == 200, (wrong.status, wrong.text)
        assert json.loads(wrong.body) == {"auth": False, "exhausted": False}
        (right,) = post_spread(server.port, "pinauth", [{"pin": opened.pin}], headers)
        assert json.loads(right.body) == {"auth": True, "exhausted": False}
        cookie = right.header("Set-Cookie")
        assert cookie and "SameSite=Strict" in cookie
        headers["Cookie"] = cookie.split(";")[0]
        (first,) = post_spread(
            server.port,
            "eval",
            [{"frm": frame, "code": "console_marker = 'INPUT-MARKER-51'\nx = 6*7\nx"}],
            headers,
        )
        assert native_result(first) == "42"
        commands = ["x", "worker_pid", "console_marker", "x + 1"] * 4
        expected = {
            "x": "42",
            "worker_pid": str(owner),
            "console_marker": "'INPUT-MARKER-51'",
            "x + 1": "43",
        }
        for start in range(0, len(commands), 4):
            chunk = commands[start : start + 4]
            replies = post_spread(
                server.port, "eval", [{"frm": frame, "code": c} for c in chunk], headers
            )
            for command, reply in zip(chunk, replies, strict=True):
                assert native_result(reply) == expected[command], (command, reply.text)
                assert reply.header("Cache-Control") == "no-store"
        # JSON for an API client, and its page, from whichever worker.
        api = request(server.port, "/fail", headers={"Accept": "application/json"})
        assert api.status == 500 and api.header("Content-Type") == "application/json"
        page_url = json.loads(api.body)["page_url"]
        for _ in range(4):
            held = request(server.port, page_url)
            assert held.status == 200 and "ZeroDivisionError" in held.text
        time.sleep(0.3)
        log = server.log_text()
        assert re.search(r"event=debugger\.relayed", log), (
            "no console request reached another worker: the test proved nothing"
        )
        # The banner's "Close window now", as an unlocked page offers it,
        # posted where another worker accepts it: relayed, body and all.
        page = request(server.port, "/fail", headers={"Cookie": headers["Cookie"]})
        form = dict(
            re.findall(
                r'<input type="hidden" name="(s|window)" value="([^"]+)">', page.text
            )
        )
        assert set(form) == {"s", "window"}, page.text[:2000]
        page_owner = int(form["s"].split("x")[0])
        with connected_elsewhere(server.port, page_owner) as sock:
            closed = post_on(
                sock,
                "/?__debugger__=yes&ipdebug=close",
                form,
                {"Origin": headers["Origin"], "Cookie": headers["Cookie"]},
            )
        assert closed.status == 200 and "window is closed" in closed.text
        assert not ipdebug.status(server.flag, environ={}).enabled
        wait_until(lambda: "event=window.disabled" in server.log_text())
        closer = re.search(
            r"\[(\d+)\] \[INFO\] event=window.disabled", server.log_text()
        )
        assert closer and int(closer.group(1)) == page_owner
    text = access.read_text()
    # The log is real and has every debugger request, with its query string...
    lines = text.splitlines()
    assert sum('"POST /?__debugger__=yes&cmd=eval ' in line for line in lines) == 17
    assert sum('"POST /?__debugger__=yes&cmd=pinauth ' in line for line in lines) == 2
    assert all(
        "query=__debugger__=yes&cmd=" in line
        for line in lines
        if "POST" in line and "ipdebug=close" not in line
    )
    (closing,) = [line for line in lines if "ipdebug=close" in line]
    assert '"POST /?__debugger__=yes&ipdebug=close ' in closing
    assert closing.endswith("query=__debugger__=yes&ipdebug=close 200")
    # ...and neither the PIN nor anything typed into the console.
    digits = opened.pin.replace("-", "")
    for secret_text in [
        opened.pin,
        digits,
        "000-000-000",
        "INPUT-MARKER-51",
        "console_marker",
        "worker_pid",
        "6*7",
        urllib.parse.quote("6*7"),
    ]:
        assert secret_text not in text, secret_text
    assert secret not in text  # the page's secret travels in a header
    assert form["s"] not in text  # and in the body of the banner's form
