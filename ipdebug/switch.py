"""The switch: is a window open *now*, for this process?

The middleware asks on every request, so the answer must be cheap. The flag
store is consulted at most once per ``poll_interval`` per process (one or two
``stat`` calls for a file); in between, a closed switch costs one monotonic
clock read and a comparison. An open window's expiry is compared on every
request, so it ends on time to the second.

Expiry is checked against two clocks: on every request, a monotonic deadline
fixed when this process first saw the window; at every poll, the flag's
wall-clock time (the flag is written by another process, possibly on another
host). Whichever comes first ends the window, so a clock jump can shorten a
window (within a poll interval) but never extend it.

Transitions (opened, closed, replaced, expired, refused) are reported once to
``on_change``, under a lock, from whichever request noticed them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .audit import logger
from .errors import FlagError
from .stores import FlagStore, Window

#: ``on_change(old, new, why)``: ``why`` is ``"opened"``, ``"replaced"``,
#: ``"closed"`` (flag removed), ``"expired"`` or ``"refused"`` (flag unusable).
OnChange = Callable[[Window | None, Window | None, str], None]


class Switch:
    """Rate-limited view of a :class:`~ipdebug.stores.FlagStore`.

    :param store: where the flag lives.
    :param max_window: seconds after ``created`` at which any window ends.
    :param on_change: called on every transition.
    :param poll_interval: seconds between two reads of the store.
    :param clock: wall clock (epoch seconds); replaceable in tests.
    :param monotonic: monotonic clock; replaceable in tests.
    :param publish: called with each new :attr:`closed_until`, so that a
        caller's hot path can read a copy kept on itself (one attribute
        lookup fewer per request).
    """

    def __init__(
        self,
        store: FlagStore,
        *,
        max_window: float,
        on_change: OnChange,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        publish: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.max_window = max_window
        self._on_change = on_change
        self._interval = poll_interval
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        #: ``changing()``: whether a thread is reading the flag (or ending
        #: the window) now. A request that got the state from before may
        #: then run under a window this process is about to adopt: capture
        #: asks again when it fails. (The lock's own method: no Python call
        #: on the denied path.)
        self.changing: Callable[[], bool] = self._lock.locked
        self._next_poll = float("-inf")
        # (window, monotonic end), or None while closed.
        self._open: tuple[Window, float] | None = None
        self._problem: str | None = None
        self._publish = publish
        self._closed_until = float("-inf")

    @property
    def closed_until(self) -> float:
        """Until this monotonic time the switch is known to be closed: the
        middleware's hot path compares it with the clock and nothing else.
        ``-inf`` while a window is open or a poll is due.
        """
        return self._closed_until

    @closed_until.setter
    def closed_until(self, value: float) -> None:
        self._closed_until = value
        if self._publish is not None:
            self._publish(value)

    def current(self, mono: float | None = None) -> Window | None:
        """The open window, or ``None``. Never raises for a flag problem.

        :param mono: the monotonic time now, if the caller just read it.
        """
        if mono is None:
            mono = self._monotonic()
        if mono >= self._next_poll:
            self._poll(mono)
        state = self._open
        if state is None:
            return None
        if mono >= state[1]:
            self._expire(state[0])
            return None
        return state[0]

    def _poll(self, mono: float) -> None:
        # One thread polls; the others go on with the state they have.
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._next_poll = mono + self._interval
            now = self._clock()
            problem = None
            try:
                window = self.store.load(now)
            except FlagError as exc:
                window, problem = None, f"ipdebug is off: {exc}"
            except Exception as exc:  # a store bug or backend failure: off
                window = None
                problem = f"ipdebug is off: flag {self.store.location} cannot be checked: {exc!r}"
            # Logged once per change, not at request rate.
            if problem != self._problem:
                self._problem = problem
                if problem is not None:
                    logger.warning("%s", problem)
            closed_why = "refused" if problem is not None else "closed"
            if window is not None and now >= window.expires(self.max_window):
                window, closed_why = None, "expired"
            self._transition(window, mono, now, closed_why)
            self.closed_until = self._next_poll if self._open is None else float("-inf")
        finally:
            self._lock.release()

    def _transition(
        self, window: Window | None, mono: float, now: float, closed_why: str
    ) -> None:
        state = self._open
        old = state[0] if state else None
        if old == window:
            return
        if window is None:
            self._open = None
            self._on_change(old, None, closed_why)
            return
        # Fixed once: later wall-clock jumps cannot move it.
        self._open = (window, mono + (window.expires(self.max_window) - now))
        self._on_change(old, window, "opened" if old is None else "replaced")

    def _expire(self, window: Window) -> None:
        with self._lock:
            state = self._open
            if state is None or state[0] is not window:
                return
            self._open = None
            self.closed_until = self._next_poll
            self._on_change(window, None, "expired")

    def poll_now(self) -> Window | None:
        """Read the store now, whatever the interval (for tools and tests)."""
        self._next_poll = self.closed_until = float("-inf")
        return self.current()
