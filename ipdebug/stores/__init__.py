"""Where windows are kept: the flag stores.

A *window* (:class:`~ipdebug.stores.window.Window`) is written by ``ipdebug
enable`` and read by every process that runs the middleware. A store keeps
it, with what every process must share about it: the PIN attempt counters,
the audit trail and, in a fleet, the list of captured errors.

- :mod:`ipdebug.stores.window`: the window and its JSON encoding;
- :mod:`ipdebug.stores.file`: a file, for one host (the default);
- :mod:`ipdebug.stores.redis`: a Redis key, for a fleet (``ipdebug[redis]``),
  with its URL parsed by :mod:`ipdebug.stores.redisurl`.

:func:`open_store` picks one from the ``flag`` setting. Both implement
:class:`FlagStore`.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import ConfigError
from .file import FileFlagStore
from .redis import RedisFlagStore
from .window import Window

__all__ = ["FileFlagStore", "FlagStore", "RedisFlagStore", "Window", "open_store"]


class FlagStore(Protocol):
    """Where windows are kept. Implementations must be safe to call from
    several threads and processes, and must never return a window they did
    not fully validate.
    """

    #: The path or URL, for messages.
    location: str
    #: Seconds between two checks of the flag by the middleware's switch:
    #: how stale what a request acts on may be. A store whose :meth:`load`
    #: reads a cache kept fresh in the background may ask for less.
    poll_interval: float

    def load(self, now: float) -> Window | None:
        """The current window (possibly expired), ``None`` when there is no
        flag. Cheap when nothing changed since the last call.

        :raises FlagError: when a flag exists but must not be honoured.
        """

    def save(self, window: Window) -> None:
        """Replace the flag atomically.

        :raises FlagWriteError: leaving the previous flag in place.
        """

    def clear(self) -> bool:
        """Remove the flag; return whether there was one.

        :raises FlagWriteError: when it exists and cannot be removed.
        """

    def count_pin_failure(self, window_id: str) -> int:
        """Count one PIN attempt as failed, *before* it is checked, and
        return the window's count across every process using this store,
        this attempt included. Atomic: concurrent callers get distinct
        counts, so no more attempts than the limit are ever checked.
        """

    def forgive_pin_failure(self, window_id: str) -> None:
        """Take back the count of an attempt that proved right, so that
        operators who enter the PIN do not use up the failure limit.
        """

    def pin_failures(self, window_id: str) -> int:
        """Attempts counted and not forgiven so far for the window (failed,
        or being checked), across processes.
        """

    def append_audit(self, record: dict[str, object]) -> None:
        """Add one record to the durable audit trail that every process
        using this store and the CLI share.
        """

    def append_capture(self, window_id: str, meta: dict[str, object]) -> None:
        """Add a captured error's metadata (never its frames) to the fleet's
        list, or do nothing when the store keeps none (one host's workers
        answer over the relay instead).
        """

    def captures(self, window_id: str, count: int) -> list[dict[str, object]]:
        """The newest ``count`` entries of the fleet's list for
        ``window_id``, newest first; empty when the store keeps none.
        """


def open_store(location: str) -> FlagStore:
    """The store for a resolved ``flag`` setting: a file path, or a
    ``redis://`` / ``rediss://`` URL for a fleet (``ipdebug[redis]``).

    :raises ConfigError: for another URL scheme, or a bad Redis URL.
    """
    scheme, sep, _ = location.partition("://")
    if not sep:
        return FileFlagStore(location)
    if scheme in ("redis", "rediss"):
        return RedisFlagStore(location)
    raise ConfigError(
        "flag", location, "is a URL of an unknown kind; give a path or a redis:// URL"
    )
