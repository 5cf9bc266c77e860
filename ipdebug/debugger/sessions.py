"""What one process holds for the open window: a secret and tracebacks.

Werkzeug keeps every traceback's frames, and so every local variable of
every failing request, for the life of the process. A :class:`Sessions`
keeps at most ``max_tracebacks`` tracebacks (oldest dropped first) for the
current window only, and starts afresh, with a new secret, when the window
changes or the process forks.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import typing as t
from collections import OrderedDict

from ..stores import Window
from .engines import Frame

Contexts = list[t.ContextManager[t.Any]]


class Session:
    """One process's state for one window."""

    __slots__ = (
        "contexts",
        "frames",
        "numbers",
        "page_refs",
        "pages",
        "pid",
        "secret",
        "tracebacks",
        "window_id",
    )

    def __init__(self, window_id: str | None, instance: str) -> None:
        self.pid = os.getpid()
        self.window_id = window_id
        # The pid lets a multi-process server route a console request to the
        # process that holds the frame, the instance names the server in a
        # fleet; the random part is the secret.
        self.secret = f"{self.pid}x{secrets.token_hex(16)}~{instance}"
        self.frames: dict[int, Frame] = {}
        self.contexts: dict[int, Contexts] = {}
        # Keyed by a number never reused: the id() of a traceback object
        # that has since died can be, and an entry overwritten under it
        # would orphan its frames until the window ends.
        self.tracebacks: OrderedDict[int, list[int]] = OrderedDict()
        self.numbers = itertools.count()
        # A traceback's page, by an unguessable reference naming this process
        # (``<pid>x<random>~<instance>``), for API clients that got its JSON.
        self.pages: dict[str, t.Any] = {}
        self.page_refs: dict[int, str] = {}


class Sessions:
    """The current :class:`Session`, bounded and replaced safely.

    :param instance: this server's name in a fleet (part of each secret).
    :param max_tracebacks: tracebacks kept; the oldest is dropped first.
    """

    def __init__(self, instance: str, max_tracebacks: int) -> None:
        self.instance = instance
        self.max_tracebacks = max_tracebacks
        self._lock = threading.Lock()
        self._current = Session(None, instance)

    def reset(self, window: Window | None) -> None:
        """Drop every traceback and draw a new secret."""
        with self._lock:
            self._current = Session(window.id if window else None, self.instance)

    def get(self, window: Window) -> Session:
        """This process's session for ``window``: new after a fork; a
        throwaway one, keeping nothing, for a request that was gated in just
        before its window ended (the session then belongs to no window or
        to the next one, whose frames it must not receive).
        """
        session = self._current
        if session.window_id != window.id:
            return Session(window.id, self.instance)
        if session.pid != os.getpid():
            with self._lock:
                session = self._current
                if session.pid != os.getpid():
                    session = self._current = Session(session.window_id, self.instance)
        return session

    def keep(
        self,
        session: Session,
        frames: list[Frame],
        contexts: Contexts,
        *,
        page: t.Any = None,
    ) -> str:
        """Hold ``frames`` (one traceback) for the console, and ``page`` (its
        model) for a later view, dropping the oldest traceback beyond
        ``max_tracebacks``. Returns the page's reference.
        """
        ref = f"{session.pid}x{secrets.token_hex(16)}~{self.instance}"
        with self._lock:
            # A held frame is alive, so its id() (the page's ``frm``) is
            # unique among held frames.
            key = next(session.numbers)
            if page is not None:
                session.pages[ref] = page
                session.page_refs[key] = ref
            for frame in frames:
                session.frames[id(frame)] = frame
                session.contexts[id(frame)] = contexts
            session.tracebacks[key] = [id(f) for f in frames]
            while len(session.tracebacks) > self.max_tracebacks:
                old, dropped = session.tracebacks.popitem(last=False)
                session.pages.pop(session.page_refs.pop(old, ""), None)
                for frame_id in dropped:
                    session.frames.pop(frame_id, None)
                    session.contexts.pop(frame_id, None)
        return ref

    def console_frame(self, session: Session, make: t.Callable[[], Frame]) -> None:
        """Create the standalone console's frame (id 0) once."""
        with self._lock:
            if 0 not in session.frames:
                session.frames[0] = make()

    @property
    def traceback_count(self) -> int:
        return len(self._current.tracebacks)
