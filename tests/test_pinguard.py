"""The PIN guard on its own: :class:`~ipdebug.pinguard.PinGuard` with a real
file flag store and real windows, called as the ``pinauth`` command calls
it.
"""

from __future__ import annotations

import os
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from ipdebug.audit import Auditor
from ipdebug.debugger.pinguard import PinGuard, cookie_name, cookie_value
from ipdebug.pin import MAX_PIN_FAILURES, PinHash
from ipdebug.stores.file import FileFlagStore
from ipdebug.stores.window import Window

from .conftest import Records

PIN = "123-456-789"
CLIENT = "127.0.0.1"


@pytest.fixture
def store(tmp_path: Path) -> FileFlagStore:
    return FileFlagStore(str(tmp_path / "state" / "flag.json"))


@pytest.fixture
def guard(store: FileFlagStore) -> PinGuard:
    return PinGuard(store, Auditor())


def new_window(store: FileFlagStore, pin: str = PIN) -> Window:
    opened = Window.new(
        now=time.time(),
        duration=300,
        allow=(CLIENT,),
        reason="test",
        by="tester",
        pin_hash=PinHash.create(pin),
    )
    store.save(opened)
    return opened


def pinauth(
    guard: PinGuard, window: Window, pin: str, cookie: str = "", https: bool = False
) -> Response:
    environ = EnvironBuilder(
        "/",
        query_string={"__debugger__": "yes", "cmd": "pinauth", "pin": pin},
        headers=[("Cookie", cookie)] if cookie else [],
        base_url="https://127.0.0.1/" if https else "http://127.0.0.1/",
    ).get_environ()
    return guard.authenticate(Request(environ), window, CLIENT)


def verdict(response: Response) -> tuple[bool, bool]:
    data = response.get_json()
    assert isinstance(data, dict)
    return data["auth"], data["exhausted"]


def unlock_cookie(response: Response) -> tuple[str, SimpleCookie]:
    header = response.headers["Set-Cookie"]
    parsed = SimpleCookie()
    parsed.load(header)
    return header, parsed


def test_the_right_pin_sets_a_strict_cookie_for_this_window(
    guard: PinGuard, store: FileFlagStore, records: Records
) -> None:
    window = new_window(store)
    response = pinauth(guard, window, PIN)
    assert verdict(response) == (True, False)
    header, parsed = unlock_cookie(response)
    name = cookie_name(window)
    morsel = parsed[name]
    assert "HttpOnly" in header and "SameSite=Strict" in header
    assert "Secure" not in header
    assert 0 < int(morsel["max-age"]) <= 300
    assert PIN not in header and PIN.replace("-", "") not in header
    # The browser's next request carries it: trusted, no PIN asked.
    cookie = f"{name}={morsel.value}"
    assert guard.trusted({"HTTP_COOKIE": cookie}, window)
    assert verdict(pinauth(guard, window, "", cookie)) == (True, False)
    assert records.events().count("pin.success") == 1
    # A right PIN is not counted against the limit.
    assert guard.failures(window) == 0


def test_the_cookie_is_secure_over_https(guard: PinGuard, store: FileFlagStore) -> None:
    window = new_window(store)
    header, _ = unlock_cookie(pinauth(guard, window, PIN, https=True))
    assert "Secure" in header


def test_a_cookie_of_another_window_is_not_trusted(
    guard: PinGuard, store: FileFlagStore
) -> None:
    first = new_window(store)
    _, parsed = unlock_cookie(pinauth(guard, first, PIN))
    value = parsed[cookie_name(first)].value
    second = new_window(store)  # the same PIN, a new window
    for name in (cookie_name(first), cookie_name(second)):
        assert not guard.trusted({"HTTP_COOKIE": f"{name}={value}"}, second)
    assert not guard.trusted({"HTTP_COOKIE": f"{cookie_name(first)}=1.abc"}, first)


def test_wrong_pins_lock_the_console_after_the_limit(
    guard: PinGuard, store: FileFlagStore, records: Records
) -> None:
    window = new_window(store)
    _, parsed = unlock_cookie(pinauth(guard, window, PIN))
    cookie = f"{cookie_name(window)}={parsed[cookie_name(window)].value}"
    for attempt in range(1, MAX_PIN_FAILURES + 1):
        auth, exhausted = verdict(pinauth(guard, window, "000-000-000"))
        assert not auth
        assert exhausted is (attempt == MAX_PIN_FAILURES)
        assert guard.failures(window) == attempt
    # Locked for everyone: the right PIN, and even an unlocked browser.
    assert verdict(pinauth(guard, window, PIN)) == (False, True)
    assert not guard.trusted({"HTTP_COOKIE": cookie}, window)
    assert records.events().count("pin.failure") == MAX_PIN_FAILURES
    assert records.events().count("pin.locked") == 1
    assert "000-000-000" not in records.text() and PIN not in records.text()
    # Another guard (another worker) on the same store sees the lock.
    assert verdict(pinauth(PinGuard(store, Auditor()), window, PIN)) == (False, True)
    # The next window starts afresh.
    assert verdict(pinauth(guard, new_window(store), PIN)) == (True, False)


def test_concurrent_guesses_get_no_more_than_the_limit_checked(
    guard: PinGuard, store: FileFlagStore, records: Records
) -> None:
    window = new_window(store)
    start = threading.Barrier(24)
    results: list[tuple[bool, bool]] = []

    def guess() -> None:
        start.wait()
        results.append(verdict(pinauth(guard, window, "000-000-000")))

    threads = [threading.Thread(target=guess) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 24 and not any(auth for auth, _ in results)
    # Each checked PIN is audited as a failure, each one refused unchecked
    # as a lock: never more than the limit checked, however many at once.
    events = records.events()
    assert 0 < events.count("pin.failure") <= MAX_PIN_FAILURES
    assert events.count("pin.failure") + events.count("pin.locked") == 24
    assert guard.failures(window) <= MAX_PIN_FAILURES


def test_a_store_that_cannot_count_locks_the_console(
    guard: PinGuard, store: FileFlagStore, records: Records
) -> None:
    window = new_window(store)
    _, parsed = unlock_cookie(pinauth(guard, window, PIN))
    cookie = f"{cookie_name(window)}={parsed[cookie_name(window)].value}"
    # A counter replaced by a symbolic link (planted): the store refuses
    # to read it, and the guard fails closed.
    counter = f"{store.path}.{window.id}.pinfail"
    os.unlink(counter)
    os.symlink(os.devnull, counter)
    assert guard.failures(window) == MAX_PIN_FAILURES
    assert not guard.trusted({"HTTP_COOKIE": cookie}, window)
    assert verdict(pinauth(guard, window, PIN)) == (False, True)
    assert records.text().count("cannot read the PIN failure count") == 1


@pytest.mark.parametrize(
    ("header", "value"),
    [
        pytest.param("__ipdebug_abc=1.x", "1.x", id="alone"),
        pytest.param('a=1; __ipdebug_abc="1.x" ; b=2', "1.x", id="quoted-among"),
        pytest.param("__ipdebug_abcd=9; __ipdebug_abc=1.x", "1.x", id="longer-name"),
        pytest.param("x=\udcff\udcfe; __ipdebug_abc=1.x", "1.x", id="not-utf8"),
        pytest.param("__ipdebug_ab=1.x", None, id="shorter-name"),
        pytest.param("__ipdebug_abc", None, id="no-value"),
        pytest.param("", None, id="empty"),
    ],
)
def test_cookie_value(header: str, value: str | None) -> None:
    assert cookie_value(header, "__ipdebug_abc") == value
