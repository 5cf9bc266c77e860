"""Captures: other clients' unhandled errors, kept live for the operator.

While a window opened with ``ipdebug enable --capture`` is open, a request
that is *not* gated in and ends in an unhandled exception is recorded in the
process that handled it: the exception and its traceback (so its frames and
their local variables stay alive), and a little metadata. Werkzeug's
``DebugTraceback`` is built only when the operator opens the capture.

What the failing client gets does not change: the middleware records the
exception and re-raises the same object; Flask and Django hand it over from
the signal the integrations already use, and go on with their own 500
handling. Recording never raises (any problem: nothing is recorded) and
does no I/O on the request's thread: the audit record, and the fleet's Redis
stream, are written by a background thread.

At most ``max_captured`` captures are kept per process, oldest dropped
first; all are dropped when the window ends, is disabled or is replaced.

**Security:** captured frames hold other clients' data (request bodies,
tokens, personal data in locals). They are shown only to gated-in clients,
and the console in them needs the window's PIN, as for the operator's own
errors. Capture is off unless the window asks for it.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
import typing as t
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from .audit import logger

if t.TYPE_CHECKING:
    from types import TracebackType

    from .stores import Window

#: Default of ``max_captured`` (``IPDEBUG_MAX_CAPTURED``).
DEFAULT_MAX_CAPTURED = 50
#: Characters of an exception's message kept in the metadata.
MAX_MESSAGE = 200
#: Characters of a path kept in the metadata.
MAX_PATH = 500
#: Records waiting for the background writer; more are dropped.
MAX_PENDING = 256
#: Seconds between two looks for work by the background writer while
#: captures come; it parks after :data:`PARK_AFTER` seconds without one.
POLL = 0.02
PARK_AFTER = 1.0

#: Exceptions that are the framework's way to answer 4xx, not bugs: by
#: module and class name, so that Django need not be imported.
_CLIENT_ERRORS = frozenset(
    {
        ("django.http.response", "Http404"),
        ("django.core.exceptions", "PermissionDenied"),
        ("django.core.exceptions", "SuspiciousOperation"),
        ("django.core.exceptions", "BadRequest"),
    }
)


def is_client_error(error: BaseException) -> bool:
    """Whether ``error`` answers a client mistake (not captured): Werkzeug
    ``HTTPException`` below 500, Django's ``Http404``, ``PermissionDenied``,
    ``SuspiciousOperation`` (and their subclasses).
    """
    kind = type(error)
    try:
        http, client = _KINDS[kind]
    except KeyError:
        http, client = _kind_of(kind)
    if client:
        return True
    if not http:
        return False
    # An instance may carry its own code: read it every time.
    code = getattr(error, "code", None)
    return type(code) is int and code < 500


#: Per exception type: (a Werkzeug ``HTTPException``, a Django client error).
#: Bounded: a program that creates exception types on the fly refills it.
_KINDS: dict[type[BaseException], tuple[bool, bool]] = {}
_MAX_KINDS = 256


def _kind_of(kind: type[BaseException]) -> tuple[bool, bool]:
    """What :func:`is_client_error` needs to know of a type: its classes
    walked once, the answer kept in :data:`_KINDS`.
    """
    mro = kind.__mro__
    found = (
        any(
            k.__name__ == "HTTPException" and k.__module__.startswith("werkzeug.")
            for k in mro
        ),
        any((k.__module__, k.__name__) in _CLIENT_ERRORS for k in mro),
    )
    if len(_KINDS) >= _MAX_KINDS:
        _KINDS.clear()
    _KINDS[kind] = found
    return found


def describe_error(error: BaseException) -> str:
    """``"KeyError: 'user'"``: the type and the first :data:`MAX_MESSAGE`
    characters of the message (a ``__str__`` that fails gives none).
    """
    try:
        message = str(error)[:MAX_MESSAGE]
    except Exception:
        message = "(the message could not be read)"
    name = type(error).__name__
    return f"{name}: {message}" if message else name


@dataclass(eq=False)
class Capture:
    """One captured error. ``tb`` is its traceback when it was captured:
    the exception's own ``__traceback__`` grows as it travels on (to the
    server), and the page shows only the frames up to ipdebug.
    """

    id: str
    time: float
    method: str
    path: str
    client: str
    exception: str
    pid: int
    instance: str
    window_id: str
    error: BaseException = field(repr=False)
    tb: TracebackType | None = field(repr=False)
    skip: int = 0
    #: Entered around console commands in its frames (Flask's contexts).
    contexts: t.Sequence[object] = field(default=(), repr=False)

    def meta(self) -> dict[str, object]:
        """The public metadata (never the frames)."""
        return self.summary().meta()

    def skip_frames(self) -> int:
        """Frames of ``error.__traceback__`` to leave out so that the page
        starts where the capture did (plus ``skip``, ipdebug's own frame).
        """
        tb, count = self.error.__traceback__, 0
        while tb is not None and tb is not self.tb:
            tb, count = tb.tb_next, count + 1
        return (count if tb is not None else 0) + self.skip

    def summary(self) -> Summary:
        """What the background writer gets: no reference to the frames,
        which must not outlive the capture.
        """
        return Summary(
            self.id,
            self.time,
            self.method,
            self.path,
            self.client,
            self.exception,
            self.pid,
            self.instance,
            self.window_id,
            type(self.error).__name__,
        )


class Summary(t.NamedTuple):
    """A capture's metadata, without its frames."""

    id: str
    time: float
    method: str
    path: str
    client: str
    exception: str
    pid: int
    instance: str
    window_id: str
    type_name: str

    def meta(self) -> dict[str, object]:
        """The public metadata, as listed."""
        return {
            "id": self.id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time))
            + f".{int(self.time * 1_000_000) % 1_000_000:06d}Z",
            "method": self.method,
            "path": self.path,
            "client": self.client,
            "exception": self.exception,
            "pid": self.pid,
            "instance": self.instance,
        }


class CaptureContexts(list[t.ContextManager[t.Any]]):
    """The contexts kept with a captured error's frames for the console,
    naming the capture so console commands are audited with its id.
    """

    def __init__(self, capture: Capture) -> None:
        super().__init__(
            t.cast(t.ContextManager[t.Any], c)
            for c in capture.contexts
            if hasattr(c, "__enter__") and hasattr(c, "__exit__")
        )
        self.capture_id = capture.id


def new_id(pid: int | None = None) -> str:
    """``<pid>x<random>``: unguessable, and naming the process that holds
    it, so a request for it can be relayed there.

    :param pid: this process's id, if the caller just read it.
    """
    if pid is None:
        pid = os.getpid()
    return f"{pid}x{_random_hex(pid)}"


#: Random bytes read ahead for :func:`new_id` (one ``getrandom`` call per
#: 64 ids instead of one per id), and the process they were read in: a
#: forked child reads its own.
_ahead: list[bytes] = []
_ahead_pid = 0
_ahead_lock = threading.Lock()


def _random_hex(pid: int) -> str:
    global _ahead, _ahead_pid
    with _ahead_lock:
        if _ahead_pid != pid or not _ahead:
            block = secrets.token_bytes(12 * 64)
            _ahead = [block[i : i + 12] for i in range(0, len(block), 12)]
            _ahead_pid = pid
        return _ahead.pop().hex()


class Captures:
    """This process's captures for the current window.

    :param instance: this server's name in a fleet.
    :param max_captured: captures kept; the oldest is dropped first.
    :param after: called by a background thread with each new capture
        (audit, the fleet's stream), given its :class:`Summary`; its
        exceptions are logged.
    """

    def __init__(
        self,
        instance: str,
        max_captured: int,
        after: t.Callable[[Summary], None] | None = None,
    ) -> None:
        self.instance = instance
        self.max_captured = max_captured
        self._after = after
        self._lock = threading.Lock()
        self._window_id: str | None = None
        #: Windows that ended, newest last (bounded).
        self._retired: deque[str] = deque(maxlen=8)
        self._held: OrderedDict[str, Capture] = OrderedDict()
        self._writer: _Writer | None = None
        self._writer_pid = 0

    def __len__(self) -> int:
        return len(self._held)

    def reset(self, window: Window | None) -> None:
        """Drop every capture (the window changed)."""
        new_id = window.id if window is not None and window.capture else None
        with self._lock:
            if new_id is not None and new_id == self._window_id:
                # Adopted already by a capture on another thread, which saw
                # the window before the switch's news reached this store:
                # nothing of another window is held, nothing to drop.
                return
            if self._window_id is not None:
                # A request that read this window before it ended must not
                # bring it back (add() adopts windows it was not told of).
                self._retired.append(self._window_id)
            self._window_id = new_id
            self._held = OrderedDict()

    def add(
        self,
        window: Window,
        error: BaseException,
        *,
        method: str,
        path: str,
        client: str,
        skip: int = 0,
        contexts: t.Sequence[object] = (),
    ) -> Capture | None:
        """Record ``error`` for ``window``, the window open now; ``None``
        when it is not recorded (the window does not capture, or the same
        exception is already held).
        """
        if not window.capture:
            return None
        pid = os.getpid()
        capture = Capture(
            id=new_id(pid),
            time=time.time(),
            method=method,
            path=path,
            client=client,
            exception=describe_error(error),
            pid=pid,
            instance=self.instance,
            window_id=window.id,
            error=error,
            tb=error.__traceback__,
            skip=skip,
            contexts=contexts,
        )
        with self._lock:
            if window.id in self._retired:
                return None  # ended while this request ran: keep nothing
            if self._window_id != window.id:
                # Not told of this window yet (the reset comes from the
                # switch): nothing of another window may stay.
                self._held = OrderedDict()
                self._window_id = window.id
            # Handed over twice (by a signal, then raised): the same request,
            # so among the newest.
            newest = itertools.islice(reversed(self._held.values()), 4)
            if any(held.error is error for held in newest):
                return None
            self._held[capture.id] = capture
            while len(self._held) > self.max_captured:
                self._held.popitem(last=False)
        if self._after is not None:
            self._queue(capture.summary(), pid)
        return capture

    def get(self, capture_id: str, window: Window) -> Capture | None:
        capture = self._held.get(capture_id)
        if capture is None or capture.window_id != window.id:
            return None
        return capture

    def listing(self, window: Window | None) -> list[dict[str, object]]:
        """Metadata of the captures of ``window``, newest first."""
        with self._lock:
            held = list(self._held.values())
        return [
            c.meta()
            for c in reversed(held)
            if window is not None and c.window_id == window.id
        ]

    # The background writer

    def _queue(self, summary: Summary, pid: int) -> None:
        writer = self._writer
        if writer is None or self._writer_pid != pid:
            with self._lock:
                if self._writer is None or self._writer_pid != pid:
                    # First capture in this process (or a forked child).
                    self._writer = _Writer(self._after)
                    self._writer_pid = pid
                    threading.Thread(
                        target=self._writer.run, name="ipdebug-capture", daemon=True
                    ).start()
                writer = self._writer
        writer.put(summary)


class _Writer:
    """The background writer: ``after(summary)`` for each new capture.

    Waking a blocked thread costs the request that does it a system call
    and, on a virtual machine, a cross-CPU interrupt (about 13 µs measured
    here). So while captures keep coming the writer looks for work every
    :data:`POLL` seconds by itself and requests only append to a deque;
    after :data:`PARK_AFTER` seconds without a capture it parks, and the
    next capture wakes it. A record waits at most about ``POLL`` seconds.
    """

    def __init__(self, after: t.Callable[[Summary], None] | None) -> None:
        self._after = after
        self._pending: deque[Summary] = deque()
        self._wake = threading.Event()
        self._parked = False

    def put(self, summary: Summary) -> None:
        # Full: the audit log lags behind a flood; keep the request fast.
        if len(self._pending) < MAX_PENDING:
            self._pending.append(summary)
        if self._parked:
            self._parked = False
            self._wake.set()

    def run(self) -> None:
        pending, after = self._pending, self._after
        idle = 0.0
        while after is not None:
            if pending:
                idle = 0.0
                while pending:
                    summary = pending.popleft()
                    try:
                        after(summary)
                    except Exception:
                        logger.exception("ipdebug could not record a capture")
                continue
            if idle >= PARK_AFTER:
                # Cleared first, then parked, then checked: a put() in
                # between either sees parked and sets the event (the wait
                # returns at once) or appended before the check.
                self._wake.clear()
                self._parked = True
                if not pending:
                    self._wake.wait()
                self._parked = False
                idle = 0.0
                continue
            time.sleep(POLL)
            idle += POLL
