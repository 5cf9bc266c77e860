"""The gate on its own: a :class:`~ipdebug.gate.WindowGate` built from real
settings and a real window, asked about environs directly (the middleware
tests reach it through requests; these name each rule and each attack).
"""

from __future__ import annotations

import logging
import typing as t
from pathlib import Path

import pytest

from ipdebug.audit import LogOnce
from ipdebug.config import load_settings
from ipdebug.gate.decisions import CACHE_BYTES, CACHE_SIZE, WindowGate, make_window_gate
from ipdebug.pin import PinHash
from ipdebug.stores.window import Window

from .conftest import Records

PIN = PinHash.create("123-456-789")
PROXY = "10.0.0.1"


def window(*allow: str) -> Window:
    return Window.new(
        now=1_000.0,
        duration=300,
        allow=allow,
        reason="test",
        by="tester",
        pin_hash=PIN,
    )


def gate(
    tmp_path: Path,
    *,
    allow: list[str] | None = None,
    flag_allow: tuple[str, ...] = (),
    proxies: list[str] | None = None,
    hosts: tuple[str, ...] = ("127.0.0.1", "debug.example.com"),
    on_forwarded: t.Callable[[str], None] | None = None,
) -> WindowGate:
    settings = load_settings(
        allow=allow,
        flag=str(tmp_path / "flag.json"),
        trusted_proxies=proxies,
        trusted_hosts=list(hosts),
        environ={},
    )
    return make_window_gate(settings, window(*flag_allow), LogOnce(), on_forwarded)


def env(
    remote: object = "127.0.0.1", host: object = "127.0.0.1:8000", **headers: object
) -> dict[str, object]:
    return {"REMOTE_ADDR": remote, "HTTP_HOST": host, **headers}


@pytest.mark.parametrize(
    ("allow", "flag_allow", "remote", "client"),
    [
        pytest.param(["127.0.0.1"], (), "127.0.0.1", "127.0.0.1", id="deployment-only"),
        pytest.param(None, ("127.0.0.1",), "127.0.0.1", "127.0.0.1", id="window-only"),
        pytest.param(
            ["127.0.0.0/8"], ("127.0.0.1",), "127.0.0.1", "127.0.0.1", id="in-both"
        ),
        pytest.param(
            ["127.0.0.0/8"],
            ("127.0.0.1",),
            "127.0.0.2",
            None,
            id="deployment-not-window",
        ),
        pytest.param(
            ["127.0.0.1"],
            ("127.0.0.0/8",),
            "127.0.0.2",
            None,
            id="window-not-deployment",
        ),
        pytest.param(["10.0.0.1"], (), "10.0.0.10", None, id="prefix-of-text"),
        pytest.param(
            ["127.0.0.1"], (), "::ffff:127.0.0.1", "127.0.0.1", id="v4-mapped"
        ),
        pytest.param(["::1"], (), "::1", "::1", id="ipv6"),
        pytest.param(["0.0.0.0/0"], (), "", None, id="unix-socket-gunicorn"),
        pytest.param(["0.0.0.0/0"], (), None, None, id="proxy-protocol-local"),
        pytest.param(["0.0.0.0/0"], (), "localhost", None, id="unix-socket-waitress"),
        pytest.param(["0.0.0.0/0"], (), "0.0.0.0", None, id="unix-socket-uwsgi"),
        pytest.param(
            ["127.0.0.1"], (), "127.0.0.1, 127.0.0.1", None, id="two-addresses"
        ),
        pytest.param(["127.0.0.1"], (), ["127.0.0.1"], None, id="unhashable"),
    ],
)
def test_both_allowlists_must_admit_the_client(
    tmp_path: Path,
    allow: list[str] | None,
    flag_allow: tuple[str, ...],
    remote: object,
    client: str | None,
) -> None:
    decide = gate(tmp_path, allow=allow, flag_allow=flag_allow)
    # Asked twice: the cached answer is the computed one.
    assert decide.client(env(remote)) == client
    assert decide.client(env(remote)) == client


def test_nobody_is_admitted_when_neither_lists_anyone(
    tmp_path: Path, records: Records
) -> None:
    decide = gate(tmp_path)
    assert decide.client(env("127.0.0.1")) is None
    assert "is open but neither the deployment" in records.text()
    assert "nobody gets the debugger" in records.text()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        pytest.param("127.0.0.1:8000", True, id="address-with-port"),
        pytest.param("debug.example.com", True, id="name"),
        pytest.param("DEBUG.example.com", True, id="name-case"),
        pytest.param("evil.example", False, id="rebinding"),
        pytest.param("debug.example.com.evil.example", False, id="suffix-attack"),
        pytest.param(None, False, id="missing"),
        pytest.param("", False, id="empty"),
    ],
)
def test_the_host_must_be_trusted(
    tmp_path: Path, records: Records, host: object, allowed: bool
) -> None:
    decide = gate(tmp_path, allow=["127.0.0.1"])
    expected = "127.0.0.1" if allowed else None
    assert decide.client(env("127.0.0.1", host)) == expected
    assert decide.client(env("127.0.0.1", host)) == expected
    refused = "because Host" in records.text()
    assert refused is not allowed
    if not allowed:
        assert records.text().count("because Host") == 1  # logged once


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        pytest.param({"HTTP_X_FORWARDED_FOR": "127.0.0.1"}, "127.0.0.1", id="xff"),
        pytest.param({"HTTP_FORWARDED": "for=127.0.0.1"}, "127.0.0.1", id="forwarded"),
        pytest.param(
            {"HTTP_X_FORWARDED_FOR": "127.0.0.1, 10.0.0.1"}, "127.0.0.1", id="proxy-hop"
        ),
        pytest.param(
            {"HTTP_X_FORWARDED_FOR": "127.0.0.1, 192.0.2.9"},
            None,
            id="spoofed-leftmost",
        ),
        pytest.param({}, None, id="no-header"),
        pytest.param({"HTTP_X_FORWARDED_FOR": "10.0.0.1"}, None, id="only-proxies"),
        pytest.param({"HTTP_X_FORWARDED_FOR": "bogus"}, None, id="malformed"),
        pytest.param(
            {"HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_FORWARDED": "for=127.0.0.1"},
            None,
            id="both-headers",
        ),
        pytest.param(
            {"HTTP_X_FORWARDED_FOR": " " * 10_000 + "127.0.0.1"}, None, id="too-long"
        ),
        pytest.param({"HTTP_X_FORWARDED_FOR": ["127.0.0.1"]}, None, id="not-text"),
    ],
)
def test_forwarding_headers_are_read_from_trusted_proxies(
    tmp_path: Path, headers: dict[str, object], client: str | None
) -> None:
    decide = gate(tmp_path, allow=["127.0.0.1"], proxies=[PROXY])
    assert decide.client(env(PROXY, **headers)) == client
    assert decide.client(env(PROXY, **headers)) == client


def test_forwarding_headers_of_other_peers_are_never_read(tmp_path: Path) -> None:
    seen: list[str] = []
    decide = gate(tmp_path, allow=["127.0.0.1"], on_forwarded=seen.append)
    # No trusted proxies: the header is the client's to forge.
    assert decide.client(env("192.0.2.9", HTTP_X_FORWARDED_FOR="127.0.0.1")) is None
    assert decide.client(env("127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.9")) == (
        "127.0.0.1"
    )
    # The hint about an unlisted proxy, once per window.
    assert seen == ["192.0.2.9"]


def test_a_trusted_proxy_without_its_header_is_reported(
    tmp_path: Path, records: Records
) -> None:
    decide = gate(tmp_path, allow=["127.0.0.1"], proxies=[PROXY])
    assert decide.client(env(PROXY)) is None
    assert f"denied a request from {PROXY}, a trusted proxy" in records.text()


def test_decisions_do_not_leak_between_clients(tmp_path: Path) -> None:
    decide = gate(tmp_path, allow=["127.0.0.1"], proxies=[PROXY])
    assert decide.client(env("127.0.0.1")) == "127.0.0.1"
    assert decide.client(env("127.0.0.2")) is None
    # One proxy, two clients behind it: the headers are part of the key.
    assert decide.client(env(PROXY, HTTP_X_FORWARDED_FOR="127.0.0.1")) == "127.0.0.1"
    assert decide.client(env(PROXY, HTTP_X_FORWARDED_FOR="127.0.0.2")) is None
    assert decide.client(env(PROXY, HTTP_FORWARDED="for=127.0.0.2")) is None
    assert decide.client(env(PROXY, HTTP_X_FORWARDED_FOR="127.0.0.1")) == "127.0.0.1"
    # A cached allowed address still needs a trusted Host.
    assert decide.client(env("127.0.0.1", "evil.example")) is None


def test_the_caches_stay_bounded(tmp_path: Path) -> None:
    decide = gate(tmp_path, allow=["10.0.0.0/8"], proxies=[PROXY])
    for n in range(CACHE_SIZE + 50):
        client = f"10.1.{n // 256}.{n % 256}"
        # A new peer, a new Host (the port is ignored: trusted), a new chain.
        assert decide.client(env(client, f"127.0.0.1:{n + 1}")) == client
        assert decide.client(env(PROXY, HTTP_X_FORWARDED_FOR=client)) == client
    sizes = [
        len(getattr(decide, name))
        for name in ("_decisions", "_forwarded_decisions", "_host_decisions")
    ]
    assert all(0 < size <= CACHE_SIZE for size in sizes), sizes
    # Keys near the longest header kept: bounded in bytes before entries.
    padding = " " * 1900
    added = 0
    for n in range(1000):
        chain = f"10.2.{n // 256}.{n % 256},{padding}10.0.0.1"
        decide.client(env(PROXY, HTTP_X_FORWARDED_FOR=chain))
        added += len(chain)
        assert decide.cached_bytes <= CACHE_BYTES
    assert added > CACHE_BYTES
    assert len(decide._forwarded_decisions) < 1000
    # The decisions are still right after the caches were emptied.
    assert decide.client(env(PROXY, HTTP_X_FORWARDED_FOR="10.1.0.7")) == "10.1.0.7"
    assert decide.client(env(PROXY, HTTP_X_FORWARDED_FOR="192.0.2.1")) is None


def test_the_gate_keeps_its_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ipdebug")
    decide = gate(tmp_path, flag_allow=("127.0.0.1",))
    assert decide.window.allow == ("127.0.0.1",)
    assert not caplog.records  # a window that lists someone is not reported
