"""Capture under real gunicorn (4 sync workers, gthread), with a plain WSGI
app, a Flask app and the example Django project: a customer's failures are
captured in whichever worker served them, the customer gets the bare app's
bytes, and the operator lists and opens them from another address, with
the console answering from the right worker. Faults: a killed worker's
capture is a 410; a relay peer that hangs delays the list by a bounded
time and is named.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
import typing as t
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import ipdebug
from ipdebug.cli import main
from ipdebug.config import state_directory

from .conftest import CUSTOMER, OPERATOR
from .nginx import fleet_config, nginx
from .redis_server import redis_server
from .servers import (
    FLAG_POLL,
    Gunicorn,
    Reply,
    console_output,
    cookie_header,
    cookies_of,
    debugger_path,
    free_port,
    gunicorn,
    open_window,
    request,
    spread,
    wait_until,
)

pytestmark = pytest.mark.server

FAILURES = 12

MODES = [
    pytest.param(["-w", "4"], id="sync"),
    pytest.param(
        # At most two connections per worker: a busy worker stops accepting,
        # so the slow failures spread over the workers whatever the load.
        ["-w", "4", "-k", "gthread", "--threads", "2", "--worker-connections", "2"],
        id="gthread",
    ),
]
APPS = [
    pytest.param("tests.apps.customers:plain", "/customer?{}", id="wsgi"),
    pytest.param("tests.apps.customers:flask_app", "/customer?v={}", id="flask"),
]


def concurrently(port: int, paths: list[str], source: str) -> list[Reply]:
    """Every request at once, each on its own connection: the failing view
    is slow, so a busy worker stops accepting and the others take the rest.
    """
    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(lambda p: request(port, p, source=source), paths))


def capture_window(server: Gunicorn) -> ipdebug.Enabled:
    return open_window(server, OPERATOR, capture=True)


def listing(port: int) -> dict[str, t.Any]:
    reply = request(port, "/__ipdebug__/errors.json", source=OPERATOR)
    assert reply.status == 200, reply.text
    assert reply.header("Cache-Control") == "no-store"
    return t.cast(dict[str, t.Any], json.loads(reply.body))


def evaluate(
    port: int, url: str, pin: str, source: str, cookies: dict[str, str]
) -> tuple[str, int]:
    """Open a capture's page, unlock it, evaluate ``customer_value`` in its
    innermost frame: (the value's repr, the pid that rendered the page).
    """
    page = request(port, url, source=source)
    assert page.status == 200 and "Werkzeug Debugger" in page.text, page.text[:300]
    assert "captures the unhandled errors of every client" in page.text
    secret = re.search(r'SECRET = "([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    frame = re.findall(r'<div class="frame" id="frame-(\d+)">', page.text)[-1]
    if "pin" not in cookies:
        reply = request(
            port, debugger_path(secret, cmd="pinauth", pin=pin), source=source
        )
        assert reply.status == 200 and '"auth": true' in reply.text
        cookies["pin"] = (reply.header("Set-Cookie") or "").split(";")[0]
    answer = request(
        port,
        debugger_path(secret, cmd="customer_value", frm=frame),
        source=source,
        headers={"Cookie": cookies["pin"]},
    )
    return console_output(answer), int(secret.split("x")[0])


def customers_and_operator(
    server: Gunicorn, bare: Gunicorn, path: str, value_of: t.Callable[[int], str]
) -> None:
    """The whole story: see the module documentation."""
    opened = capture_window(server)
    paths = [path.format(urllib.parse.quote(value_of(n))) for n in range(FAILURES)]
    expected = request(bare.port, paths[0], source=CUSTOMER).without_date()
    replies = concurrently(server.port, paths, CUSTOMER)
    for reply in replies:
        assert reply.without_date()[0] == expected[0]
        assert reply.without_date()[2] == expected[2]
        assert [h for h in reply.without_date()[1] if h[0] != "Connection"] == [
            h for h in expected[1] if h[0] != "Connection"
        ]
    assert reply.status == 500

    found = listing(server.port)
    entries = found["errors"]
    assert found["unanswered"] == []
    assert len(entries) == FAILURES and len({e["id"] for e in entries}) == FAILURES
    assert [e["time"] for e in entries] == sorted(
        (e["time"] for e in entries), reverse=True
    )
    for entry in entries:
        assert (
            entry["method"] == "GET"
            and entry["path"] == urllib.parse.urlsplit(paths[0]).path
        )
        assert entry["client"] == CUSTOMER and "?" not in entry["path"]
        assert entry["pid"] in server.live_workers()
    assert len({e["pid"] for e in entries}) >= 2, "the failures all hit one worker"

    cookies: dict[str, str] = {}
    values = set()
    for entry in entries:
        value, renderer = evaluate(
            server.port, entry["url"], opened.pin, OPERATOR, cookies
        )
        assert renderer == entry["pid"]  # rendered (relayed) by its worker
        values.add(value.strip("'"))
    assert values == {value_of(n) for n in range(FAILURES)}

    # The terminal's view is the same list.
    assert [e["id"] for e in cli_errors(server.flag)["errors"]] == [
        e["id"] for e in entries
    ]

    ipdebug.disable(server.flag, environ={})
    time.sleep(FLAG_POLL)  # every worker honours the end
    assert cli_errors(server.flag)["errors"] == []
    capture_window(server)
    assert listing(server.port)["errors"] == []
    for entry in entries:
        gone = request(server.port, entry["url"], source=OPERATOR)
        assert gone.status == 410, gone.text


def cli_errors(flag: str) -> dict[str, t.Any]:
    with contextlib.redirect_stdout(buffer := __import__("io").StringIO()):
        assert main(["errors", "--flag", flag, "--json"]) == 0
    return t.cast(dict[str, t.Any], json.loads(buffer.getvalue()))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("app", "path"), APPS)
def test_customers_errors_are_captured_listed_and_opened(
    tmp_path: Path, mode: list[str], app: str, path: str
) -> None:
    with (
        gunicorn(tmp_path, *mode, app=app) as server,
        gunicorn(tmp_path, "-w", "1", app=app, ipdebug=False, name="bare") as bare,
    ):
        customers_and_operator(
            server,
            bare,
            path,
            lambda n: f"tenant-{n:02d}",
        )


def test_django_handler500_is_unchanged_and_errors_are_captured(tmp_path: Path) -> None:
    app = "examples.djangoproject.wsgi:application"
    with (
        gunicorn(tmp_path, "-w", "4", app=app) as server,
        gunicorn(
            tmp_path,
            "-w",
            "1",
            app="django.core.wsgi:get_wsgi_application()",
            ipdebug=False,
            name="bare",
            env={"DJANGO_SETTINGS_MODULE": "examples.djangoproject.settings"},
        ) as bare,
    ):
        reply = request(bare.port, "/checkout?customer=x", source=CUSTOMER)
        assert b"Sorry, something broke on our side" in reply.body  # handler500
        customers_and_operator(
            server, bare, "/checkout?customer={}", lambda n: f"tenant-{n:02d}"
        )


# Faults


def test_a_killed_workers_capture_is_410(tmp_path: Path) -> None:
    with gunicorn(tmp_path, "-w", "2", app="tests.apps.customers:plain") as server:
        capture_window(server)
        spread(
            server.port,
            ["/customer?a", "/customer?b", "/customer?c"],
            {},
            source=CUSTOMER,
        )
        entries = listing(server.port)["errors"]
        victim = entries[0]["pid"]
        os.kill(victim, 9)
        wait_until(lambda: victim not in server.live_workers(), timeout=10)
        for _ in range(4):  # whichever worker answers
            gone = request(server.port, entries[0]["url"], source=OPERATOR)
            assert gone.status == 410, gone.text
            assert f"pid {victim}" in gone.text or "no longer held" in gone.text
        assert all(e["pid"] != victim for e in listing(server.port)["errors"])


@contextlib.contextmanager
def hanging_peer(directory: str, pid: int) -> Iterator[None]:
    """A socket in the relay directory that accepts and never answers."""
    path = os.path.join(directory, f"{pid}.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for sock in held:
            sock.close()
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def test_a_hanging_relay_peer_is_bounded_and_named(tmp_path: Path) -> None:
    with gunicorn(tmp_path, "-w", "2", app="tests.apps.customers:plain") as server:
        capture_window(server)
        spread(server.port, ["/customer?a", "/customer?b"], {}, source=CUSTOMER)
        before = listing(server.port)["errors"]
        assert len(before) == 2
        directory = state_directory(server.flag, "relay")
        with hanging_peer(directory, 999_999):
            started = time.monotonic()
            found = listing(server.port)
            took = time.monotonic() - started
            html = request(server.port, "/__ipdebug__/errors", source=OPERATOR).text
            terminal = cli_errors(server.flag)
        assert {e["id"] for e in found["errors"]} == {e["id"] for e in before}
        assert found["unanswered"] == [
            {
                "pid": 999_999,
                "instance": found["unanswered"][0]["instance"],
                "problem": "did not answer within 2 s",
            }
        ]
        assert took < 15  # bounded (2 s), with room for a busy machine
        assert "worker 999999" in html and "did not answer within 2 s" in html
        assert terminal["unanswered"][0]["pid"] == 999_999


# A fleet: two instances, one Redis flag, nginx with examples/nginx-fleet.conf


def test_fleet_captures_on_both_instances_one_list_routed_links(tmp_path: Path) -> None:
    operator = "127.0.0.3"
    with redis_server(tmp_path) as redis:
        url = redis.url("ipdebug:fleet")
        env = {
            "IPDEBUG_FLAG": url,
            "IPDEBUG_TRUSTED_PROXIES": "127.0.0.1",
            "IPDEBUG_ALLOW": operator,
        }
        app = "tests.apps.customers:plain"
        with (
            gunicorn(
                tmp_path,
                "-w",
                "2",
                app=app,
                name="a",
                env={**env, "IPDEBUG_INSTANCE": "a"},
            ) as a,
            gunicorn(
                tmp_path,
                "-w",
                "2",
                app=app,
                name="b",
                env={**env, "IPDEBUG_INSTANCE": "b"},
            ) as b,
        ):
            listen = free_port()
            with nginx(
                tmp_path, [], http=fleet_config(a.port, b.port, listen), listen=[listen]
            ) as proxy:
                (port,) = proxy.ports
                opened = ipdebug.enable(
                    "5m", allow=[operator], flag=url, environ={}, capture=True
                )
                time.sleep(1.5)
                # nginx balances the customer's requests over both instances.
                for n in range(6):
                    reply = request(port, f"/customer?fleet-{n}", source=CUSTOMER)
                    assert reply.status == 500

                def listed() -> list[dict[str, t.Any]]:
                    reply = request(port, "/__ipdebug__/errors.json", source=operator)
                    assert reply.status == 200, reply.text
                    return t.cast(
                        list[dict[str, t.Any]], json.loads(reply.body)["errors"]
                    )

                deadline = time.monotonic() + 20
                while len(entries := listed()) < 6 and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert len(entries) == 6
                assert {e["instance"] for e in entries} == {"a", "b"}
                assert all(e["client"] == CUSTOMER for e in entries)
                # Both instances answer with the whole fleet.
                assert {e["id"] for e in listed()} == {e["id"] for e in entries}

                jar: dict[str, str] = {}
                values = set()
                for entry in entries:
                    assert entry["url"].endswith(f"?ipdebug_route={entry['instance']}")
                    page = request(
                        port, entry["url"], source=operator, headers=cookie_header(jar)
                    )
                    assert page.status == 200, page.text
                    assert page.header("X-IPDebug-Instance") == entry["instance"]
                    cookies_of(page, jar)
                    assert jar["ipdebug_route"] == entry["instance"]
                    secret = re.search(r'SECRET = "([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
                    frame = re.findall(
                        r'<div class="frame" id="frame-(\d+)">', page.text
                    )[-1]
                    path = entry["url"].split("?")[0]
                    if "pin" not in values:
                        unlocked = request(
                            port,
                            path
                            + debugger_path(secret, cmd="pinauth", pin=opened.pin)[1:],
                            source=operator,
                            headers=cookie_header(jar),
                        )
                        assert '"auth": true' in unlocked.text
                        cookies_of(unlocked, jar)
                        values.add("pin")
                    answer = request(
                        port,
                        path
                        + debugger_path(secret, cmd="customer_value", frm=frame)[1:],
                        source=operator,
                        headers=cookie_header(jar),
                    )
                    assert answer.header("X-IPDebug-Instance") == entry["instance"]
                    values.add(console_output(answer).strip("'"))
                assert values == {"pin"} | {f"fleet-{n}" for n in range(6)}
                # The terminal sees the fleet too (through Redis).
                assert {e["id"] for e in cli_errors(url)["errors"]} >= {
                    e["id"] for e in entries
                }
