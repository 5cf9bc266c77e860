"""The file flag: atomic writes, and every way a flag on disk can be wrong."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
import typing as t
from pathlib import Path

import pytest

import ipdebug
from ipdebug.errors import FlagError, FlagWriteError
from ipdebug.pin import MAX_PIN_FAILURES
from ipdebug.stores.file import FileFlagStore

from .conftest import client, open_window, secret_and_frame, unlock


def write_flag(flag: str, **changes: object) -> None:
    ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, environ={})
    if changes:
        data = json.loads(Path(flag).read_text())
        data.update(changes)
        Path(flag).write_text(json.dumps(data))


def test_enable_writes_a_private_flag_in_a_private_directory(flag: str) -> None:
    opened = ipdebug.enable(
        "5m", allow=["127.0.0.1"], reason="INC-42", flag=flag, environ={}
    )
    assert stat.S_IMODE(os.stat(flag).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(flag)).st_mode) == 0o700
    text = Path(flag).read_text()
    assert opened.pin not in text and opened.pin.replace("-", "") not in text
    window = FileFlagStore(flag).load(time.time())
    assert window is not None
    assert window.allow == ("127.0.0.1",) and window.reason == "INC-42"
    assert window.pin.verify(opened.pin)
    # No temporary file is left behind.
    assert sorted(os.listdir(os.path.dirname(flag))) == ["audit.log", "flag.json"]


def test_missing_flag_is_off(flag: str) -> None:
    assert FileFlagStore(flag).load(time.time()) is None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(
            lambda f: Path(f).write_text("{not json"), "is not valid JSON", id="corrupt"
        ),
        pytest.param(
            lambda f: Path(f).write_text(Path(f).read_text()[:40]),
            "is not valid JSON",
            id="truncated",
        ),
        pytest.param(lambda f: Path(f).write_text(""), "is not valid JSON", id="empty"),
        pytest.param(
            lambda f: Path(f).write_bytes(b"\xff\xfe"), "is not valid JSON", id="binary"
        ),
        pytest.param(
            lambda f: Path(f).write_text("[]"), "is not a JSON object", id="not-object"
        ),
        pytest.param(
            lambda f: write_flag(f, ipdebug=2), "has format 2", id="future-format"
        ),
        pytest.param(
            lambda f: write_flag(f, ipdebug=True), "has format True", id="format-bool"
        ),
        pytest.param(
            lambda f: write_flag(f, reason="INC-\ud800"),
            "has a bad 'reason'",
            id="lone-surrogate",
        ),
        pytest.param(
            lambda f: write_flag(f, by="app\x1b[31m"),
            "has a bad 'by'",
            id="control-character",
        ),
        pytest.param(
            lambda f: write_flag(f, until=10**400),
            "has no valid 'until'",
            id="until-huge-int",
        ),
        pytest.param(
            # Closed, so that Python 3.13's parser (which reports a missing
            # value before the depth of 5,000) reaches the depth limit too.
            lambda f: Path(f).write_text("[" * 20_000 + "]" * 20_000),
            "nested too deeply",
            id="deep-nesting",
        ),
        pytest.param(
            lambda f: write_flag(f, until="soon"),
            "has no valid 'until'",
            id="until-type",
        ),
        pytest.param(
            lambda f: write_flag(f, until=float("inf")),
            "has no valid 'until'",
            id="until-infinite",
        ),
        pytest.param(
            lambda f: write_flag(
                f, created=time.time() + 3600, until=time.time() + 3900
            ),
            "created in the future",
            id="future",
        ),
        pytest.param(
            lambda f: write_flag(f, allow=["10.0.0.300"]),
            "bad 'allow' entry",
            id="allow",
        ),
        pytest.param(
            lambda f: write_flag(f, allow="127.0.0.1"), "not a list", id="allow-string"
        ),
        pytest.param(
            lambda f: write_flag(f, pin={"alg": "plain", "pin": "1"}),
            "not an scrypt hash",
            id="pin",
        ),
        pytest.param(lambda f: write_flag(f, id="x"), "no valid 'id'", id="id"),
        pytest.param(
            lambda f: os.chmod(f, 0o666),
            "writable by group or others (mode 0666)",
            id="mode-0666",
        ),
        pytest.param(
            lambda f: os.chmod(f, 0o620),
            "writable by group or others (mode 0620)",
            id="mode-0620",
        ),
        pytest.param(
            lambda f: os.chown(f, 12345, -1), "is owned by uid 12345", id="owner"
        ),
        pytest.param(
            lambda f: os.chmod(os.path.dirname(f), 0o777),
            "its directory is writable",
            id="dir-mode",
        ),
        pytest.param(
            lambda f: os.chown(os.path.dirname(f), 12345, -1),
            "its directory is owned by uid 12345",
            id="dir-owner",
        ),
        pytest.param(
            lambda f: Path(f).write_text(" " * (70 * 1024)), "larger than", id="huge"
        ),
    ],
)
def test_bad_flags_are_refused(flag: str, damage: object, message: str) -> None:
    write_flag(flag)
    damage(flag)  # type: ignore[operator]
    with pytest.raises(FlagError, match=re.escape(message)):
        FileFlagStore(flag).load(time.time())


def test_not_a_regular_file(flag: str, tmp_path: Path) -> None:
    write_flag(flag)
    real = tmp_path / "elsewhere.json"
    os.replace(flag, real)
    os.symlink(real, flag)
    with pytest.raises(FlagError, match="is a symbolic link"):
        FileFlagStore(flag).load(time.time())
    os.unlink(flag)
    os.mkdir(flag)
    with pytest.raises(FlagError, match="is a directory, not a regular file"):
        FileFlagStore(flag).load(time.time())
    os.rmdir(flag)
    os.mkfifo(flag, 0o600)
    # A FIFO with no writer must not block the reader.
    with pytest.raises(FlagError, match="is a FIFO"):
        FileFlagStore(flag).load(time.time())


def test_a_sticky_shared_directory_is_refused(tmp_path: Path) -> None:
    # Like /tmp: another user could create relay/, attach/ and audit.log
    # beside the flag before the first window (issue 11).
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    flag = str(shared / "flag.json")
    with pytest.raises(FlagWriteError) as refused:
        write_flag(flag)
    message = str(refused.value)
    assert f"{shared} is shared with other users (mode 1777, like /tmp)" in message
    assert "~/.local/state/ipdebug" in message and "mktemp -d" in message
    assert os.listdir(shared) == []
    # A flag put there by other means is off.
    os.chmod(shared, 0o700)
    write_flag(flag)
    os.chmod(shared, 0o1777)
    with pytest.raises(FlagError, match="is shared with other users"):
        FileFlagStore(flag).load(time.time())


def test_a_symlinked_flag_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    flag = str(tmp_path / "link" / "flag.json")
    with pytest.raises(FlagWriteError, match="link is a symbolic link"):
        write_flag(flag)
    assert os.listdir(real) == []
    write_flag(str(real / "flag.json"))
    with pytest.raises(FlagError, match="is a symbolic link"):
        FileFlagStore(flag).load(time.time())


def test_missing_directories_are_created_private(tmp_path: Path) -> None:
    flag = str(tmp_path / "a" / "b" / "flag.json")
    write_flag(flag)
    for d in (tmp_path / "a", tmp_path / "a" / "b"):
        st = os.lstat(d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700


def test_no_directory_is_created_through_a_foreign_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "a").symlink_to(elsewhere)
    os.lchown(tmp_path / "a", 65534, 65534)  # another user's link
    if os.lstat(tmp_path / "a").st_uid != 65534:
        pytest.skip("cannot give a symbolic link to another user here")
    with pytest.raises(FlagWriteError, match="symbolic link of uid 65534"):
        write_flag(str(tmp_path / "a" / "b" / "flag.json"))
    assert os.listdir(elsewhere) == []


def test_unreadable_directory_is_refused_not_raised(tmp_path: Path) -> None:
    flag = str(tmp_path / "nodir" / "flag.json")
    (tmp_path / "nodir").write_text("a file where the directory should be")
    with pytest.raises(FlagError, match="cannot be read"):
        FileFlagStore(flag).load(time.time())


def test_load_notices_replacement_and_caches_otherwise(flag: str) -> None:
    store = FileFlagStore(flag)
    write_flag(flag)
    first = store.load(time.time())
    assert first is not None
    assert store.load(time.time()) is first  # unchanged: no re-read
    write_flag(flag)
    second = store.load(time.time())
    assert second is not None and second.id != first.id
    os.unlink(flag)
    assert store.load(time.time()) is None


def test_write_failure_keeps_the_previous_flag(flag: str) -> None:
    write_flag(flag)
    before = Path(flag).read_bytes()
    # A file where the flag's directory should be (permission bits would not
    # stop root, who runs these tests on CI).
    blocked = os.path.join(flag + ".d", "flag.json")
    Path(flag + ".d").write_text("not a directory")
    with pytest.raises(FlagWriteError, match=r"cannot create .*flag.json.d"):
        ipdebug.enable("5m", flag=blocked, environ={})
    assert Path(flag).read_bytes() == before


def test_disk_full_on_write_leaves_the_previous_flag(flag: str, tmp_path: Path) -> None:
    """A write that fails half way (simulated with RLIMIT_FSIZE, which makes
    write() fail with EFBIG like ENOSPC would) leaves the old flag and no
    temporary file.
    """
    import resource
    import signal

    write_flag(flag)
    before = Path(flag).read_bytes()
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, hard))
    try:
        with pytest.raises(FlagWriteError, match="File too large"):
            ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, environ={})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert Path(flag).read_bytes() == before
    assert sorted(os.listdir(os.path.dirname(flag))) == ["audit.log", "flag.json"]


def test_enable_refuses_an_unsafe_directory(tmp_path: Path) -> None:
    shared = tmp_path / "open"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(FlagWriteError, match="is writable by group or others"):
        ipdebug.enable("5m", flag=str(shared / "flag.json"), environ={})


def test_disable_is_idempotent_and_refuses_a_directory(flag: str) -> None:
    write_flag(flag)
    assert ipdebug.disable(flag, environ={}) is True
    assert ipdebug.disable(flag, environ={}) is False
    os.mkdir(flag)
    with pytest.raises(FlagWriteError):
        ipdebug.disable(flag, environ={})


def test_pin_failures_are_counted_per_window_and_reset_by_enable(flag: str) -> None:
    store = FileFlagStore(flag)
    write_flag(flag)
    window = store.load(time.time())
    assert window is not None
    assert store.pin_failures(window.id) == 0
    assert [store.count_pin_failure(window.id) for _ in range(3)] == [1, 2, 3]
    assert FileFlagStore(flag).pin_failures(window.id) == 3  # another process sees it
    write_flag(flag)
    assert store.pin_failures(window.id) == 0  # the old window's counter is gone
    assert not [n for n in os.listdir(os.path.dirname(flag)) if n.endswith(".pinfail")]


def test_concurrent_reservations_never_let_more_than_ten_through(flag: str) -> None:
    """PinGuard's protocol on the store itself, 48 threads at once, over
    many windows: an attempt counted over the limit is forgiven at once,
    and no more than ten ever count within it (the forgiven ones of later
    attempts must not lower the count of an earlier one).
    """
    store = FileFlagStore(flag)
    for _ in range(15):
        write_flag(flag)
        window = store.load(time.time())
        assert window is not None
        start = threading.Barrier(48)
        within: list[int] = []

        def attempt(
            window_id: str = window.id,
            start: threading.Barrier = start,
            within: list[int] = within,
        ) -> None:
            start.wait()
            count = store.count_pin_failure(window_id)
            if count > MAX_PIN_FAILURES:
                store.forgive_pin_failure(window_id)
            else:
                within.append(count)

        threads = [threading.Thread(target=attempt) for _ in range(48)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(within) <= MAX_PIN_FAILURES, sorted(within)
        assert store.pin_failures(window.id) == len(within)


def _plant_symlink(path: str) -> None:
    target = path + ".target"
    Path(target).write_bytes(b"")
    os.symlink(target, path)


def _plant_owned_by_another_user(path: str) -> None:
    Path(path).write_bytes(b"")
    os.chown(path, 12345, 12345)  # could be truncated by them at will


def _plant_writable(path: str) -> None:
    Path(path).write_bytes(b"")
    os.chmod(path, 0o666)


ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0, reason="giving a file to another user needs root"
)


@pytest.mark.parametrize(
    ("suffix", "plant"),
    [
        pytest.param("pinfail", _plant_symlink, id="failures-symlink"),
        pytest.param(
            "pinfail",
            _plant_owned_by_another_user,
            id="failures-other-owner",
            marks=ROOT_ONLY,
        ),
        pytest.param("pinfail", _plant_writable, id="failures-mode-0666"),
        pytest.param("pinfail", os.mkdir, id="failures-directory"),
        pytest.param("pinok", _plant_symlink, id="forgiven-symlink"),
        pytest.param(
            "pinok",
            _plant_owned_by_another_user,
            id="forgiven-other-owner",
            marks=ROOT_ONLY,
        ),
        pytest.param("pinok", _plant_writable, id="forgiven-mode-0666"),
    ],
)
def test_a_planted_pin_counter_locks_the_console(
    tmp_path: Path,
    suffix: str,
    plant: t.Callable[[str], object],
    make: t.Callable[..., t.Any],
) -> None:
    """A counter that is not a private regular file (planted through some
    other hole, to reset the failures by truncating or to forgive them) is
    refused and locks the console. Shared flag directories, where another
    user could plant one, are refused outright (test_local_users.py).
    """
    private = tmp_path / "state"
    private.mkdir(mode=0o700)
    flag = str(private / "flag.json")
    middleware = make(flag=flag)
    opened = open_window(middleware)
    plant(f"{flag}.{opened.window_id}.{suffix}")
    store = FileFlagStore(flag)
    with pytest.raises(FlagError):
        store.count_pin_failure(opened.window_id)
    with pytest.raises(FlagError):
        store.pin_failures(opened.window_id)
    app = client(middleware)
    secret, _ = secret_and_frame(app.get("/fail", status=500, expect_errors=True).text)
    assert unlock(app, secret, opened.pin) == {"auth": False, "exhausted": True}


def test_counters_are_created_private(flag: str) -> None:
    write_flag(flag)
    store = FileFlagStore(flag)
    window = store.load(time.time())
    assert window is not None
    store.count_pin_failure(window.id)
    store.forgive_pin_failure(window.id)
    for suffix in ("pinfail", "pinok"):
        st = os.lstat(f"{flag}.{window.id}.{suffix}")
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    assert store.pin_failures(window.id) == 0
    ipdebug.disable(flag, environ={})
    assert not [n for n in os.listdir(os.path.dirname(flag)) if ".pin" in n]
