"""What one process holds for a window (:class:`~ipdebug.sessions.Sessions`),
on its own: the secret that names the process, the bound on tracebacks, a
fresh start per window and per process.
"""

from __future__ import annotations

import json
import os
import re
import threading
import warnings

from ipdebug.debugger.relay import owner_pid
from ipdebug.debugger.sessions import Session, Sessions
from ipdebug.pin import PinHash
from ipdebug.stores.window import Window

PIN = PinHash.create("123-456-789")
SECRET = re.compile(r"(\d+)x([0-9a-f]{32})~(.+)")


def window() -> Window:
    return Window.new(
        now=1_000.0, duration=300, allow=(), reason="", by="tester", pin_hash=PIN
    )


class Frame:
    """Stands for an engine's frame: the sessions only hold it by id."""


def traceback(n: int = 3) -> list[Frame]:
    return [Frame() for _ in range(n)]


def test_the_secret_names_this_process_and_the_instance() -> None:
    sessions = Sessions("web-1", max_tracebacks=5)
    one = window()
    sessions.reset(one)
    session = sessions.get(one)
    match = SECRET.fullmatch(session.secret)
    assert match, session.secret
    assert int(match[1]) == os.getpid() == owner_pid(session.secret)
    assert match[3] == "web-1"
    ref = sessions.keep(session, traceback(), [], page={"model": 1})
    ref_match = SECRET.fullmatch(ref)
    assert ref_match and owner_pid(ref) == os.getpid()
    # The page's reference is not the secret (it is given to API clients).
    assert ref_match[2] != match[2]


def test_secrets_are_drawn_afresh_per_reset() -> None:
    sessions = Sessions("web-1", max_tracebacks=5)
    one = window()
    sessions.reset(one)
    first = sessions.get(one).secret
    sessions.reset(one)
    assert sessions.get(one).secret != first
    assert len({Session(None, "web-1").secret for _ in range(50)}) == 50


def test_tracebacks_are_bounded_oldest_first() -> None:
    sessions = Sessions("web-1", max_tracebacks=2)
    one = window()
    sessions.reset(one)
    session = sessions.get(one)
    tracebacks = [traceback() for _ in range(3)]
    refs = [
        sessions.keep(session, frames, [], page=f"page {n}")
        for n, frames in enumerate(tracebacks)
    ]
    assert sessions.traceback_count == 2
    held = set(session.frames)
    assert held == {id(f) for f in tracebacks[1] + tracebacks[2]}
    assert set(session.contexts) == held
    assert set(session.pages) == set(refs[1:])
    assert session.pages[refs[2]] == "page 2"
    assert len(set(refs)) == 3


def test_a_session_for_another_window_keeps_nothing() -> None:
    sessions = Sessions("web-1", max_tracebacks=5)
    current, other = window(), window()
    sessions.reset(current)
    kept = sessions.get(current)
    # A request gated in just before its window ended: its tracebacks must
    # not land in the next window's session.
    throwaway = sessions.get(other)
    assert throwaway is not kept and throwaway.secret != kept.secret
    sessions.keep(throwaway, traceback(), [])
    assert sessions.traceback_count == 0
    assert sessions.get(current) is kept
    assert kept.frames == {}


def test_reset_drops_every_traceback() -> None:
    sessions = Sessions("web-1", max_tracebacks=5)
    one = window()
    sessions.reset(one)
    sessions.keep(sessions.get(one), traceback(), [], page="page")
    assert sessions.traceback_count == 1
    sessions.reset(None)
    assert sessions.traceback_count == 0
    # The old window's session is gone: asking for it gives a throwaway.
    assert sessions.get(one).frames == {}
    assert sessions.traceback_count == 0


def test_the_console_frame_is_made_once() -> None:
    sessions = Sessions("web-1", max_tracebacks=5)
    one = window()
    sessions.reset(one)
    session = sessions.get(one)
    made: list[Frame] = []

    def make() -> Frame:
        made.append(Frame())
        return made[-1]

    sessions.console_frame(session, make)
    sessions.console_frame(session, make)
    assert len(made) == 1 and session.frames[0] is made[0]


def test_concurrent_keeps_stay_within_the_bound() -> None:
    sessions = Sessions("web-1", max_tracebacks=4)
    one = window()
    sessions.reset(one)
    session = sessions.get(one)
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(50):
            sessions.keep(session, traceback(2), [], page="p")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sessions.traceback_count == 4
    assert len(session.frames) == 8 and len(session.pages) == 4


def test_a_forked_child_gets_its_own_secret_and_nothing_of_the_parent() -> None:
    sessions = Sessions("web-1", max_tracebacks=5)
    one = window()
    sessions.reset(one)
    parent = sessions.get(one)
    sessions.keep(parent, traceback(), [])
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns about fork() with threads; the child only reads
        # its own memory and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            child = sessions.get(one)
            report = {
                "secret": child.secret,
                "frames": len(child.frames),
                "same": sessions.get(one) is child,
            }
            os.write(write, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert owner_pid(report["secret"]) == pid
    assert report["secret"] != parent.secret
    assert report["frames"] == 0 and report["same"] is True
    # The parent's session is untouched.
    assert sessions.get(one) is parent and sessions.traceback_count == 1
