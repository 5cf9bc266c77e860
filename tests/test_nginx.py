"""ipdebug behind a real nginx: the client address is the peer nginx saw.

The setup is the README's "Behind nginx": nginx appends its peer to
``X-Forwarded-For``, gunicorn (4 sync workers, ``-c python:ipdebug.gunicorn``)
listens on 127.0.0.1 with ``IPDEBUG_TRUSTED_PROXIES=127.0.0.1`` and
``IPDEBUG_ALLOW=127.0.0.3``. Clients bind to loopback source addresses:
127.0.0.3 is the operator, 127.0.0.4 a stranger. A second gunicorn without
ipdebug, behind the same nginx, gives the bytes a denied client must get.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator

import pytest

from .appservers import is_debugger
from .conftest import secret_and_frame
from .nginx import PROXY_HEADERS, Site, nginx
from .nginx_matrix import DIRECT, OPERATOR, PROXY, STRANGER, THROUGH_NGINX, Headers, get
from .servers import (
    Gunicorn,
    console_output,
    debugger_path,
    gunicorn,
    open_window,
    pin_cookie,
    request,
    wait_until,
)

pytestmark = pytest.mark.server


@dataclasses.dataclass
class Stack:
    server: Gunicorn  # with ipdebug
    bare: Gunicorn  # the same app without ipdebug
    nginx: int  # nginx -> server, Host $http_host (keeps the port)
    nginx_host: int  # nginx -> server, Host $host (the README's line)
    nginx_bare: int  # nginx -> bare
    pin: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("nginx")
    env = {"IPDEBUG_TRUSTED_PROXIES": PROXY, "IPDEBUG_ALLOW": OPERATOR}
    with (
        gunicorn(tmp_path, "-w", "4", env=env) as server,
        gunicorn(tmp_path, "-w", "4", env=env, ipdebug=False, name="bare") as bare,
        nginx(
            tmp_path,
            [
                Site(server.port),
                Site(server.port, headers={**PROXY_HEADERS, "Host": "$host"}),
                Site(bare.port),
            ],
        ) as proxy,
    ):
        opened = open_window(server, OPERATOR)
        yield Stack(
            server=server,
            bare=bare,
            nginx=proxy.ports[0],
            nginx_host=proxy.ports[1],
            nginx_bare=proxy.ports[2],
            pin=opened.pin,
        )


@pytest.fixture(scope="module")
def session(stack: Stack) -> tuple[str, str, str]:
    """The operator's debugger secret, frame id and unlock cookie."""
    secret, frame = secret_and_frame(
        request(stack.nginx, "/fail", source=OPERATOR).text
    )
    return (
        secret,
        frame,
        pin_cookie(stack.nginx, secret, stack.pin, source=OPERATOR)["Cookie"],
    )


def test_the_operator_gets_the_debugger_and_its_console_through_nginx(
    stack: Stack,
) -> None:
    page = request(stack.nginx, "/fail", source=OPERATOR)
    assert is_debugger(page), page.text[:300]
    assert page.header("Cache-Control") == "no-store"
    secret, frame = secret_and_frame(page.text)
    cookie = pin_cookie(stack.nginx, secret, stack.pin, source=OPERATOR)
    # nginx opens a new upstream connection per request, so the console
    # request may land on another worker and go through the relay.
    answer = request(
        stack.nginx,
        debugger_path(secret, cmd="1+1", frm=frame),
        source=OPERATOR,
        headers=cookie,
    )
    assert answer.header("Cache-Control") == "no-store"
    assert console_output(answer) == "2"
    # ipdebug resolved the client nginx saw, not nginx itself.
    events = ("debugger.page", "pin.success", "console.command")
    wait_until(
        lambda: all(
            f"event={event} client={OPERATOR}" in stack.server.log_text()
            for event in events
        )
    )
    assert f"client={PROXY}" not in stack.server.log_text()
    # The README's `proxy_set_header Host $host;` (port dropped) works too.
    assert is_debugger(request(stack.nginx_host, "/fail", source=OPERATOR))


# A denied request's bytes are compared on each of these paths, the last two
# with the operator's real secret, PIN and unlock cookie.
def denied_paths(secret: str, frame: str, pin: str) -> list[str]:
    return [
        "/",
        "/fail",
        "/?__debugger__=yes&cmd=resource&f=debugger.js",
        debugger_path(secret, cmd="pinauth", pin=pin),
        debugger_path(secret, cmd="1+1", frm=frame),
    ]


@pytest.mark.parametrize(("source", "headers", "expect_gated"), THROUGH_NGINX)
def test_the_client_is_the_peer_nginx_saw(
    stack: Stack,
    session: tuple[str, str, str],
    source: str,
    headers: Headers,
    expect_gated: bool,
) -> None:
    secret, frame, cookie = session
    if expect_gated:
        page = get(stack.nginx, "/fail", source=source, headers=headers)
        assert is_debugger(page), page.text[:300]
        assert page.header("Cache-Control") == "no-store"
        return
    # Denied, even with the operator's secret, PIN and cookie: exactly the
    # bytes of the same request to the app without ipdebug.
    headers = [*headers, ("Cookie", cookie)]
    for path in denied_paths(secret, frame, stack.pin):
        got = get(stack.nginx, path, source=source, headers=headers)
        want = get(stack.nginx_bare, path, source=source, headers=headers)
        assert not is_debugger(got)
        assert got.without_date() == want.without_date(), path


@pytest.mark.parametrize(("source", "headers", "expect_gated"), DIRECT)
def test_requests_that_bypass_nginx(
    stack: Stack, source: str, headers: Headers, expect_gated: bool
) -> None:
    got = get(stack.server.port, "/fail", source=source, headers=headers)
    if expect_gated:
        assert is_debugger(got), got.text[:300]
        return
    want = get(stack.bare.port, "/fail", source=source, headers=headers)
    assert not is_debugger(got)
    assert got.without_date() == want.without_date()
    assert got.status == 500 and b"Internal Server Error" in got.body


def test_denied_clients_leave_no_trace_in_the_audit_log(
    stack: Stack, session: tuple[str, str, str]
) -> None:
    secret, frame, cookie = session
    before = stack.server.log_text()
    for path in denied_paths(secret, frame, stack.pin):
        get(stack.nginx, path, source=STRANGER, headers=[("Cookie", cookie)])
    time.sleep(0.2)
    new = stack.server.log_text()[len(before) :]
    assert not re.findall(r"event=\S+ client=(?!-)\S+", new), new
    assert "pin.failure" not in new
