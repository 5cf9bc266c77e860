"""The relay in one process: two relays, each listening in its own private
directory, a forwarder, and peers that refuse or never answer. The real
servers (tests/test_gunicorn.py, test_local_users.py) show it across
workers and users; these show each of its promises on its own.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import threading
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipdebug.debugger.relay import (
    MAX_HANDLERS,
    MESSAGE_KEY,
    Answer,
    OwnerGone,
    Relay,
    ask_all,
    owner_pid,
)
from ipdebug.errors import RelayError
from ipdebug.private import NotPrivate

from .conftest import Records
from .servers import wait_until

PID = os.getpid()
#: A pid that is not this process's (never forwarded to: only a file name).
OTHER = 4242 if PID != 4242 else 4243


class Owner:
    """A started relay whose handler records what it was asked and answers
    with its name.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        self.asked: list[dict[str, t.Any]] = []
        self.open = True
        self.relay = Relay(str(directory), handler=self.answer, still_open=self.still)

    def still(self) -> bool:
        return self.open

    def answer(self, environ: dict[str, t.Any]) -> Answer:
        self.asked.append(environ)
        return "200 OK", [("X-Owner", self.name)], f"answered by {self.name}".encode()


@pytest.fixture
def owners(tmp_path: Path) -> Iterator[tuple[Owner, Owner]]:
    a, b = Owner(tmp_path / "a", "a"), Owner(tmp_path / "b", "b")
    a.relay.start()
    b.relay.start()
    try:
        yield a, b
    finally:
        a.relay.stop()
        b.relay.stop()


def never(environ: dict[str, t.Any]) -> Answer:
    raise AssertionError("a forwarder's own handler is not asked")


def forwarder(directory: str) -> Relay:
    """A relay that only forwards (as a worker that did not render the page)."""
    return Relay(directory, handler=never, still_open=lambda: True)


def test_each_relay_listens_privately_in_its_own_directory(
    owners: tuple[Owner, Owner],
) -> None:
    for owner in owners:
        assert owner.relay.listening and owner.relay.problem is None
        directory = os.stat(owner.relay.directory)
        assert stat.S_IMODE(directory.st_mode) == 0o700
        sock = os.stat(owner.relay.path_for(PID))
        assert stat.S_ISSOCK(sock.st_mode)
        assert stat.S_IMODE(sock.st_mode) == 0o600


def test_forward_reaches_the_owner_in_the_forwarders_directory(
    owners: tuple[Owner, Owner],
) -> None:
    a, b = owners
    environ = {
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": "__debugger__=yes&cmd=pinauth&pin=1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        # Not forwarded: not in FORWARDED_KEYS, or not text.
        "HTTP_AUTHORIZATION": "Basic c2VjcmV0",
        "HTTP_X_API_KEY": "key",
        "CONTENT_LENGTH": 12,
        "wsgi.input": object(),
    }
    answer = forwarder(a.relay.directory).forward(PID, environ)
    assert answer == ("200 OK", [("X-Owner", "a")], b"answered by a")
    assert a.asked == [
        {
            "REQUEST_METHOD": "GET",
            "QUERY_STRING": "__debugger__=yes&cmd=pinauth&pin=1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
        }
    ]
    assert b.asked == []
    _, headers, body = forwarder(b.relay.directory).forward(PID, environ)
    assert (headers, body) == ([("X-Owner", "b")], b"answered by b")
    assert len(a.asked) == 1 and len(b.asked) == 1


def test_forward_to_a_pid_nobody_listens_for(owners: tuple[Owner, Owner]) -> None:
    with pytest.raises(OwnerGone):
        forwarder(owners[0].relay.directory).forward(OTHER, {})


def test_ask_all_asks_every_process_of_its_directory_only(
    owners: tuple[Owner, Owner],
) -> None:
    a, b = owners
    message = {MESSAGE_KEY: "captures"}
    answers = ask_all(a.relay.directory, message)
    assert answers == [(PID, ("200 OK", [("X-Owner", "a")], b"answered by a"))]
    assert a.asked == [message] and b.asked == []
    assert ask_all(a.relay.directory, message, exclude={PID}) == []
    assert len(a.asked) == 1


def test_ask_all_sends_nothing_to_a_missing_or_open_directory(
    owners: tuple[Owner, Owner], tmp_path: Path
) -> None:
    a, _ = owners
    assert ask_all(str(tmp_path / "missing"), {MESSAGE_KEY: "captures"}) == []
    os.chmod(a.relay.directory, 0o755)
    try:
        assert ask_all(a.relay.directory, {MESSAGE_KEY: "captures"}) == []
    finally:
        os.chmod(a.relay.directory, 0o700)
    assert a.asked == []


def test_a_refused_socket_is_an_owner_gone_and_removed(
    owners: tuple[Owner, Owner],
) -> None:
    a, _ = owners
    # What a killed worker leaves: a socket file nobody listens on.
    stale = a.relay.path_for(OTHER)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(stale)
    assert os.path.exists(stale)
    with pytest.raises(OwnerGone):
        forwarder(a.relay.directory).forward(OTHER, {"QUERY_STRING": "x"})
    assert not os.path.exists(stale)
    # ask_all removes it too, and still gets the live owner's answer.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(stale)
    answers = ask_all(a.relay.directory, {MESSAGE_KEY: "captures"})
    assert [pid for pid, _ in answers] == [PID]
    assert not os.path.exists(stale)


def test_a_hung_peer_costs_ask_all_its_timeout_only(
    owners: tuple[Owner, Owner],
) -> None:
    a, _ = owners
    # Accepts connections (the backlog does) and never answers.
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(a.relay.path_for(OTHER))
    hung.listen(4)
    try:
        start = time.monotonic()
        answers = dict(ask_all(a.relay.directory, {MESSAGE_KEY: "captures"}, timeout=1))
        elapsed = time.monotonic() - start
    finally:
        hung.close()
    assert answers[OTHER] == "did not answer within 1 s"
    assert answers[PID] == ("200 OK", [("X-Owner", "a")], b"answered by a")
    # Bounded by the timeout asked for, not by the relay's 30 s (generous:
    # the machine may be busy).
    assert elapsed < 15


def test_an_open_directory_is_refused_and_reported(
    owners: tuple[Owner, Owner], records: Records
) -> None:
    a, _ = owners
    os.chmod(a.relay.directory, 0o755)
    relay = forwarder(a.relay.directory)
    try:
        with pytest.raises(NotPrivate, match="has mode 0755"):
            relay.forward(PID, {"QUERY_STRING": "cmd=pinauth&pin=1"})
    finally:
        os.chmod(a.relay.directory, 0o700)
    assert a.asked == []
    assert relay.problem and a.relay.directory in relay.problem
    assert "refused to relay a console request" in records.text()


def busy_answer(path: str) -> tuple[dict[str, t.Any], bytes]:
    """The two frames an owner sends on a connection it will not serve."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    (size,) = struct.unpack("!I", data[:4])
    head = json.loads(data[4 : 4 + size])
    (length,) = struct.unpack("!I", data[4 + size : 8 + size])
    body = data[8 + size :]
    assert len(body) == length
    return head, body


def test_a_full_owner_answers_busy_without_asking_its_handler(
    tmp_path: Path,
) -> None:
    release = threading.Event()
    entered: list[int] = []

    def slow(environ: dict[str, t.Any]) -> Answer:
        entered.append(1)
        release.wait(30)
        return "200 OK", [], b"slow"

    owner = Relay(str(tmp_path / "relay"), handler=slow, still_open=lambda: True)
    owner.start()
    answers: list[Answer] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(forwarder(owner.directory).forward(PID, {}))
        )
        for _ in range(MAX_HANDLERS)
    ]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: len(entered) == MAX_HANDLERS, timeout=20)
        # The owner answers a connection over the limit at once, unread,
        # and closes it: a reader sees the answer...
        head, body = busy_answer(owner.path_for(PID))
        assert head["status"] == "503 Service Unavailable"
        assert b"busy" in body
        # ... and so does a forwarder, whether its request went out before
        # the close or met a broken pipe.
        for _ in range(50):
            status, _, body = forwarder(owner.directory).forward(
                PID,
                {"HTTP_COOKIE": "y" * 300_000},  # more than a socket buffer
            )
            assert status == "503 Service Unavailable" and b"busy" in body
        assert len(entered) == MAX_HANDLERS
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
        owner.stop()
    assert [a[2] for a in answers] == [b"slow"] * MAX_HANDLERS


def test_a_failing_handler_closes_the_connection_and_is_logged(
    tmp_path: Path, records: Records
) -> None:
    def broken(environ: dict[str, t.Any]) -> Answer:
        raise RuntimeError("the handler broke")

    owner = Relay(str(tmp_path / "relay"), handler=broken, still_open=lambda: True)
    owner.start()
    try:
        with pytest.raises(RelayError, match="closed early"):
            forwarder(owner.directory).forward(PID, {})
        assert owner.listening  # one bad request does not stop the listener
    finally:
        owner.stop()
    # Logged once the connection is closed: the forwarder may be first.
    wait_until(lambda: "failed to answer a relayed console request" in records.text())


def test_the_listener_stops_and_removes_its_socket_when_the_window_ends(
    owners: tuple[Owner, Owner],
) -> None:
    a, b = owners
    path = a.relay.path_for(PID)
    a.open = False
    # The listener checks still_open() each second it waits for a connection.
    wait_until(lambda: not os.path.exists(path), timeout=15)
    assert not a.relay.listening
    with pytest.raises(OwnerGone):
        forwarder(a.relay.directory).forward(PID, {})
    # The other relay of the process is untouched.
    assert b.relay.listening
    assert forwarder(b.relay.directory).forward(PID, {})[2] == b"answered by b"
    a.open = True
    a.relay.start()  # the next window listens again
    assert forwarder(a.relay.directory).forward(PID, {})[2] == b"answered by a"


def test_stop_is_idempotent_and_removes_the_socket(
    owners: tuple[Owner, Owner],
) -> None:
    a, _ = owners
    a.relay.stop()
    a.relay.stop()
    assert not os.path.exists(a.relay.path_for(PID))
    assert not a.relay.listening


def test_a_relay_that_cannot_listen_stays_off_and_says_why_once(
    tmp_path: Path, records: Records
) -> None:
    # A file where the directory should be: listening fails, the relay
    # stays off and says why once.
    (tmp_path / "relay").write_text("not a directory")
    relay = Relay(str(tmp_path / "relay"), handler=never, still_open=lambda: True)
    relay.start()
    relay.start()
    assert not relay.listening
    assert relay.problem and "cannot listen for relayed console requests" in (
        relay.problem
    )
    assert records.text().count("cannot listen for relayed console requests") == 1


@pytest.mark.parametrize(
    ("secret", "pid"),
    [
        pytest.param("123x" + "0" * 32 + "~web-1", 123, id="pid"),
        pytest.param("x" + "0" * 32, None, id="no-pid"),
        pytest.param("abc", None, id="no-separator"),
        pytest.param("12ax00", None, id="not-digits"),
        pytest.param("\u0661\u0662x00", None, id="arabic-indic-digits"),
        pytest.param("12345678901x00", None, id="too-long"),
        pytest.param("-1x00", None, id="negative"),
    ],
)
def test_owner_pid(secret: str, pid: int | None) -> None:
    assert owner_pid(secret) == pid
