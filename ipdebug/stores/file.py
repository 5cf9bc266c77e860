"""The enable flag as a file, for one host.

Writing is atomic (temporary file in the same directory, ``fsync``,
``os.replace``), so a reader sees the old flag or the new one, never half of
either, and concurrent ``enable`` runs end with the last complete flag.

Reading trusts the file only when nobody but its owner could have written it:
it must be a regular file (not a symlink, directory or FIFO), owned by this
process's user or root, not writable by group or others, in a directory with
the same properties (a real directory, not a symbolic link). Anything else
raises :class:`~ipdebug.errors.FlagError`, which the middleware treats as off.

**Security:** a directory shared with other users is refused even when it is
sticky (``/tmp`` itself): the sockets, the audit trail and the PIN counters
live beside the flag, and another user could create them first. ``enable``
creates missing directories with mode 0700 and never through a symbolic
link.

PIN attempts are counted in a file beside the flag, one byte appended per
attempt *before* the PIN is checked (``O_APPEND`` writes are atomic), so
every worker sees the same count without a lock and concurrent guesses
cannot overrun the limit; right PINs are counted in a second file and
subtracted. Counters that another user could have planted or could write
are refused, which locks the console. The audit trail, ``audit.log`` beside the flag, gets
one JSON line per event from every process and from the CLI.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import stat
import tempfile

from ..errors import FlagError, FlagWriteError
from ..private import NotPrivate, make_directories
from .window import Window

#: Larger flags are refused unread.
MAX_FLAG_BYTES = 64 * 1024
#: The audit trail is rotated (one old file kept) past this size.
MAX_AUDIT_BYTES = 8 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)

_StatKey = tuple[int, ...]

_FLAG_FIX = (
    "; set IPDEBUG_FLAG (or --flag) to a path in a private directory of this user"
)


class FileFlagStore:
    """A flag kept in one JSON file. See the module documentation.

    :param path: absolute path of the flag file.
    """

    #: A ``stat`` per check is cheap: the middleware looks once a second.
    poll_interval = 1.0

    def __init__(self, path: str) -> None:
        self.location = path
        self.path = path
        self.directory = os.path.dirname(path)
        self._key: _StatKey | None = None
        self._cached: Window | FlagError | None = None

    def __repr__(self) -> str:
        return f"FileFlagStore({self.path!r})"

    # Reading

    def load(self, now: float) -> Window | None:
        try:
            dir_st = os.lstat(self.directory)
            st = os.lstat(self.path)
        except FileNotFoundError:
            self._key = self._cached = None
            return None
        except OSError as exc:
            raise FlagError(self.path, f"cannot be read: {exc.strerror}") from None
        key = (
            st.st_dev,
            st.st_ino,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_size,
            dir_st.st_ino,
            dir_st.st_mode,
            dir_st.st_uid,
        )
        if key != self._key:
            try:
                self._cached = self._read(dir_st, now)
            except FlagError as exc:
                self._cached = exc
            self._key = key
        if isinstance(self._cached, FlagError):
            # A fresh exception each time: re-raising the cached one would
            # grow its traceback at every poll.
            raise FlagError(self._cached.location, self._cached.problem)
        return self._cached

    def _read(self, dir_st: os.stat_result, now: float) -> Window | None:
        problem = unsafe_directory(dir_st)
        if problem:
            raise FlagError(self.path, f"its directory {problem}")
        try:
            fd = os.open(
                self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            )
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise FlagError(
                    self.path, "is a symbolic link; remove it and enable again"
                ) from None
            raise FlagError(self.path, f"cannot be read: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            problem = _unsafe_file(st)
            if problem:
                raise FlagError(self.path, problem)
            data = os.read(fd, MAX_FLAG_BYTES + 1)
        except OSError as exc:
            raise FlagError(self.path, f"cannot be read: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(data) > MAX_FLAG_BYTES:
            raise FlagError(self.path, f"is larger than {MAX_FLAG_BYTES} bytes")
        try:
            return Window.from_json(data, now=now)
        except ValueError as exc:
            raise FlagError(self.path, f"{exc}; run 'ipdebug enable' again") from None

    # Writing

    def save(self, window: Window) -> None:
        self._prepare_directory()
        try:
            fd, tmp = tempfile.mkstemp(
                prefix=".flag.", suffix=".tmp", dir=self.directory
            )
        except OSError as exc:
            raise FlagWriteError(self.path, exc.strerror or str(exc)) from None
        try:
            try:
                _write_all(fd, window.to_json().encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise FlagWriteError(self.path, exc.strerror or str(exc)) from None
        _fsync_directory(self.directory)
        self._remove_counters(keep=window.id)

    def clear(self) -> bool:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            existed = False
        except OSError as exc:
            raise FlagWriteError(self.path, exc.strerror or str(exc)) from None
        else:
            existed = True
            _fsync_directory(self.directory)
        self._remove_counters(keep=None)
        return existed

    def _prepare_directory(self) -> None:
        try:
            make_directories(self.directory, check=unsafe_directory)
        except NotPrivate as exc:
            if exc.problem == "is not a directory":
                problem = f"cannot create {exc.path}: it exists and is not a directory"
            else:
                problem = str(exc)
            fix = "" if "private directory" in problem else _FLAG_FIX
            raise FlagWriteError(self.path, problem + fix) from None
        except OSError as exc:
            raise FlagWriteError(
                self.path,
                f"cannot create {self.directory}: {exc.strerror}; "
                "set IPDEBUG_FLAG (or --flag) to a path this user can write",
            ) from None

    # PIN failures, shared by every process using this flag

    def _counter(self, window_id: str, kind: str = "pinfail") -> str:
        return f"{self.path}.{window_id}.{kind}"

    def count_pin_failure(self, window_id: str) -> int:
        """Append one byte to the window's counter (``O_APPEND`` makes
        concurrent appends distinct) and return its size, minus the
        attempts forgiven.

        :raises FlagError: when a counter is not a private regular file
            (planted by another user): the caller locks the console.
        """
        # Forgiven attempts are read *before* this one is appended: only
        # attempts appended earlier can have been forgiven by then. Read
        # after, they would include forgiven attempts appended after this
        # one, and the count would come out low (an eleventh PIN checked).
        forgiven = self._counter_size(self._counter(window_id, "pinok"))
        fd = _open_counter(self._counter(window_id))
        try:
            os.write(fd, b"x")
            # At least this attempt's position: another append between the
            # write and the fstat only makes the count larger.
            attempts = os.fstat(fd).st_size
        finally:
            os.close(fd)
        return attempts - forgiven

    def forgive_pin_failure(self, window_id: str) -> None:
        """Append one byte to the window's count of right PINs."""
        fd = _open_counter(self._counter(window_id, "pinok"))
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)

    def pin_failures(self, window_id: str) -> int:
        """:raises FlagError: as :meth:`count_pin_failure`."""
        # Forgiven first, for the reason given in count_pin_failure: the
        # count may come out high, never low.
        forgiven = self._counter_size(self._counter(window_id, "pinok"))
        return self._counter_size(self._counter(window_id)) - forgiven

    def _counter_size(self, path: str) -> int:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise FlagError(path, f"cannot be read: {exc.strerror}") from None
        problem = _unsafe_file(st)
        if problem:
            raise FlagError(path, problem)
        return st.st_size

    def _remove_counters(self, keep: str | None) -> None:
        kept = (
            () if keep is None else (self._counter(keep), self._counter(keep, "pinok"))
        )
        pattern = glob.escape(self.path) + ".*.pin"
        for path in glob.glob(pattern + "fail") + glob.glob(pattern + "ok"):
            if path not in kept:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    # The audit trail

    @property
    def audit_path(self) -> str:
        return os.path.join(self.directory, "audit.log")

    def append_audit(self, record: dict[str, object]) -> None:
        """One JSON line per event in ``audit.log`` beside the flag (mode
        0600), rotated to ``audit.log.1`` past :data:`MAX_AUDIT_BYTES`.
        Lines are written with one ``O_APPEND`` write each, so processes
        do not interleave them.

        **Security:** the trail is opened without following a symbolic link
        and written only when it is a regular file of this user (or root)
        that group and others cannot write; a trail planted by another user
        is refused, and nothing is written to it.

        :raises OSError: when the trail cannot be written or is refused
            (:class:`~ipdebug.private.NotPrivate`).
        """
        line = (json.dumps(record, default=str, ensure_ascii=True) + "\n").encode()
        path = self.audit_path
        fd = _open_append(path)
        try:
            size = os.fstat(fd).st_size
            if size and size + len(line) > MAX_AUDIT_BYTES:
                _rotate(path)
                os.close(fd)
                fd = -1
                fd = _open_append(path)
            _write_all(fd, line)
        finally:
            if fd >= 0:
                os.close(fd)

    # The fleet's captured errors: a file serves one host, whose workers
    # answer over the relay; there is no fleet list to keep.

    def append_capture(self, window_id: str, meta: dict[str, object]) -> None:
        """Nothing to do: this host's captures are listed over the relay."""

    def captures(self, window_id: str, count: int) -> list[dict[str, object]]:
        """Always empty: a file store keeps no fleet list."""
        return []


def _open_append(path: str) -> int:
    """Open (or create, 0600) a file beside the flag for appending, and
    check it: another user may have planted it, as a symbolic link, a FIFO
    or a file they can write.

    :raises NotPrivate: for anything but a private regular file.
    """
    try:
        fd = os.open(
            path,
            os.O_WRONLY
            | os.O_APPEND
            | os.O_CREAT
            | os.O_NOFOLLOW
            | os.O_NONBLOCK  # a planted FIFO must not block the writer
            | os.O_CLOEXEC,
            0o600,
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotPrivate(path, "is a symbolic link; remove it") from None
        raise
    try:
        problem = _unsafe_file(os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    if problem:
        os.close(fd)
        raise NotPrivate(path, f"{problem}; remove it (the next event creates it)")
    return fd


def _rotate(path: str) -> None:
    """Move the full trail to ``.1``, replacing only a previous trail of
    this user (a planted ``.1`` stops the rotation, and so the writes).
    """
    old = path + ".1"
    with contextlib.suppress(FileNotFoundError):
        problem = _unsafe_file(os.lstat(old))
        if problem:
            raise NotPrivate(old, f"{problem}; remove it")
    os.replace(path, old)


def unsafe_directory(st: os.stat_result) -> str | None:
    """Why a flag directory (from :func:`os.lstat`) must not be trusted, or
    ``None`` (the store's rule, also used by ``ipdebug doctor``).

    A directory that others can write is refused even when it is sticky,
    as ``/tmp`` is: another user could create the socket directories and
    the audit trail beside the flag before the first window.
    """
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link; point IPDEBUG_FLAG at the real directory"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid not in (os.geteuid(), 0):
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        mode = stat.S_IMODE(st.st_mode)
        if st.st_mode & stat.S_ISVTX:
            return (
                f"is shared with other users (mode {mode:04o}, like /tmp); put the "
                "flag in a private directory, such as the default "
                "~/.local/state/ipdebug or one made by mktemp -d"
            )
        return f"is writable by group or others (mode {mode:04o}); run chmod 700 on it"
    return None


def _unsafe_file(st: os.stat_result) -> str | None:
    for test, kind in _KINDS:
        if test(st.st_mode):
            return f"is {kind}, not a regular file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_uid not in (os.geteuid(), 0):
        return f"is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        mode = stat.S_IMODE(st.st_mode)
        return f"is writable by group or others (mode {mode:04o}); run chmod 600 on it"
    return None


def _open_counter(path: str) -> int:
    """Open (creating, mode 0600) a PIN counter for appending.

    :raises FlagError: for anything but a private regular file (which locks
        the console).
    """
    try:
        return _open_append(path)
    except NotPrivate as exc:
        raise FlagError(path, exc.problem) from None
    except OSError as exc:
        raise FlagError(path, f"cannot be opened: {exc.strerror}") from None


def _write_all(fd: int, data: bytes) -> None:
    # os.write may write less than asked (a full disk, a file size limit);
    # the next call then raises the real error.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(path: str) -> None:
    # Makes the rename durable; not every filesystem supports it.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
