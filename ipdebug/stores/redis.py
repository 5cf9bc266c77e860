"""The enable flag in Redis, for a fleet: one ``ipdebug enable`` opens the
window on every host that uses the same Redis key.

.. code-block:: sh

    pip install 'ipdebug[redis]'
    export IPDEBUG_FLAG='redis://ipdebug:PASSWORD@redis.internal:6379/0?key=ipdebug:myapp'
    ipdebug enable --for 15m --allow ssh     # on any host, or anywhere with access
    gunicorn -c python:ipdebug.gunicorn -w 4 myapp:app   # on every host

The URL is ``redis://`` (or ``rediss://`` for TLS), ``[user:password@]host
[:port][/db]`` and the options ``key``, ``timeout`` and ``ssl_ca_certs``:
see :mod:`ipdebug.stores.redisurl` for each.

How it behaves:

- ``enable`` writes the window with ``SET key <json> PX <ms>``: the key
  expires in Redis itself when the window ends. ``disable`` deletes it.
- Each process reads the key in a background thread every 0.25 s, with a
  0.25 s timeout. Requests never wait for Redis: the middleware's check
  (every :data:`POLL_INTERVAL`) reads what the thread last fetched, so what
  a request acts on is at most about half a second old; only the first check
  in a process waits, at most ``timeout``, for the first answer.
- **It fails closed.** When the last successful read is more than a second
  old (Redis down, slow, partitioned, or the credentials refused), or the
  value is not a valid window, the window is *off* in that process, and
  ipdebug logs one warning per problem; it is on again when Redis answers.
- PIN attempts are counted in ``<key>:pinfail:<window id>`` (``INCR``
  before the PIN is checked, ``DECR`` when it was right; expiring with the
  window), shared by every process of every host: ten wrong PINs anywhere
  lock the console everywhere, however many are tried at once. When Redis cannot count,
  the console is locked.
- With a capturing window (``ipdebug enable --capture``), each captured
  error's metadata (never its frames) goes to the stream
  ``<key>:captures`` (``MAXLEN ~ 1000``), so that the errors list and
  ``ipdebug errors`` show the whole fleet.
- The audit trail is the stream ``<key>:audit`` (``XADD ... MAXLEN ~
  10000``), one entry per event from every process and the CLI; read it
  with ``redis-cli XRANGE <key>:audit - +``. While Redis is known to be down
  records go to the ``ipdebug.audit`` logger only.

The thread and the connections are per process: none exists until the first
check, and a process forked after that (gunicorn ``--preload``,
multiprocessing) starts its own instead of sharing its parent's.

**Security: whoever can write the key can open the debugger to any address
they like, on every host.** Protect it as you would a deploy key: a
password (an ACL user limited to the key, see docs/fleet.md), TLS when Redis is
not on a private network, and never a Redis that clients of the app can
reach. Whoever can read the key can try PINs offline against its scrypt
hash. The password is never shown in messages, logs or ``repr``: the store's
:attr:`~RedisFlagStore.location` replaces it with ``***``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
import typing as t
import weakref

from ..audit import logger
from ..errors import ConfigError, FlagError, FlagWriteError
from .redisurl import parse_url
from .window import CLOCK_SKEW, Window

if t.TYPE_CHECKING:
    import redis

#: Seconds between two reads of the key by the background thread.
REFRESH_INTERVAL = 0.25
#: How often the middleware's switch asks this store (reading only the
#: thread's cache, so it is cheap).
POLL_INTERVAL = 0.25
#: A window read longer ago than this (seconds) is not honoured: off.
MAX_STALE = 1.0
#: Larger values are refused (the file store's limit).
MAX_FLAG_BYTES = 64 * 1024
#: Entries kept in the audit stream (approximately: ``MAXLEN ~``).
MAX_AUDIT_RECORDS = 10_000
#: Entries kept in the fleet's stream of captured errors (``MAXLEN ~``).
MAX_CAPTURE_RECORDS = 1_000
#: How long a PIN counter lives when the store does not know its window's
#: end (a window it never read): long enough to outlive any real window.
COUNTER_FALLBACK_TTL = 86_400.0

_WINDOW_ID_RE = re.compile(r"[0-9a-f]{16,64}", re.ASCII)


class RedisFlagStore:
    """A flag kept in one Redis key, shared by a fleet. See the module
    documentation.

    .. code-block:: python

        store = RedisFlagStore("redis://:PASSWORD@10.0.0.5:6379/0?key=ipdebug:myapp")
        store.location  # 'redis://:***@10.0.0.5:6379/0?key=ipdebug:myapp'

    Nothing connects and no thread starts until the store is first used.

    :param url: ``redis://`` or ``rediss://`` URL (see :mod:`ipdebug.stores.redisurl`).
    :raises ConfigError: for a bad URL, or when the ``redis`` package is
        missing (``pip install 'ipdebug[redis]'``).
    """

    def __init__(self, url: str) -> None:
        self._target = parse_url(url)
        try:
            import redis  # noqa: F401  (fail at start-up, not at first use)
        except ImportError:
            raise ConfigError(
                "flag",
                self._target.location,
                "needs the redis package: pip install 'ipdebug[redis]'",
            ) from None
        #: The URL for messages, with the password replaced by ``***``.
        self.location = self._target.location
        self.poll_interval = POLL_INTERVAL
        self.key = self._target.key
        self.timeout = self._target.timeout
        self._reset()
        _STORES.add(self)

    def __repr__(self) -> str:
        return f"RedisFlagStore({self.location!r})"

    def _reset(self) -> None:
        """Forget everything of this process: run at construction and in a
        forked child, which must not use its parent's lock, thread or sockets.
        """
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first_read = threading.Event()
        self._waited = False
        self._client_obj: redis.Redis | None = None
        self._thread: threading.Thread | None = None
        # (monotonic time the read started, value) of the last good read.
        self._fetched: tuple[float, bytes | None] | None = None
        # What the last read found wrong; None after a good read.
        self._failure: str | None = None
        self._parsed: tuple[bytes, Window] | None = None
        self._audit_problem: str | None = None

    def _client(self) -> redis.Redis:
        if self._pid != os.getpid():
            self._reset()  # forked by something that skips at-fork hooks
        client = self._client_obj
        if client is None:
            with self._lock:
                if self._client_obj is None:
                    self._client_obj = self._connect()
                client = self._client_obj
        return client

    def _connect(self) -> redis.Redis:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        target = self._target
        tls: dict[str, t.Any] = {}
        if target.tls:
            tls = {"ssl": True, "ssl_ca_certs": target.ssl_ca_certs}
        # One attempt, short timeouts: a retry would multiply the wait.
        return redis.Redis(
            host=target.host,
            port=target.port,
            db=target.db,
            username=target.username,
            password=target.password,
            socket_timeout=target.timeout,
            socket_connect_timeout=target.timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            protocol=2,  # RESP2: no HELLO round trip, any Redis >= 5
            **tls,
        )

    def close(self) -> None:
        """Stop the reader thread and close the connections (for tests and
        shutdown). The store reconnects if used again.
        """
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.timeout * 4 + 1.0)
        client, self._client_obj = self._client_obj, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        self._stop = threading.Event()

    # Reading

    def load(self, now: float) -> Window | None:
        """The window last read from Redis, ``None`` when the key is missing.
        Never waits for Redis, except the first call in a process (at most
        ``timeout``).

        :raises FlagError: when the last good read is more than
            :data:`MAX_STALE` old, or the value is not a valid window.
        """
        self._start_reader()
        if not self._waited:
            self._waited = True
            self._first_read.wait(self.timeout)
        fetched = self._fetched
        if fetched is None or time.monotonic() - fetched[0] > MAX_STALE:
            # The same words as the reader's own timeout, so that a slow
            # Redis is logged once, whichever notices first.
            raise FlagError(
                self.location,
                self._failure
                or f"cannot be read: Redis did not answer within {self.timeout:g} s",
            )
        value = fetched[1]
        if value is None:
            return None
        parsed = self._parsed
        if parsed is not None and parsed[0] == value:
            return parsed[1]
        if len(value) > MAX_FLAG_BYTES:
            raise FlagError(self.location, f"is larger than {MAX_FLAG_BYTES} bytes")
        try:
            window = Window.from_json(value, now=now)
        except ValueError as exc:
            raise FlagError(
                self.location, f"{exc}; run 'ipdebug enable' again"
            ) from None
        # Kept so that an unchanged flag is the same object (the middleware
        # compares windows by identity to reuse its per-window state).
        self._parsed = (value, window)
        return window

    def _start_reader(self) -> None:
        if self._pid != os.getpid():
            self._reset()
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(
                    target=_read_forever,
                    args=(weakref.ref(self), self._stop),
                    name="ipdebug-redis-flag",
                    daemon=True,
                )
                thread.start()
                self._thread = thread

    def _read(self) -> None:
        """One read of the key, by the reader thread."""
        started = time.monotonic()
        try:
            value = t.cast("bytes | None", self._client().get(self.key))
        except Exception as exc:  # anything: the thread must not die
            self._failure = f"cannot be read: {describe(exc, self.timeout)}"
        else:
            with self._lock:
                fetched = self._fetched
                if fetched is None or started >= fetched[0]:
                    self._fetched = (started, value)
                self._failure = None
        self._first_read.set()

    # Writing (the CLI)

    def save(self, window: Window) -> None:
        """``SET key <json> PX <ms until window.until>``: atomic, and the key
        expires in Redis when the window ends.

        :raises FlagWriteError: when Redis cannot be written.
        """
        ms = math.ceil((window.until - time.time()) * 1000)
        if ms <= 0:
            raise FlagWriteError(self.location, "the window has already ended")
        try:
            stored = self._client().set(self.key, window.to_json(), px=ms)
        except Exception as exc:
            raise FlagWriteError(self.location, describe(exc, self.timeout)) from None
        if not stored:
            raise FlagWriteError(self.location, "Redis did not store it")

    def clear(self) -> bool:
        """``DEL key``; whether it existed.

        The window's PIN counter is left to expire with the window: a new
        window has a new id, hence a new counter starting at zero.

        :raises FlagWriteError: when Redis cannot be written.
        """
        try:
            removed = self._client().delete(self.key)
        except Exception as exc:
            raise FlagWriteError(self.location, describe(exc, self.timeout)) from None
        return bool(removed)

    # PIN failures, shared by every process of every host

    def _counter(self, window_id: str) -> str:
        if not _WINDOW_ID_RE.fullmatch(window_id):
            raise ValueError(f"not a window id: {window_id!r}")
        return f"{self.key}:pinfail:{window_id}"

    def _unreachable(self, exc: BaseException) -> str:
        """Describe a failure of a request's own Redis call; when Redis is
        down or slow, also remember it, so that the request's next calls
        (and other requests) fail at once instead of waiting again, until
        the reader thread reads the key again.
        """
        from redis import exceptions as rx

        problem = describe(exc, self.timeout)
        if isinstance(exc, rx.ConnectionError | rx.TimeoutError | OSError):
            self._failure = f"cannot be read: {problem}"
        return problem

    def _fail_fast(self) -> None:
        # While the reader finds Redis down, PIN checks do not wait for it:
        # the console is locked at once.
        problem = self._failure
        if problem is not None and self._pid == os.getpid():
            raise FlagError(self.location, problem)

    def count_pin_failure(self, window_id: str) -> int:
        """``INCR`` the window's counter, before the PIN is checked, and make
        it expire when the window ends (plus the allowed clock skew between
        hosts). ``INCR`` gives concurrent callers distinct counts.

        :raises FlagError: when Redis cannot count, or the reader thread
            found it down (the caller locks the console).
        """
        return self._add_to_counter(window_id, 1)

    def forgive_pin_failure(self, window_id: str) -> None:
        """``DECR`` the window's counter after a right PIN.

        :raises FlagError: when Redis cannot (an ACL without ``+decr``): the
            attempt then stays counted.
        """
        self._add_to_counter(window_id, -1)

    def _add_to_counter(self, window_id: str, step: int) -> int:
        counter = self._counter(window_id)
        self._fail_fast()
        parsed = self._parsed
        remaining = COUNTER_FALLBACK_TTL
        if parsed is not None and parsed[1].id == window_id:
            remaining = parsed[1].until - time.time() + CLOCK_SKEW
        try:
            pipe = self._client().pipeline(transaction=True)
            # INCR and DECR by name: redis-py's incr() sends INCRBY, which
            # the documented least-privilege ACL (docs/fleet.md) (+incr +decr) does not allow.
            pipe.execute_command("INCR" if step > 0 else "DECR", counter)  # type: ignore[no-untyped-call]
            pipe.pexpire(counter, max(1000, math.ceil(remaining * 1000)))
            count, _ = pipe.execute()
        except Exception as exc:
            raise FlagError(self.location, self._unreachable(exc)) from None
        return int(count)

    def pin_failures(self, window_id: str) -> int:
        """The window's counter (``GET``), 0 when there is none.

        :raises FlagError: when Redis cannot answer, or the reader thread
            found it down (the caller locks the console).
        """
        counter = self._counter(window_id)
        self._fail_fast()
        try:
            value = self._client().get(counter)
        except Exception as exc:
            raise FlagError(self.location, self._unreachable(exc)) from None
        return int(t.cast("bytes", value)) if value is not None else 0

    # The audit trail

    @property
    def audit_key(self) -> str:
        """The Redis stream holding the audit trail."""
        return f"{self.key}:audit"

    def append_audit(self, record: dict[str, object]) -> None:
        """``XADD <key>:audit MAXLEN ~ 10000 * record <json>``. Never raises
        for a Redis problem: the record is then only in the ``ipdebug.audit``
        log. While Redis is known to be down or slow, no write is tried, so
        that requests do not wait for it, and nothing more is logged (the
        flag's warning says it); another problem (an ACL that denies
        ``XADD``) is logged once until a write succeeds.
        """
        if self._failure is not None and self._pid == os.getpid():
            return
        line = json.dumps(record, default=str, ensure_ascii=True)
        try:
            self._client().xadd(
                self.audit_key,
                {"record": line},
                maxlen=MAX_AUDIT_RECORDS,
                approximate=True,
            )
        except Exception as exc:
            problem = self._unreachable(exc)
            if self._failure is not None:
                return  # Redis is down: the flag's own warning says so
            if problem != self._audit_problem:
                self._audit_problem = problem
                logger.warning(
                    "ipdebug cannot write its audit trail to %s: %s "
                    "(records go to the ipdebug.audit log only)",
                    self.location,
                    problem,
                )
        else:
            self._audit_problem = None

    # The fleet's captured errors

    @property
    def captures_key(self) -> str:
        """The Redis stream listing the fleet's captured errors."""
        return f"{self.key}:captures"

    def append_capture(self, window_id: str, meta: dict[str, object]) -> None:
        """``XADD <key>:captures MAXLEN ~ 1000 * window <id> record <json>``
        (from the capturing process's background thread). Skipped while
        Redis is known to be down.

        :raises Exception: the Redis client's, when the write fails.
        """
        if self._failure is not None and self._pid == os.getpid():
            return
        self._client().xadd(
            self.captures_key,
            {"window": window_id, "record": json.dumps(meta, ensure_ascii=True)},
            maxlen=MAX_CAPTURE_RECORDS,
            approximate=True,
        )

    def captures(self, window_id: str, count: int) -> list[dict[str, object]]:
        """The newest ``count`` captures of the fleet for ``window_id``,
        newest first (metadata only).

        :raises Exception: the Redis client's, when the read fails.
        """
        entries = self._client().xrevrange(self.captures_key, count=count)
        found: list[dict[str, object]] = []
        for _, fields in t.cast("list[tuple[bytes, dict[bytes, bytes]]]", entries):
            if fields.get(b"window") != window_id.encode():
                continue
            try:
                meta = json.loads(fields[b"record"])
            except (KeyError, ValueError):
                continue
            if isinstance(meta, dict) and isinstance(meta.get("id"), str):
                found.append(meta)
        return found


def describe(exc: BaseException, timeout: float) -> str:
    """What went wrong talking to Redis, in words that do not change from
    one failed attempt to the next (so it is logged once) and never contain
    the password.
    """
    from redis import exceptions as rx

    if isinstance(exc, rx.TimeoutError | TimeoutError):
        return f"Redis did not answer within {timeout:g} s"
    if isinstance(exc, rx.AuthenticationError):
        return "Redis refused the username or password in the flag URL"
    if isinstance(exc, rx.BusyLoadingError):
        return "Redis is loading its data set"
    if isinstance(exc, rx.ConnectionError | OSError):
        text = str(exc)
        if "SSL" in text or "certificate" in text:
            return "the TLS connection to Redis failed (certificate or protocol)"
        if re.search(r"Error -\d+ connecting", text):
            return "the Redis host name cannot be resolved"
        return "Redis cannot be reached (connection refused, closed or reset)"
    if isinstance(exc, rx.ResponseError):
        return f"Redis answered with an error: {str(exc)[:200]}"
    return f"Redis cannot be used ({type(exc).__name__})"


def _read_forever(ref: weakref.ref[RedisFlagStore], stop: threading.Event) -> None:
    """The reader thread: one read every :data:`REFRESH_INTERVAL` until the
    store is closed or garbage collected.
    """
    while not stop.is_set():
        store = ref()
        if store is None:
            return
        started = time.monotonic()
        store._read()
        del store
        stop.wait(max(0.0, REFRESH_INTERVAL - (time.monotonic() - started)))


#: Every store of this process, reset in a forked child.
_STORES: weakref.WeakSet[RedisFlagStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
