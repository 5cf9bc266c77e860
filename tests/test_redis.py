"""The flag in a real Redis (Debian's redis-server on a loopback port): the
CLI, expiry in Redis itself, two "hosts" sharing a window and a PIN lockout,
failing closed when Redis stops or stalls, bad values, hidden passwords, fork
safety, and gunicorn workers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import types
import typing as t
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from webtest import TestApp

import ipdebug
from ipdebug import IPDebugMiddleware
from ipdebug.cli import main
from ipdebug.errors import ConfigError, FlagError, FlagWriteError
from ipdebug.pin import PinHash
from ipdebug.stores import open_store
from ipdebug.stores.redis import MAX_FLAG_BYTES, RedisFlagStore
from ipdebug.stores.redisurl import parse_url, redact

from .conftest import (
    OPERATOR,
    STRANGER,
    Boom,
    Records,
    client,
    debugger_get,
    is_gated,
    plain_app,
    seconds_until,
    secret_and_frame,
    unlock,
)
from .redis_server import RedisServer, redis_server
from .servers import ROOT, gunicorn, spread, wait_until

pytestmark = pytest.mark.server

PASSWORD = "hunter2-s3cr3t"
WRONG_PIN = "000-000-000"

Make = Callable[..., IPDebugMiddleware]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as running:
        yield running


@pytest.fixture
def make(clean_env: None) -> Iterator[Make]:
    """Middlewares on a Redis flag, their reader threads stopped at the end."""
    made: list[IPDebugMiddleware] = []

    def make(url: str, **options: object) -> IPDebugMiddleware:
        options.setdefault("allow", [OPERATOR])
        options.setdefault("relay", False)
        middleware = IPDebugMiddleware(plain_app, flag=url, environ={}, **options)  # type: ignore[arg-type]
        made.append(middleware)
        return middleware

    yield make
    for middleware in made:
        store = middleware.store
        assert isinstance(store, RedisFlagStore)
        store.close()


def probe(app: TestApp) -> bool:
    """Whether the client is gated in, with a request that touches nothing
    but the switch (a debugger resource; denied, it reaches the app).
    """
    response = app.get(
        "/", params={"__debugger__": "yes", "cmd": "resource", "f": "style.css"}
    )
    return response.content_type == "text/css"


def enable(url: str, duration: str = "5m", **options: object) -> ipdebug.Enabled:
    options.setdefault("allow", [OPERATOR])
    return ipdebug.enable(duration, flag=url, environ={}, **options)  # type: ignore[arg-type]


def cli(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, object]]:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def warnings_in(records: Records) -> list[str]:
    return [r.getMessage() for r in records.records if r.levelno >= logging.WARNING]


# The URL


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("redis://127.0.0.1:6379/0?key=", "bad key", id="empty-key"),
        pytest.param("redis://127.0.0.1/0?key=a%20b", "bad key", id="space-in-key"),
        pytest.param("redis://127.0.0.1/0?key=a*", "bad key", id="glob-in-key"),
        pytest.param("redis://127.0.0.1/x?key=k", "bad database", id="db-word"),
        pytest.param("redis://127.0.0.1/-1?key=k", "bad database", id="db-negative"),
        pytest.param("redis://127.0.0.1/0/1?key=k", "bad database", id="db-path"),
        pytest.param(
            "redis://127.0.0.1/0?key=k&db=2", "unknown option 'db'", id="db-option"
        ),
        pytest.param(
            "redis://127.0.0.1/0?key=k&socket_timeout=9",
            "unknown option 'socket_timeout'",
            id="redis-py-option",
        ),
        pytest.param(
            "redis://127.0.0.1/0?key=a&key=b", "option 'key' twice", id="two-keys"
        ),
        pytest.param("redis://127.0.0.1/0?key", "malformed query", id="no-equals"),
        pytest.param("redis://127.0.0.1/0?timeout=5", "bad timeout", id="long-timeout"),
        pytest.param("redis://127.0.0.1/0?timeout=x", "bad timeout", id="timeout-word"),
        pytest.param(
            "redis://127.0.0.1/0?ssl_ca_certs=/ca", "not a rediss", id="ca-no-tls"
        ),
        pytest.param("redis://127.0.0.1:99999/0", "invalid port", id="port-range"),
        pytest.param("redis://127.0.0.1:port/0", "invalid port", id="port-word"),
        pytest.param("redis:///0?key=k", "names no host", id="no-host"),
        pytest.param(f"redis://:{PASSWORD}@/0", "names no host", id="password-no-host"),
        pytest.param(
            f"redis://:{PASSWORD}#x@127.0.0.1/0", "'#'", id="unencoded-hash-in-password"
        ),
        pytest.param(
            f"redis://:{PASSWORD}/x@127.0.0.1/0", "percent-encode", id="unencoded-slash"
        ),
        pytest.param(
            f"redis://u:{PASSWORD}@127.0.0.1/0?key=k&x=1",
            "unknown option 'x'",
            id="user",
        ),
    ],
)
def test_a_bad_url_is_a_config_error_naming_it_without_the_password(
    url: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RedisFlagStore(url)
    message = str(caught.value)
    assert caught.value.setting == "flag"
    assert problem in message
    assert redact(url) in message
    assert PASSWORD not in message and PASSWORD not in repr(caught.value.value)
    # The middleware refuses it at construction, as every bad setting.
    with pytest.raises(ValueError, match=re.escape(problem)):
        IPDebugMiddleware(plain_app, flag=url, environ={})


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("redis://10.0.0.5", "redis://10.0.0.5:6379/0?key=ipdebug:flag"),
        ("redis://h:7000/3?key=ipdebug:{app}", "redis://h:7000/3?key=ipdebug:{app}"),
        (f"redis://:{PASSWORD}@h/0?key=k", "redis://:***@h:6379/0?key=k"),
        (f"redis://ops:{PASSWORD}@h/0?key=k", "redis://ops:***@h:6379/0?key=k"),
        ("redis://ops@h/0?key=k", "redis://ops@h:6379/0?key=k"),
        (
            f"rediss://ops:{PASSWORD}@h:6380/1?key=k&timeout=0.1&ssl_ca_certs=/ca.pem",
            "rediss://ops:***@h:6380/1?key=k",
        ),
        ("redis://[::1]:7/0", "redis://[::1]:7/0?key=ipdebug:flag"),
    ],
)
def test_location_is_the_url_without_the_password(url: str, location: str) -> None:
    store = RedisFlagStore(url)
    assert store.location == location
    assert repr(store) == f"RedisFlagStore({location!r})"
    assert PASSWORD not in repr(parse_url(url))
    assert open_store(url).location == location


def test_password_with_reserved_characters_is_percent_decoded() -> None:
    target = parse_url("redis://us%40er:p%40ss%2Fw%3Ard@h/0")
    assert (target.username, target.password) == ("us@er", "p@ss/w:rd")


def test_without_the_redis_package_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigError, match=re.escape("pip install 'ipdebug[redis]'")):
        RedisFlagStore(f"redis://:{PASSWORD}@h/0")


# The CLI and expiry in Redis


def test_cli_enable_status_disable_round_trip(
    server: RedisServer, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    url = server.url("ipdebug:cli")
    code, opened = cli(
        capsys,
        "enable",
        "--for",
        "2m",
        "--allow",
        "127.0.0.1",
        "--reason",
        "INC-9",
        "--flag",
        url,
    )
    assert code == 0
    assert re.fullmatch(r"\d{3}-\d{3}-\d{3}", str(opened["pin"]))
    assert opened["allow"] == ["127.0.0.1"] and opened["reason"] == "INC-9"
    redis = server.client()
    # The window expires in Redis itself.
    assert 115_000 < redis.pttl("ipdebug:cli") <= 120_000
    stored = json.loads(redis.get("ipdebug:cli"))
    assert stored["id"].startswith(str(opened["window"]))
    assert str(opened["pin"]) not in redis.get("ipdebug:cli")

    code, current = cli(capsys, "status", "--flag", url)
    assert code == 0
    assert current["enabled"] is True and current["problem"] is None
    assert current["allow"] == ["127.0.0.1"] and current["reason"] == "INC-9"
    assert 110 < float(current["remaining_s"]) <= 120  # type: ignore[arg-type]
    assert current["until"] == opened["until"]

    assert cli(capsys, "disable", "--flag", url) == (
        0,
        {"enabled": False, "was_enabled": True},
    )
    assert redis.exists("ipdebug:cli") == 0
    code, current = cli(capsys, "status", "--flag", url)
    assert code == 0 and current["enabled"] is False and current["problem"] is None
    assert cli(capsys, "disable", "--flag", url)[1]["was_enabled"] is False

    # The fleet's audit trail is one capped stream, without the PIN.
    entries = redis.xrange("ipdebug:cli:audit")
    events = [json.loads(fields["record"])["event"] for _, fields in entries]
    assert events == ["window.enabled", "window.disabled"]
    assert str(opened["pin"]) not in json.dumps(entries)


def test_the_window_expires_in_redis_itself(server: RedisServer, make: Make) -> None:
    url = server.url("ipdebug:short")
    app = client(make(url))
    enable(url, "1s")
    assert 0 < server.client().pttl("ipdebug:short") <= 1000
    wait_until(lambda: server.client().exists("ipdebug:short") == 0, timeout=2)
    assert not is_gated(app)


# The middleware


def test_middleware_follows_enable_and_disable_and_the_pin_unlocks(
    server: RedisServer, make: Make
) -> None:
    url = server.url()
    middleware = make(url)
    app = client(middleware)
    assert not is_gated(app)
    opened = enable(url)
    # When the last request that saw no window started (see seconds_until).
    assert seconds_until(app, gated=True) <= 1.0  # 0.25 s between checks + one read

    secret, frame = secret_and_frame(app.get("/fail", expect_errors=True).text)
    assert unlock(app, secret, WRONG_PIN) == {"auth": False, "exhausted": False}
    assert unlock(app, secret, opened.pin) == {"auth": True, "exhausted": False}
    output = debugger_get(app, secret, cmd="6 * 7", frm=frame)
    assert output.status_int == 200 and "42" in output.text
    # Others stay out.
    with pytest.raises(Boom):
        client(middleware, addr=STRANGER).get("/fail")

    ipdebug.disable(url, environ={})
    assert seconds_until(app, gated=False) <= 1.0


def test_two_hosts_share_the_window_and_the_pin_lockout(
    server: RedisServer, make: Make
) -> None:
    url = server.url("ipdebug:fleet")
    host_a, host_b = client(make(url)), client(make(url))
    opened = enable(url)
    wait_until(lambda: is_gated(host_a) and is_gated(host_b), timeout=3)
    secret_a, _ = secret_and_frame(host_a.get("/fail", expect_errors=True).text)
    secret_b, _ = secret_and_frame(host_b.get("/fail", expect_errors=True).text)
    assert unlock(host_b, secret_b, opened.pin)["auth"] is True

    answers = [unlock(host_a, secret_a, WRONG_PIN) for _ in range(10)]
    assert answers[-1] == {"auth": False, "exhausted": True}
    assert not any(a["exhausted"] for a in answers[:-1])
    # Host B is locked too, even with the right PIN.
    assert unlock(host_b, secret_b, opened.pin) == {"auth": False, "exhausted": True}
    redis = server.client()
    counter = f"ipdebug:fleet:pinfail:{opened.window_id}"
    assert redis.get(counter) == "10"
    # ... until the window ends (plus the allowed clock skew), in Redis.
    assert 300_000 < redis.pttl(counter) <= 361_000

    # A new window has a new counter.
    fresh = enable(url)
    assert redis.exists(f"ipdebug:fleet:pinfail:{fresh.window_id}") == 0


def test_concurrent_guesses_on_two_hosts_get_at_most_ten_checked(
    server: RedisServer, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.url("ipdebug:race")
    hosts = [make(url), make(url)]
    opened = enable(url)
    wait_until(lambda: all(is_gated(client(h)) for h in hosts), timeout=3)
    secrets = [
        secret_and_frame(client(h).get("/fail", expect_errors=True).text)[0]
        for h in hosts
    ]
    checked: list[str] = []
    real_verify = PinHash.verify

    def counting_verify(self: PinHash, pin: str) -> bool:
        checked.append(pin)
        return real_verify(self, pin)

    monkeypatch.setattr(PinHash, "verify", counting_verify)
    start = threading.Barrier(32)

    def guess(n: int) -> dict[str, bool]:
        app = client(hosts[n % 2])
        start.wait()
        return unlock(app, secrets[n % 2], f"{n:03d}-000-000")

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(guess, range(32)))
    assert len(checked) <= 10
    assert not any(a["auth"] for a in answers)
    # Unchecked attempts are not kept as failures.
    counter = f"ipdebug:race:pinfail:{opened.window_id}"
    assert server.client().get(counter) == str(len(checked))


T = t.TypeVar("T")

#: Socket calls that can wait for Redis (each at most the URL's timeout).
_WAITS = frozenset({"connect", "connect_ex", "recv", "recv_into", "sendall", "send"})


def redis_waits(action: t.Callable[[], T]) -> tuple[T, int]:
    """Run ``action`` in this thread; return its result and how many socket
    calls it made that could wait for Redis. Load on the machine changes
    how long a request takes, not this count: a request that never waits
    for Redis makes none, whatever the machine is doing.
    """
    waits = 0

    def profile(frame: types.FrameType, event: str, arg: object) -> None:
        nonlocal waits
        if (
            event == "c_call"
            and isinstance(getattr(arg, "__self__", None), socket.socket)
            and getattr(arg, "__name__", "") in _WAITS
        ):
            waits += 1

    sys.setprofile(profile)
    try:
        result = action()
    finally:
        sys.setprofile(None)
    return result, waits


@pytest.mark.parametrize("fault", ["stop", "pause"])
def test_fails_closed_within_a_second_or_two_without_slowing_requests(
    server: RedisServer, make: Make, records: Records, fault: str
) -> None:
    """Requests never wait for Redis (the switch reads the store's cache),
    a debugger page waits a bounded number of times (each at most the 0.25 s
    timeout) until the store knows Redis is down, and the window is off
    within about two seconds (bound here at five: a busy machine delays the
    background reader, never the property that it fails closed).
    """
    url = server.url("ipdebug:outage")
    app = client(make(url))
    enable(url)
    wait_until(lambda: is_gated(app), timeout=3)
    # The count sees Redis traffic: a page writes its audit record there.
    assert redis_waits(lambda: is_gated(app))[1] >= 1
    assert redis_waits(lambda: probe(app))[1] == 0
    records.records.clear()

    started = time.monotonic()
    server.stop() if fault == "stop" else server.pause()
    plain_waits = 0
    page_waits: list[int] = []
    denied_after = None
    while time.monotonic() - started < min((denied_after or 10) + 0.5, 15):
        now_gated, waits = redis_waits(lambda: probe(app))  # only the switch
        plain_waits += waits
        if denied_after is None and not now_gated:
            denied_after = time.monotonic() - started
        assert denied_after is None or not now_gated, "gated in while Redis is down"
        # A debugger page: also a PIN check and an audit record.
        page_waits.append(redis_waits(lambda: is_gated(app))[1])
    assert denied_after is not None and denied_after <= 5.0  # nominally 1 s + a check
    assert plain_waits == 0, "a request waited for Redis"
    # Only the first pages wait, and only a few times each; once the store
    # knows Redis is down, a page does not wait at all.
    assert max(page_waits) <= 8, page_waits
    assert page_waits[-1] == 0, page_waits
    problems = warnings_in(records)
    # The PIN guard logs its own "console locked" once; not this store's.
    pin_problems = [p for p in problems if "PIN failure count" in p]
    assert len(pin_problems) <= 1, pin_problems
    problems = [p for p in problems if "PIN failure count" not in p]
    assert len(problems) == 1, problems
    assert problems[0].startswith("ipdebug is off: flag redis://127.0.0.1:")
    assert (
        "did not answer within 0.25 s" if fault == "pause" else "cannot be reached"
    ) in problems[0]

    if fault == "stop":
        server.start()  # empty: Redis keeps no data here
        enable(url)
    else:
        server.resume()
    wait_until(lambda: is_gated(app), timeout=3)


@pytest.mark.parametrize("fault", ["stop", "pause"])
def test_a_new_process_waits_at_most_the_timeout_for_redis(
    server: RedisServer, make: Make, fault: str
) -> None:
    url = server.url()
    enable(url)
    server.stop() if fault == "stop" else server.pause()
    app = client(make(url))
    # The first request waits for one attempt (bounded by the timeout), not
    # more: counted, not timed, so a busy machine cannot fail it.
    was_gated, waits = redis_waits(lambda: is_gated(app))
    assert not was_gated and waits <= 2  # connect, then at most one reply
    store = make(url).store
    with pytest.raises(FlagError, match="cannot be read"):
        store.load(time.time())
    # Once the reader found Redis down, the console is locked at once.
    wait_until(lambda: store._failure is not None, timeout=5)  # type: ignore[attr-defined]
    for check in (
        store.pin_failures,
        store.count_pin_failure,
        store.forgive_pin_failure,
    ):

        def locked(check: t.Callable[[str], object] = check) -> None:
            with pytest.raises(FlagError):
                check("0" * 32)

        assert redis_waits(locked)[1] == 0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("{not json", "is not valid JSON", id="not-json"),
        pytest.param('{"ipdebug": 99}', "has format 99", id="other-format"),
        pytest.param("x" * (MAX_FLAG_BYTES + 1), "larger than", id="huge"),
        pytest.param(None, "WRONGTYPE", id="a-list"),
    ],
)
def test_a_bad_value_is_off_and_logged_once(
    server: RedisServer,
    make: Make,
    records: Records,
    capsys: pytest.CaptureFixture[str],
    value: str | None,
    problem: str,
) -> None:
    url = server.url("ipdebug:bad")
    redis = server.client()
    if value is None:
        redis.rpush("ipdebug:bad", "x")
    else:
        redis.set("ipdebug:bad", value)
    app = client(make(url))
    for _ in range(3):
        assert not is_gated(app)
    problems = warnings_in(records)
    assert len(problems) == 1 and problem in problems[0], problems
    code, current = cli(capsys, "status", "--flag", url)
    assert code == 1 and current["enabled"] is False
    assert problem in str(current["problem"])


# Secrets


def test_the_password_never_reaches_logs_or_errors(
    tmp_path: Path,
    make: Make,
    records: Records,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with redis_server(tmp_path, password=PASSWORD) as secured:
        url = secured.url()
        middleware = make(url)
        enable(url)
        wait_until(lambda: is_gated(client(middleware)), timeout=3)
        assert PASSWORD not in repr(middleware.store) + middleware.store.location

        wrong = secured.url(password="not-" + PASSWORD)
        with pytest.raises(FlagError) as caught:
            make(wrong).store.load(time.time())
        assert "refused the username or password" in str(caught.value)
        assert not is_gated(client(make(wrong)))
        with pytest.raises(FlagWriteError) as write_error:
            enable(wrong)
        assert main(["disable", "--flag", wrong]) == 1
        stderr = capsys.readouterr().err
        assert "refused the username or password" in stderr
        with pytest.raises(ConfigError) as config_error:
            RedisFlagStore(url + "&bad=1")

        secured.pause()
        wait_until(lambda: not is_gated(client(middleware)), timeout=3)
        secured.resume()

        texts = [
            str(caught.value),
            str(write_error.value),
            str(config_error.value),
            stderr,
            records.text(),
        ]
        assert "did not answer within" in records.text()
        for text in texts:
            assert PASSWORD not in text


def test_cli_output_never_shows_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    with redis_server(tmp_path, password=PASSWORD) as secured:
        url = secured.url()
        outputs = []
        for args in (["enable", "--allow", "127.0.0.1"], ["status"], ["disable"]):
            for as_json in ([], ["--json"]):
                assert main([*args, "--flag", url, *as_json]) == 0
                outputs.append(capsys.readouterr().out)
        for output in outputs:
            assert PASSWORD not in output


def test_least_privilege_acl_users_work(tmp_path: Path, make: Make) -> None:
    """The ACL rules the README recommends: the app may only read the flag
    and count PINs and audit; the operator may write it.
    """
    key = "ipdebug:acl"
    rules = (
        (
            "app",
            "app-pw",
            f"%R~{key} ~{key}:* +get +incr +decr +pexpire +multi +exec +xadd +xrevrange",
        ),
        ("operator", "op-pw", f"~{key} ~{key}:* +get +set +del +xadd +xrevrange"),
    )
    extra: tuple[str, ...] = ()
    for user, password, rule in rules:
        extra += ("--user", user, "on", f">{password}", "resetkeys", *rule.split())
    with redis_server(tmp_path, extra=extra) as acl:
        app_url = acl.url(key, user="app", password="app-pw")
        operator_url = acl.url(key, user="operator", password="op-pw")
        middleware = make(app_url)
        app = client(middleware)
        with pytest.raises(FlagWriteError, match="no permissions to run the 'set'"):
            enable(app_url)
        opened = enable(operator_url)
        wait_until(lambda: is_gated(app), timeout=3)
        secret, _ = secret_and_frame(app.get("/fail", expect_errors=True).text)
        assert unlock(app, secret, WRONG_PIN)["auth"] is False
        assert unlock(app, secret, opened.pin)["auth"] is True
        # The right PIN's count was taken back (+decr), the wrong one stays.
        assert acl.client().get(f"{key}:pinfail:{opened.window_id}") == "1"
        events = [
            json.loads(fields["record"])["event"]
            for _, fields in acl.client().xrange(f"{key}:audit")
        ]
        assert {"window.enabled", "window.opened", "pin.failure", "pin.success"} <= set(
            events
        )
        # Captures (enable --capture): the app writes and both read the list.
        middleware.store.append_capture(opened.window_id, {"id": "1x0"})  # type: ignore[attr-defined]
        for url in (app_url, operator_url):
            store = RedisFlagStore(url)
            assert store.captures(opened.window_id, 10) == [{"id": "1x0"}]
            store.close()
        assert ipdebug.disable(operator_url, environ={}) is True


def test_rediss_checks_the_server_certificate(tmp_path: Path, make: Make) -> None:
    with redis_server(tmp_path, tls=True) as secured:
        url = secured.url("ipdebug:tls")
        assert url.startswith("rediss://") and "ssl_ca_certs=" in url
        enable(url)
        assert secured.client().get("ipdebug:tls") is not None
        app = client(make(url))
        wait_until(lambda: is_gated(app), timeout=3)
        # Without the test CA, the server's certificate is not trusted: off.
        untrusted = url.split("&ssl_ca_certs=")[0]
        with pytest.raises(FlagError, match="TLS connection to Redis failed"):
            make(untrusted).store.load(time.time())
        with pytest.raises(FlagWriteError, match="TLS connection to Redis failed"):
            enable(untrusted)
        # Plain text to the TLS port gets nothing either.
        plain = untrusted.replace("rediss://", "redis://")
        with pytest.raises(FlagError):
            make(plain).store.load(time.time())


# Processes


def test_a_forked_child_uses_its_own_thread_and_connection(server: RedisServer) -> None:
    url = server.url("ipdebug:fork")
    opened = enable(url)
    store = RedisFlagStore(url)
    try:
        wait_until(lambda: store.load(time.time()) is not None, timeout=2)
        parent_thread = store._thread
        assert parent_thread is not None and store._client_obj is not None
        with warnings.catch_warnings():  # 3.12+: fork() of a threaded process
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                fresh = store._thread is None and store._client_obj is None
                window = None
                for _ in range(40):
                    window = store.load(time.time())
                    if window is not None:
                        break
                    time.sleep(0.05)
                ok = window is not None and window.id == opened.window_id
                ok = ok and store.count_pin_failure(opened.window_id) == 1
                ok = ok and store._thread is not parent_thread
                code = 0 if fresh and ok else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's connection was left alone by the child.
        assert store.pin_failures(opened.window_id) == 1
        time.sleep(2 * 0.25)
        window = store.load(time.time())
        assert window is not None and window.id == opened.window_id
    finally:
        store.close()


def test_gunicorn_workers_follow_one_enable(
    tmp_path: Path, server: RedisServer
) -> None:
    """Four workers forked from a master that built the middleware and read
    the flag (``--preload``, so the master has a reader thread and a Redis
    connection at fork time): each worker reads on its own.
    """
    url = server.url("ipdebug:gunicorn")
    with gunicorn(
        tmp_path,
        *("-w", "4", "--preload"),
        app="tests.redis_server:wrapped_app()",
        env={"IPDEBUG_FLAG": url, "IPDEBUG_TEST_POLL": "1"},
    ) as running:
        assert not any(
            "Werkzeug Debugger" in r.text
            for r in spread(running.port, ["/fail"] * 4, {})
        )
        command = [sys.executable, "-m", "ipdebug"]
        environ = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "IPDEBUG_FLAG": url,
        }
        enabled = subprocess.run(
            [*command, "enable", "--allow", "127.0.0.1", "--json"],
            env=environ,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert json.loads(enabled.stdout)["flag"] == url

        gated_pids: set[int] = set()

        def every_worker_gated() -> bool:
            for reply in spread(running.port, ["/fail"] * 4, {}):
                found = re.search(r'SECRET = "(\d+)x', reply.text)
                if found:
                    gated_pids.add(int(found.group(1)))
            return len(gated_pids) >= 4

        # Nominally within about 1.5 s; bound generously for a busy machine.
        wait_until(every_worker_gated, timeout=10)
        assert gated_pids == running.worker_pids()

        subprocess.run(
            [*command, "disable"],
            env=environ,
            capture_output=True,
            check=True,
            timeout=30,
        )
        wait_until(
            lambda: (
                not any(
                    "Werkzeug Debugger" in r.text
                    for r in spread(running.port, ["/fail"] * 4, {})
                )
            ),
            timeout=2.5,
        )
        log = running.log_text()
        assert "cannot be read" not in log and "ipdebug is off" not in log, log
