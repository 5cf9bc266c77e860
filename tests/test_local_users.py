"""Another local user against the files beside the flag (issue 11, finding 1).

Each test plays the attack with a second, real user (see tests/localuser.py):
it plants a relay or attach directory with a listening socket, an audit
trail or a symbolic link, and checks that ipdebug refuses it: no byte
reaches the attacker's socket, nothing is written to the attacker's file,
no directory is created through the attacker's link.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import stat
import struct
import threading
import time
import typing as t
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import ipdebug
from ipdebug import IPDebugMiddleware
from ipdebug.attach import attach_terminal, post_mortem, sessions
from ipdebug.audit import Auditor
from ipdebug.cli import main
from ipdebug.debugger.relay import Answer, Relay
from ipdebug.doctor.flagfiles import read_audit
from ipdebug.errors import FlagWriteError
from ipdebug.private import NotPrivate, connect, private_directory
from ipdebug.stores.file import MAX_AUDIT_BYTES, FileFlagStore

from .conftest import Records, client, debugger_get, open_window, plain_app
from .localuser import PlantedSocket, User, attacker, connect_as, run_as
from .localuser import shared_directory as _shared_directory
from .servers import FLAG_POLL, gunicorn, request

FAKE_PAGE = b"<script>steal()</script>"


def _frame(data: bytes) -> bytes:
    return struct.pack("!I", len(data)) + data


#: What the attacker's relay socket answers: a well-formed relay answer.
FAKE_ANSWER = _frame(
    json.dumps(
        {"status": "200 OK", "headers": [["Content-Type", "text/html"]]}
    ).encode()
) + _frame(FAKE_PAGE)


@pytest.fixture(scope="session")
def mallory() -> User:
    return attacker()


@pytest.fixture
def shared(mallory: User) -> Iterator[Path]:
    with _shared_directory() as path:
        yield path


def _mkdir(path: Path, mode: int = 0o777) -> Callable[[], None]:
    def make() -> None:
        os.mkdir(path)
        os.chmod(path, mode)

    return make


def _app_directory(shared: Path, mallory: User, *planted: str) -> Path:
    """The flag's directory as it was when the attacker came: open to all
    (1777 like /tmp, the old advice), with ``planted`` directories of the
    attacker in it; then closed (0700), as an administrator would after
    ``ipdebug doctor`` complained, so that the window is honoured.
    """
    app = shared / "app"
    app.mkdir()
    os.chmod(app, 0o1777)
    for name in planted:
        run_as(mallory, _mkdir(app / name))
    return app


def _close(app: Path) -> None:
    os.chmod(app, 0o700)


# The relay between workers


def test_relay_sends_nothing_to_a_planted_relay_directory(
    shared: Path, mallory: User, records: Records
) -> None:
    app = _app_directory(shared, mallory, "relay")
    owner = 1  # a pid that is not ours: the request is forwarded to it
    with PlantedSocket(mallory, app / "relay" / f"{owner}.sock", FAKE_ANSWER) as bait:
        _close(app)
        middleware = IPDebugMiddleware(
            plain_app, flag=str(app / "flag.json"), allow=["127.0.0.1"]
        )
        opened = open_window(middleware)
        page = client(middleware).get("/fail", status=500, expect_errors=True)
        assert "Werkzeug Debugger" in page.text
        # Werkzeug's JavaScript sends the PIN with the page's secret; here the
        # secret names another worker, so the request goes to the relay.
        secret = f"{owner}x{'0' * 32}~{middleware.debugger.instance}"
        answer = debugger_get(client(middleware), secret, cmd="pinauth", pin=opened.pin)
    assert bait.connections == 0 and bait.received == b""
    assert answer.status_int >= 500 and FAKE_PAGE not in answer.body
    assert f"{app / 'relay'} is owned by uid {mallory.uid}" in records.text()
    # Nor would the worker listen there.
    assert "cannot listen for relayed console requests" in records.text()


@pytest.mark.server
def test_gunicorn_relays_nothing_to_a_planted_relay_directory(
    shared: Path, mallory: User, tmp_path: Path
) -> None:
    app = _app_directory(shared, mallory, "relay")
    flag = str(app / "flag.json")
    owner = 1
    with PlantedSocket(mallory, app / "relay" / f"{owner}.sock", FAKE_ANSWER) as bait:
        _close(app)
        with gunicorn(tmp_path, "-w", "2", env={"IPDEBUG_FLAG": flag}) as server:
            opened = ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, environ={})
            time.sleep(FLAG_POLL)  # every worker honours the window
            page = request(server.port, "/fail")
            assert page.status == 500 and "Werkzeug Debugger" in page.text
            secret = re.search(r'SECRET = "([^"]+)"', page.text)
            assert secret
            forged = f"{owner}x{secret.group(1).partition('x')[2]}"
            query = {"__debugger__": "yes", "cmd": "pinauth", "pin": opened.pin}
            reply = request(
                server.port, "/?" + urllib.parse.urlencode({**query, "s": forged})
            )
            log = server.log_text()
    assert bait.connections == 0 and bait.received == b""
    assert reply.status == 504 and FAKE_PAGE not in reply.body
    assert f"{app / 'relay'} is owned by uid {mallory.uid}" in log


def test_relay_sends_nothing_through_a_planted_symlink(
    shared: Path, mallory: User
) -> None:
    app = _app_directory(shared, mallory, "elsewhere")
    run_as(mallory, lambda: os.symlink(app / "elsewhere", app / "relay"))
    with PlantedSocket(mallory, app / "elsewhere" / "7.sock", FAKE_ANSWER) as bait:
        _close(app)
        relay = Relay(str(app / "relay"), handler=_never, still_open=lambda: True)
        with pytest.raises(NotPrivate, match="is a symbolic link"):
            relay.forward(7, {"QUERY_STRING": "cmd=pinauth&pin=123-456-789"})
    assert bait.connections == 0 and bait.received == b""


def test_relay_checks_the_peer_even_in_a_private_directory(
    shared: Path, mallory: User, tmp_path: Path
) -> None:
    # The directory passes its check, but the process behind the socket is
    # the attacker's (a socket moved in after the check, as a race would).
    relay_dir = tmp_path / "relay"
    private_directory(str(relay_dir))
    with PlantedSocket(mallory, shared / "bait.sock", FAKE_ANSWER) as bait:
        os.rename(shared / "bait.sock", relay_dir / "7.sock")
        relay = Relay(str(relay_dir), handler=_never, still_open=lambda: True)
        with pytest.raises(NotPrivate, match=f"is served by uid {mallory.uid}"):
            relay.forward(7, {"QUERY_STRING": "cmd=pinauth&pin=123-456-789"})
    assert bait.connections == 1 and bait.received == b""


def _never(environ: dict[str, t.Any]) -> t.Any:
    raise AssertionError("not reached")


def test_relay_owner_refuses_a_connection_of_another_user(
    shared: Path, mallory: User, tmp_path: Path
) -> None:
    answered: list[object] = []

    def handler(environ: dict[str, t.Any]) -> Answer:
        answered.append(environ)
        return "200 OK", [], b"x"

    relay = Relay(str(tmp_path / "relay"), handler=handler, still_open=lambda: True)
    relay.start()
    try:
        path = Path(relay.path_for(os.getpid()))
        # Let the attacker reach the socket (its directory and mode keep
        # them out in real life): only SO_PEERCRED is left to refuse them.
        link = shared / "open.sock"
        os.link(path, link)
        os.chmod(link, 0o666)
        request = _frame(json.dumps({"QUERY_STRING": "cmd=x"}).encode())
        assert connect_as(mallory, link, request) == b""
    finally:
        relay.stop()
    assert answered == []


# ipdebug attach and the pdb session


def test_ipdebug_attach_refuses_a_planted_attach_directory(
    shared: Path, mallory: User, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app_directory(shared, mallory, "attach")
    bait_path = app / "attach" / "1-1.sock"
    with PlantedSocket(mallory, bait_path, b"(Pdb) fake prompt\n") as bait:
        _close(app)
        code = main(["attach", "--flag", str(app / "flag.json"), "--wait", "1s"])
        out = io.StringIO()
        typed = io.StringIO("p request.cookies\n")
        direct = attach_terminal(str(app / "attach"), wait=1, stdin=typed, stdout=out)
    assert code == 1 and direct == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2  # one line each
    assert f"{app / 'attach'} is owned by uid {mallory.uid}" in err[0]
    assert f"remove {app / 'attach'} (rm -r)" in err[0]
    assert out.getvalue() == ""
    assert bait.connections == 0 and bait.received == b""


def test_ipdebug_attach_checks_the_peer(
    shared: Path, mallory: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attach_dir = tmp_path / "attach"
    private_directory(str(attach_dir))
    with PlantedSocket(mallory, shared / "bait.sock", b"(Pdb) fake\n") as bait:
        os.rename(shared / "bait.sock", attach_dir / "1-1.sock")
        out = io.StringIO()
        code = attach_terminal(
            str(attach_dir), wait=1, stdin=io.StringIO("p secret\n"), stdout=out
        )
    assert code == 1 and out.getvalue() == ""
    assert f"is served by uid {mallory.uid}" in capsys.readouterr().err
    assert bait.received == b""


def test_pdb_session_refuses_a_terminal_of_another_user(
    shared: Path, mallory: User, tmp_path: Path
) -> None:
    directory = tmp_path / "attach"
    attached: list[bool] = []
    events: list[tuple[str, dict[str, object]]] = []

    def audit(event: str, client: str | None = None, **fields: object) -> None:
        events.append((event, fields))

    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        error = exc
    session = threading.Thread(
        target=lambda: attached.append(
            post_mortem(
                error,
                directory=str(directory),
                wait=3,
                audit=t.cast(Auditor, audit),
                client="127.0.0.1",
                still_open=lambda: True,
            )
        )
    )
    session.start()
    try:
        deadline = time.monotonic() + 5
        while not sessions(str(directory)):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        path = Path(sessions(str(directory))[0])
        link = shared / "open.sock"
        os.link(path, link)
        os.chmod(link, 0o666)
        got = connect_as(mallory, link, b"import os; os.system('id')\n")
    finally:
        session.join(10)
    assert got == b""  # not even the banner
    assert attached == [False]  # refused, then nobody came
    names = [event for event, _ in events]
    assert names == ["attach.waiting", "attach.refused", "attach.timeout"]
    assert f"uid {mallory.uid}" in str(events[1][1]["reason"])


# The audit trail


def test_a_planted_audit_trail_is_not_written(
    shared: Path, mallory: User, records: Records
) -> None:
    audit_log = shared / "audit.log"

    def plant() -> None:
        audit_log.write_bytes(b"")
        os.chmod(audit_log, 0o666)

    run_as(mallory, plant)
    flag = str(shared / "flag.json")
    with pytest.raises(FlagWriteError, match="is shared with other users"):
        ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, environ={})
    # Whatever writes the trail refuses it, logged once.
    trail = Auditor(FileFlagStore(flag).append_audit)
    trail("attach.command", "127.0.0.1", source="print(SECRET)")
    trail("attach.command", "127.0.0.1", source="print(SECRET)")
    assert audit_log.read_bytes() == b""
    warnings = [r for r in records.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot write its audit trail" in warnings[0].getMessage()
    assert f"is owned by uid {mallory.uid}" in records.text()


def test_audit_trail_rules_without_a_second_user(tmp_path: Path) -> None:
    store = FileFlagStore(str(tmp_path / "flag.json"))
    audit_log = tmp_path / "audit.log"
    # Writable by others: refused, even though it is this user's.
    audit_log.write_bytes(b"")
    os.chmod(audit_log, 0o622)
    with pytest.raises(NotPrivate, match="writable by group or others"):
        store.append_audit({"event": "x"})
    assert audit_log.read_bytes() == b""
    # A symbolic link is not followed.
    target = tmp_path / "target"
    target.write_bytes(b"")
    audit_log.unlink()
    audit_log.symlink_to(target)
    with pytest.raises(NotPrivate, match="is a symbolic link"):
        store.append_audit({"event": "x"})
    assert target.read_bytes() == b""
    # A FIFO does not block the writer.
    audit_log.unlink()
    os.mkfifo(audit_log, 0o600)
    with pytest.raises(OSError, match="No such device or address"):
        store.append_audit({"event": "x"})
    audit_log.unlink()
    store.append_audit({"event": "x"})
    assert stat.S_IMODE(os.stat(audit_log).st_mode) == 0o600


def test_rotation_replaces_only_an_old_trail_of_this_user(
    mallory: User, tmp_path: Path
) -> None:
    store = FileFlagStore(str(tmp_path / "flag.json"))
    audit_log = tmp_path / "audit.log"
    store.append_audit({"event": "first"})
    os.truncate(audit_log, MAX_AUDIT_BYTES)
    old = tmp_path / "audit.log.1"
    old.write_bytes(b"planted\n")
    os.chown(old, mallory.uid, mallory.gid)
    with pytest.raises(NotPrivate, match=f"audit.log.1 is owned by uid {mallory.uid}"):
        store.append_audit({"event": "second"})
    assert old.read_bytes() == b"planted\n"
    assert os.path.getsize(audit_log) == MAX_AUDIT_BYTES  # nothing written
    old.unlink()
    store.append_audit({"event": "third"})  # rotates
    assert os.path.getsize(old) == MAX_AUDIT_BYTES
    assert b'"third"' in audit_log.read_bytes()


# State directories


def test_no_directory_is_created_through_a_planted_symlink(
    shared: Path, mallory: User, tmp_path: Path
) -> None:
    # A link to a directory the old check accepted (this user's, private):
    # the attacker could point it elsewhere at any time.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    run_as(mallory, lambda: os.symlink(private, shared / "ipdebug"))
    with pytest.raises(FlagWriteError, match="is a symbolic link"):
        ipdebug.enable(
            "5m",
            allow=["127.0.0.1"],
            flag=str(shared / "ipdebug" / "flag.json"),
            environ={},
        )
    # A link further up: nothing is created under it.
    attackers = shared / "mallory"
    run_as(mallory, _mkdir(attackers))
    run_as(mallory, lambda: os.symlink(attackers, shared / "state"))
    with pytest.raises(FlagWriteError, match=f"symbolic link of uid {mallory.uid}"):
        ipdebug.enable(
            "5m",
            allow=["127.0.0.1"],
            flag=str(shared / "state" / "ipdebug" / "flag.json"),
            environ={},
        )
    assert os.listdir(private) == [] and os.listdir(attackers) == []
    # And the socket directories are never made through a link either.
    run_as(mallory, lambda: os.symlink(private, shared / "relay"))
    with pytest.raises(NotPrivate, match="is a symbolic link"):
        private_directory(str(shared / "relay"))
    with pytest.raises(NotPrivate, match="is a symbolic link"):
        connect(str(shared / "relay"), "1.sock", timeout=1)


def test_a_planted_state_directory_is_refused_when_listening(
    shared: Path, mallory: User
) -> None:
    run_as(mallory, _mkdir(shared / "attach", 0o700))
    with pytest.raises(NotPrivate, match=f"is owned by uid {mallory.uid}"):
        private_directory(str(shared / "attach"))


def test_doctor_reads_no_planted_trail(tmp_path: Path) -> None:
    flag = str(tmp_path / "flag.json")
    os.mkfifo(tmp_path / "audit.log", 0o600)
    assert read_audit(flag) == []  # and did not block
    os.unlink(tmp_path / "audit.log")
    target = tmp_path / "elsewhere.log"
    target.write_text('{"event": "window.opened", "window": "x"}\n')
    (tmp_path / "audit.log").symlink_to(target)
    assert read_audit(flag) == []
