"""The ticker: lets the flag-off hot path skip its clock read.

With no window open, :class:`~ipdebug.IPDebugMiddleware` must only notice
when the next flag check is due (once per ``poll_interval``). Reading the
clock for that is most of what ipdebug costs a request then. Instead, a
daemon thread of this process "ticks" every :data:`TICK` seconds (or a
quarter of the poll interval, if shorter): it records when its next tick
will come and clears the middleware's ``quiet`` flag. A request that reads
the clock and finds that the next check is not due until :data:`SLACK`
after the next tick sets ``quiet``; until the tick clears it, requests only
read that flag.

What this cannot change: ``quiet`` only ever makes a request be served as
if no window were open (the app alone). A request in an open window reads
the clock and checks the window's expiry as before (``closed_until`` is
``-inf`` then, so ``quiet`` is never set), and every change of the switch's
state clears ``quiet``. Only a tick later than :data:`SLACK` (a busy
process hands the thread the GIL within its switch interval, 5 ms) could
delay noticing a new window, by that much; never a window's end.

No thread, no skipping: under a uWSGI without Python threads, or when a
thread cannot start, requests read the clock as before. The thread is
started lazily in the process that serves (after a fork), and a forked
child clears ``quiet`` (:func:`os.register_at_fork`) before its first
request. A process forked from C, without Python's fork hooks, *after* it
served requests would keep its parent's ``quiet`` and not notice windows:
the servers ipdebug supports do not do that (gunicorn forks with
:func:`os.fork`; uWSGI forks its workers from a master that serves no
request).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import typing as t
import weakref

#: Seconds between two ticks (at most; a quarter of the poll interval if
#: that is shorter).
TICK = 0.25
#: The shortest tick.
MIN_TICK = 0.02
#: Seconds a tick may come late (a busy machine) without delaying a check.
SLACK = 0.1


class Quiet(t.Protocol):
    """What the ticker clears: the middleware's flag."""

    quiet: bool


class Ticker:
    """Clears ``target.quiet`` every tick, from a daemon thread started on
    first use in each process.

    :param target: the middleware (held weakly: the thread ends with it).
    :param poll_interval: the switch's poll interval.
    """

    def __init__(self, target: Quiet, poll_interval: float) -> None:
        self.interval = max(MIN_TICK, min(TICK, poll_interval / 4))
        #: How late a tick may come without delaying a due flag check:
        #: ``quiet`` is set only when the next tick comes at least this long
        #: before the check is due.
        self.slack = min(SLACK, self.interval)
        #: Monotonic time by which the next tick will have come; ``-inf``
        #: while no thread ticks in this process.
        self.next = float("-inf")
        self._target = weakref.ref(target)
        self._pid = 0
        self._lock = threading.Lock()
        self.disabled = not threads_run()

    def next_tick(self) -> float:
        """When the next tick comes, starting the thread in this process if
        it does not run yet; ``-inf`` when there is none.
        """
        if self._pid == os.getpid() or self.disabled:
            return self.next
        with self._lock:
            if self._pid != os.getpid():
                self.next = float("-inf")
                thread = threading.Thread(
                    target=_tick,
                    args=(self, self._target, self.interval),
                    name="ipdebug-ticker",
                    daemon=True,
                )
                try:
                    thread.start()
                except RuntimeError:  # no more threads: read the clock
                    self.disabled = True
                    return self.next
                self._pid = os.getpid()
        return self.next


def _tick(ticker: Ticker, target: weakref.ref[Quiet], interval: float) -> None:
    monotonic, sleep = time.monotonic, time.sleep
    while True:
        middleware = target()
        if middleware is None:
            return
        # First when, then clear: a request that read the old ``next``
        # reads it again after setting ``quiet`` and undoes it.
        ticker.next = monotonic() + interval
        middleware.quiet = False
        del middleware
        sleep(interval)


def threads_run() -> bool:
    """Whether a Python thread runs while this process waits for requests:
    not under a uWSGI started without ``--enable-threads``.
    """
    uwsgi = sys.modules.get("uwsgi")
    return uwsgi is None or bool(getattr(uwsgi, "has_threads", 1))


#: Every middleware with a ticker, for the fork hook.
_QUIET: weakref.WeakSet[t.Any] = weakref.WeakSet()


def register(target: Quiet) -> None:
    _QUIET.add(target)


def _after_fork_in_child() -> None:
    # The parent's thread does not run here: read the clock until this
    # process's own thread ticks.
    for target in list(_QUIET):
        target.quiet = False


os.register_at_fork(after_in_child=_after_fork_in_child)
