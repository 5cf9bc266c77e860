"""ipdebug under real waitress: the client address waitress reports, on TCP,
behind a proxy it trusts (``--trusted-proxy``), and on a unix socket.

waitress is one process with threads, so the console needs no relay. What
matters is ``REMOTE_ADDR``, which waitress sets itself (see
``waitress/task.py`` and ``waitress/proxy_headers.py``, waitress 3.0):

- on TCP, the peer's address;
- on a unix socket, ``"localhost"`` (``UnixWSGIServer.fix_addr``): no
  address, so ipdebug denies it;
- with ``--trusted-proxy=ADDR --trusted-proxy-headers=x-forwarded-for`` and
  the peer exactly ``ADDR``, the last ``trusted_proxy_count`` (default 1)
  entries of ``X-Forwarded-For``, the leftmost of them, with a ``:port``
  cut off; without the header, the proxy's own address. From any other
  peer the forwarding headers are deleted from the environ
  (``clear_untrusted_proxy_headers``, on by default since waitress 3.0),
  and that happens *without* ``--trusted-proxy`` too.

So behind a proxy, waitress resolves the client and ipdebug needs no
``trusted_proxies``.

Clients bind to loopback source addresses: 127.0.0.1 is the operator (or
the proxy), 127.0.0.2 a stranger, 127.0.0.3 the client a proxy names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .appservers import Served, is_debugger, open_window_first, remote_addr, serve
from .servers import (
    console_output,
    debugger_page,
    debugger_path,
    open_window,
    pin_cookie,
)

pytestmark = pytest.mark.server

OPERATOR = "127.0.0.1"
STRANGER = "127.0.0.2"
CLIENT = "127.0.0.3"

WRAPPED = "tests.apps.wrapped:application"
BARE = "tests.apps.wrapped:app"

#: What a denied client tries; each must get the bare app's bytes.
DENIED_PATHS = [
    "/",
    "/fail",
    "/?__debugger__=yes&cmd=resource&f=debugger.js",
    "/console",
    "/x?__debugger__=yes&cmd=1%2B1&frm=1&s=1x2",
]

#: The deployment allows all of loopback; each window decides.
LOOPBACK = {"IPDEBUG_ALLOW": "127.0.0.0/8,::1"}

TRUST_PROXY = ["--trusted-proxy=127.0.0.1", "--trusted-proxy-headers=x-forwarded-for"]


def waitress(
    tmp_path: Path,
    *args: str,
    app: str = WRAPPED,
    name: str = "waitress",
    unix: bool = False,
    env: dict[str, str] | None = None,
) -> contextlib.AbstractContextManager[Served]:
    bind = "--unix-socket={bind}" if unix else "--listen={bind}"
    return serve(
        tmp_path,
        [sys.executable, "-m", "waitress", bind, *args, app],
        name=name,
        unix=unix,
        env=env,
    )


def assert_denied(
    server: Served,
    bare: Served,
    source: str = OPERATOR,
    headers: dict[str, str] | None = None,
) -> None:
    """Every path gives what waitress gives for the bare app."""
    for path in DENIED_PATHS:
        got = server.outcome(path, source=source, headers=headers)
        assert got == bare.outcome(path, source=source, headers=headers), path
    # ... which, for the failing view, is waitress's own error page.
    fail = server.get("/fail", source=source, headers=headers)
    assert fail.status == 500
    assert fail.body.startswith(b"Internal Server Error"), fail.text


def test_direct_tcp_the_operator_gets_the_debugger_a_stranger_waitress_page(
    tmp_path: Path,
) -> None:
    open_window_first(tmp_path, OPERATOR)
    with (
        waitress(tmp_path) as server,
        waitress(tmp_path, app=BARE, name="bare") as bare,
    ):
        assert remote_addr(server) == OPERATOR
        assert remote_addr(server, source=STRANGER) == STRANGER
        assert is_debugger(server.get("/fail"))
        for _ in range(2):
            assert_denied(server, bare, source=STRANGER)
        # A client's X-Forwarded-For reaches neither waitress's REMOTE_ADDR
        # nor the app (waitress deletes it), so it changes nothing.
        forged = {"X-Forwarded-For": OPERATOR}
        assert remote_addr(server, STRANGER, forged) == STRANGER
        assert_denied(server, bare, source=STRANGER, headers=forged)


# Behind a proxy waitress trusts: what waitress puts in REMOTE_ADDR, and
# whether a window for CLIENT lets that request in.
PROXIED = [
    pytest.param(OPERATOR, {"X-Forwarded-For": CLIENT}, CLIENT, True, id="proxy-names-client"),
    pytest.param(OPERATOR, {"X-Forwarded-For": f"203.0.113.9, {CLIENT}"}, CLIENT, True, id="rightmost-entry-wins"),
    pytest.param(OPERATOR, {"X-Forwarded-For": f"{CLIENT}:4711"}, CLIENT, True, id="entry-with-port"),
    pytest.param(OPERATOR, {"X-Forwarded-For": f"{CLIENT}, 127.0.0.4"}, "127.0.0.4", False, id="attack-forged-left-entry"),
    pytest.param(STRANGER, {"X-Forwarded-For": CLIENT}, STRANGER, False, id="attack-untrusted-peer-forges"),
    pytest.param(STRANGER, {"Forwarded": f"for={CLIENT}"}, STRANGER, False, id="attack-untrusted-peer-forwarded"),
    pytest.param(OPERATOR, {"Forwarded": f"for={CLIENT}"}, OPERATOR, False, id="forwarded-header-not-trusted"),
    pytest.param(OPERATOR, {"X-Forwarded-For": "garbage"}, "garbage", False, id="malformed-entry"),
    pytest.param(OPERATOR, {"X-Forwarded-For": f"::ffff:{CLIENT}"}, "::ffff", False, id="mapped-ipv6-mangled-by-waitress"),
    pytest.param(OPERATOR, {}, OPERATOR, False, id="proxy-without-header-is-the-proxy"),
]  # fmt: skip


@dataclasses.dataclass
class Pair:
    server: Served
    bare: Served


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """waitress trusting 127.0.0.1's X-Forwarded-For, ipdebug without
    ``trusted_proxies``, a window open for CLIENT only.
    """
    tmp_path = tmp_path_factory.mktemp("waitress-proxied")
    open_window_first(tmp_path, CLIENT)
    with (
        waitress(tmp_path, *TRUST_PROXY, env=LOOPBACK) as server,
        waitress(tmp_path, *TRUST_PROXY, app=BARE, name="bare") as bare,
    ):
        yield Pair(server, bare)


@pytest.mark.parametrize(("source", "headers", "seen", "gated"), PROXIED)
def test_behind_a_trusted_proxy_waitress_resolves_the_client(
    proxied: Pair, source: str, headers: dict[str, str], seen: str, gated: bool
) -> None:
    assert remote_addr(proxied.server, source, headers) == seen
    if gated:
        assert is_debugger(proxied.server.get("/fail", source=source, headers=headers))
    else:
        assert_denied(proxied.server, proxied.bare, source=source, headers=headers)


def test_behind_a_trusted_proxy_the_window_decides(tmp_path: Path) -> None:
    """The same request is let in or not by the window's own allowlist; a
    window that allows the proxy's address lets in every request that
    reaches waitress from the proxy without a header.
    """
    named = {"X-Forwarded-For": CLIENT}
    open_window_first(tmp_path, OPERATOR)
    with waitress(tmp_path, *TRUST_PROXY, env=LOOPBACK) as server:
        reply = server.get("/fail", headers=named)
        assert reply.status == 500 and b"Internal Server Error" in reply.body
        assert is_debugger(server.get("/fail"))
        open_window(server, CLIENT)
        assert is_debugger(server.get("/fail", headers=named))
        assert not is_debugger(server.get("/fail"))


def test_trusted_proxy_star_lets_any_client_choose_its_address(
    tmp_path: Path,
) -> None:
    """The hazard the README warns about: ``--trusted-proxy=*`` believes
    every peer's ``X-Forwarded-For``, so a stranger who names an allowed
    address gets the debugger. ipdebug cannot tell: it sees only
    ``REMOTE_ADDR``.
    """
    open_window_first(tmp_path, CLIENT)
    star = ["--trusted-proxy=*", "--trusted-proxy-headers=x-forwarded-for"]
    forged = {"X-Forwarded-For": CLIENT}
    with waitress(tmp_path, *star, env=LOOPBACK) as server:
        assert remote_addr(server, STRANGER, forged) == CLIENT
        assert is_debugger(server.get("/fail", source=STRANGER, headers=forged))


@pytest.mark.parametrize(
    ("args", "header_kept"),
    [
        pytest.param([], False, id="waitress-deletes-the-header"),
        pytest.param(
            ["--no-clear-untrusted-proxy-headers"], True, id="header-kept-ipdebug-walks"
        ),
    ],
)
def test_ipdebug_trusted_proxies_under_waitress(
    tmp_path: Path, args: list[str], header_kept: bool
) -> None:
    """With ipdebug's ``trusted_proxies`` instead of waitress's, the proxy's
    header must reach the app: by default waitress deletes it, and ipdebug
    then denies every request from the proxy (fail closed).
    """
    named = {"X-Forwarded-For": CLIENT}
    env = {**LOOPBACK, "IPDEBUG_TRUSTED_PROXIES": OPERATOR}
    open_window_first(tmp_path, CLIENT)
    with (
        waitress(tmp_path, *args, env=env) as server,
        waitress(tmp_path, *args, app=BARE, name="bare") as bare,
    ):
        seen = server.get("/environ", headers=named).text
        assert f'"REMOTE_ADDR": "{OPERATOR}"' in seen
        assert (f'"HTTP_X_FORWARDED_FOR": "{CLIENT}"' in seen) is header_kept
        if header_kept:
            assert is_debugger(server.get("/fail", headers=named))
        else:
            assert_denied(server, bare, headers=named)
        # Never from a peer that is not the proxy.
        assert_denied(server, bare, source=STRANGER, headers=named)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="unix-socket"),
        pytest.param(
            ["--trusted-proxy=localhost", "--trusted-proxy-headers=x-forwarded-for"],
            id="unix-socket-trusted-proxy-without-header",
        ),
    ],
)
def test_a_unix_socket_is_localhost_and_denied(tmp_path: Path, args: list[str]) -> None:
    # Even a window for every loopback address does not let it in.
    open_window_first(tmp_path, OPERATOR, "::1", CLIENT)
    with (
        waitress(tmp_path, *args, unix=True, env=LOOPBACK) as server,
        waitress(tmp_path, *args, app=BARE, name="bare", unix=True) as bare,
    ):
        assert remote_addr(server) == "localhost"
        for _ in range(2):
            assert_denied(server, bare)


def test_a_unix_socket_behind_a_proxy_waitress_trusts(tmp_path: Path) -> None:
    """nginx ``proxy_pass http://unix:...`` to waitress: waitress sees the
    peer as ``localhost``, so ``--trusted-proxy=localhost`` makes it read the
    header nginx appended.
    """
    args = ["--trusted-proxy=localhost", "--trusted-proxy-headers=x-forwarded-for"]
    named = {"X-Forwarded-For": f"203.0.113.9, {CLIENT}"}
    open_window_first(tmp_path, CLIENT)
    with (
        waitress(tmp_path, *args, unix=True, env=LOOPBACK) as server,
        waitress(tmp_path, *args, app=BARE, name="bare", unix=True) as bare,
    ):
        assert remote_addr(server, headers=named) == CLIENT
        assert is_debugger(server.get("/fail", headers=named))
        other = {"X-Forwarded-For": "127.0.0.4"}
        assert remote_addr(server, headers=other) == "127.0.0.4"
        assert_denied(server, bare, headers=other)


def test_pin_and_console_under_waitress_threads(tmp_path: Path) -> None:
    with waitress(tmp_path, "--threads=4") as server:
        opened = open_window(server, OPERATOR)
        secret, frame, owner = debugger_page(server.get("/fail"))
        assert owner == server.process.pid  # one process
        locked = server.get(debugger_path(secret, cmd="1+1", frm=frame))
        assert locked.status == 403 and "enter the PIN" in locked.text
        wrong = server.get(debugger_path(secret, cmd="pinauth", pin="000-000-000"))
        assert wrong.text == '{"auth": false, "exhausted": false}'
        cookie = pin_cookie(server, secret, opened.pin)
        first = server.get(
            debugger_path(secret, cmd="x = 6*7", frm=frame), headers=cookie
        )
        assert first.status == 200
        expected = {
            "x": "42",
            "worker_pid": str(owner),
            "os.getpid()": str(owner),
            "x + 1": "43",
        }
        commands = list(expected) * 4

        def run(command: str) -> str:
            return console_output(
                server.get(
                    debugger_path(secret, cmd=command, frm=frame), headers=cookie
                )
            )

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(run, commands))
        assert answers == [expected[c] for c in commands]
        # Each command ran once, in the one process, and is audited there.
        records = server.audit("console.command")
        assert len(records) == 1 + len(commands)
        assert {r["pid"] for r in records} == {owner}
        assert not server.audit("debugger.relayed")
