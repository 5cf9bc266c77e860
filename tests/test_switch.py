"""The switch: polling rate, transitions and expiry, with controlled clocks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import ipdebug
from ipdebug.stores.file import FileFlagStore
from ipdebug.stores.window import Window
from ipdebug.switch import Switch


class Clocks:
    def __init__(self) -> None:
        self.wall = time.time()
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class CountingStore(FileFlagStore):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.loads = 0

    def load(self, now: float) -> Window | None:
        self.loads += 1
        return super().load(now)


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


def make_switch(
    store: FileFlagStore,
    clocks: Clocks,
    changes: list[tuple[str | None, str | None, str]],
    max_window: float = 3600,
) -> Switch:
    def on_change(old: Window | None, new: Window | None, why: str) -> None:
        changes.append((old and old.id, new and new.id, why))

    return Switch(
        store,
        max_window=max_window,
        on_change=on_change,
        clock=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
    )


def test_store_is_read_at_most_once_per_interval(flag: str, clocks: Clocks) -> None:
    store = CountingStore(flag)
    switch = make_switch(store, clocks, [])
    for _ in range(1000):
        assert switch.current() is None
    assert store.loads == 1
    clocks.advance(0.5)
    switch.current()
    assert store.loads == 1
    clocks.advance(0.6)
    switch.current()
    assert store.loads == 2


def test_open_replace_close_are_reported_once(flag: str, clocks: Clocks) -> None:
    changes: list[tuple[str | None, str | None, str]] = []
    switch = make_switch(FileFlagStore(flag), clocks, changes)
    first = ipdebug.enable("5m", flag=flag, environ={}).window_id
    assert switch.current() is not None
    assert switch.current() is not None
    clocks.advance(1.1)
    second = ipdebug.enable("5m", flag=flag, environ={}).window_id
    window = switch.current()
    assert window is not None and window.id == second
    clocks.advance(1.1)
    ipdebug.disable(flag, environ={})
    assert switch.current() is None
    assert changes == [
        (None, first, "opened"),
        (first, second, "replaced"),
        (second, None, "closed"),
    ]


def test_expiry_is_checked_on_every_request(flag: str, clocks: Clocks) -> None:
    changes: list[tuple[str | None, str | None, str]] = []
    switch = make_switch(FileFlagStore(flag), clocks, changes)
    opened = ipdebug.enable("90s", flag=flag, environ={})
    clocks.wall = opened.until.timestamp() - 0.01
    assert switch.current() is not None
    clocks.wall += 0.02  # no poll due: the comparison alone ends it
    clocks.mono += 0.02
    assert switch.current() is None
    clocks.advance(5)
    assert switch.current() is None  # the expired flag on disk is not reopened
    assert [why for *_, why in changes] == ["opened", "expired"]


def test_max_window_caps_what_the_flag_says(flag: str, clocks: Clocks) -> None:
    switch = make_switch(FileFlagStore(flag), clocks, [], max_window=60)
    ipdebug.enable("30m", flag=flag, environ={})
    assert switch.current() is not None
    clocks.advance(61)
    assert switch.current() is None


def test_wall_clock_jumping_back_does_not_extend_a_window(
    flag: str, clocks: Clocks
) -> None:
    switch = make_switch(FileFlagStore(flag), clocks, [])
    ipdebug.enable("90s", flag=flag, environ={})
    assert switch.current() is not None
    clocks.mono += 91
    clocks.wall -= 3600  # NTP step backwards
    assert switch.current() is None


def test_wall_clock_jumping_forward_ends_a_window(flag: str, clocks: Clocks) -> None:
    switch = make_switch(FileFlagStore(flag), clocks, [])
    ipdebug.enable("90s", flag=flag, environ={})
    assert switch.current() is not None
    clocks.wall += 3600
    clocks.mono += 1.0  # noticed at the next poll, within a second
    assert switch.current() is None


def test_a_bad_flag_is_off_and_logged_once_per_change(
    flag: str, clocks: Clocks, records: object
) -> None:
    changes: list[tuple[str | None, str | None, str]] = []
    switch = make_switch(FileFlagStore(flag), clocks, changes)
    ipdebug.enable("5m", flag=flag, environ={})
    assert switch.current() is not None
    os.chmod(flag, 0o666)
    for _ in range(5):
        clocks.advance(1.1)
        assert switch.current() is None
    os.chmod(flag, 0o600)
    Path(flag).write_text("{")
    clocks.advance(1.1)
    assert switch.current() is None
    warnings = [r.getMessage() for r in records.records if r.levelname == "WARNING"]  # type: ignore[attr-defined]
    assert len(warnings) == 2
    assert "mode 0666" in warnings[0] and "is not valid JSON" in warnings[1]
    assert [why for *_, why in changes] == ["opened", "refused"]


def test_a_store_that_raises_is_off(flag: str, clocks: Clocks) -> None:
    class Broken(FileFlagStore):
        def load(self, now: float) -> Window | None:
            raise RuntimeError("backend down")

    switch = make_switch(Broken(flag), clocks, [])
    assert switch.current() is None
