from __future__ import annotations

import ipaddress

import pytest

from ipdebug.errors import ConfigError
from ipdebug.gate.address import (
    MAX_FORWARDED_LENGTH,
    Networks,
    forwarded_for,
    parse_address,
    parse_hop,
    resolve_client,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("203.0.113.7", "203.0.113.7", id="ipv4"),
        pytest.param("2001:db8::1", "2001:db8::1", id="ipv6"),
        pytest.param("2001:DB8::1", "2001:db8::1", id="ipv6-upper"),
        pytest.param("::ffff:203.0.113.7", "203.0.113.7", id="ipv4-mapped"),
        pytest.param("::FFFF:cb00:7107", "203.0.113.7", id="ipv4-mapped-hex"),
        pytest.param("fe80::1%eth0", "fe80::1", id="zone-dropped"),
        pytest.param("fe80::1%", None, id="empty-zone"),
        pytest.param("fe80::1% ", None, id="blank-zone"),
        pytest.param("fe80::1%:", None, id="colon-zone"),
        pytest.param("fe80::1%" + "e" * 57, "fe80::1", id="long-zone"),
        pytest.param("10.0.0.1%eth0", None, id="zone-on-ipv4"),
        pytest.param("::1", "::1", id="ipv6-loopback"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
        pytest.param(b"127.0.0.1", None, id="bytes"),
        pytest.param("localhost", None, id="localhost"),
        pytest.param("0.0.0.0", None, id="unspecified-v4-uwsgi-unix"),
        pytest.param("::", None, id="unspecified-v6"),
        pytest.param("::ffff:0.0.0.0", None, id="mapped-unspecified"),
        pytest.param("127.0.0.1, 10.0.0.1", None, id="comma-list"),
        pytest.param(" 127.0.0.1", None, id="leading-space"),
        pytest.param("127.1", None, id="short-form"),
        pytest.param("0127.0.0.1", None, id="octal-looking"),
        pytest.param("10.0.0.300", None, id="octet-out-of-range"),
        pytest.param("/run/app.sock", None, id="unix-path"),
        pytest.param("1" * 100, None, id="huge"),
    ],
)
def test_parse_address(value: object, expected: str | None) -> None:
    addr = parse_address(value)
    assert (None if addr is None else str(addr)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("203.0.113.7", "203.0.113.7", id="bare"),
        pytest.param(" 203.0.113.7 ", "203.0.113.7", id="spaces"),
        pytest.param("203.0.113.7:4711", "203.0.113.7", id="ipv4-port"),
        pytest.param("[2001:db8::17]", "2001:db8::17", id="bracketed-v6"),
        pytest.param("[2001:db8::17]:4711", "2001:db8::17", id="bracketed-v6-port"),
        pytest.param("2001:db8::17", "2001:db8::17", id="bare-v6"),
        pytest.param("[203.0.113.7]", None, id="bracketed-v4"),
        pytest.param("[2001:db8::17", None, id="unclosed-bracket"),
        pytest.param("203.0.113.7:", None, id="empty-port"),
        pytest.param("203.0.113.7:http", None, id="named-port"),
        pytest.param("203.0.113.7:123456", None, id="long-port"),
        pytest.param("203.0.113.7:99999", None, id="port-out-of-range"),
        pytest.param("203.0.113.7\x0b", None, id="vertical-tab-is-not-http-space"),
        pytest.param("\xa0203.0.113.7", None, id="nbsp-is-not-http-space"),
        pytest.param("unknown", None, id="rfc7239-unknown"),
        pytest.param("_hidden", None, id="rfc7239-obfuscated"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_hop(value: str, expected: str | None) -> None:
    addr = parse_hop(value)
    assert (None if addr is None else str(addr)) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("for=192.0.2.60", ["192.0.2.60"], id="one"),
        pytest.param(
            "For=192.0.2.60;proto=http;by=203.0.113.43", ["192.0.2.60"], id="params"
        ),
        pytest.param(
            'for="[2001:db8:cafe::17]:4711"',
            ["[2001:db8:cafe::17]:4711"],
            id="quoted-v6",
        ),
        pytest.param(
            "for=192.0.2.43, for=198.51.100.17",
            ["192.0.2.43", "198.51.100.17"],
            id="two-hops",
        ),
        pytest.param(
            'for="192.0.2.43, 10.0.0.1"', ["192.0.2.43, 10.0.0.1"], id="comma-in-quotes"
        ),
        pytest.param('for="192.0.2.43', None, id="unclosed-quote"),
        pytest.param("proto=https", None, id="hop-without-for"),
        pytest.param("for=1.2.3.4;for=5.6.7.8", None, id="for-twice"),
        pytest.param("for", None, id="no-equals"),
        pytest.param("for=", None, id="empty-value"),
        pytest.param('for=a"b', None, id="stray-quote"),
        pytest.param('for="a\\"b"', None, id="quoted-pair-refused"),
        pytest.param('for="a\\b"', None, id="backslash-refused"),
        pytest.param(
            'for="[2001:db8::1]:80";by="a;b,c", for=10.0.0.1',
            ["[2001:db8::1]:80", "10.0.0.1"],
            id="separators-in-quotes",
        ),
        pytest.param("for=10.0.0.1,", None, id="empty-last-element"),
        pytest.param("for=10.0.0.1;", None, id="empty-last-pair"),
        pytest.param("x y=1;for=10.0.0.1", None, id="name-not-a-token"),
        pytest.param('for = "10.0.0.1" ; proto=http', ["10.0.0.1"], id="spaces"),
        pytest.param('for="10.0.0.1"x', None, id="text-after-quote"),
    ],
)
def test_forwarded_for(header: str, expected: list[str] | None) -> None:
    assert forwarded_for(header) == expected


def test_networks_membership() -> None:
    nets = Networks(
        ["10.8.0.0/16", "203.0.113.7", "2001:db8::/32", "::ffff:192.0.2.0/120"],
        setting="allow",
    )
    inside = [
        "10.8.255.1",
        "203.0.113.7",
        "2001:db8:ffff::1",
        "192.0.2.9",
        "::ffff:10.8.0.1",
    ]
    outside = ["10.9.0.1", "203.0.113.70", "203.0.113.8", "2001:db9::1", "192.0.3.1"]
    for text in inside:
        assert parse_address(text) in nets, text
    for text in outside:
        assert parse_address(text) not in nets, text
    assert "10.8.0.1" not in nets  # a string is not an address
    assert nets.entries == (
        "10.8.0.0/16",
        "203.0.113.7",
        "2001:db8::/32",
        "192.0.2.0/24",
    )


def test_networks_match_like_ipaddress_on_many_entries() -> None:
    entries = [f"10.{i // 256}.{i % 256}.0/24" for i in range(2000)] + ["172.16.0.0/12"]
    nets = Networks(entries, setting="allow")
    reference = [ipaddress.ip_network(e) for e in entries]
    for text in [
        "10.0.5.9",
        "10.7.207.1",
        "10.7.208.1",
        "172.31.255.255",
        "172.32.0.0",
    ]:
        addr = ipaddress.ip_address(text)
        assert (addr in nets) == any(addr in net for net in reference), text


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param(
            "10.0.0.300",
            "allow: '10.0.0.300' is not an IP address or network",
            id="octet",
        ),
        pytest.param("10.0.0.1/33", "is not an IP address or network", id="prefix"),
        pytest.param(
            "10.0.0.1/24",
            "has host bits set; use the network address (10.0.0.0/24)",
            id="host-bits",
        ),
        pytest.param("fe80::1%eth0", "has a zone id", id="zone"),
        pytest.param("example.com", "is not an IP address or network", id="name"),
        pytest.param("", "is not an IP address or network", id="empty"),
    ],
)
def test_networks_reject_bad_entries(entry: str, message: str) -> None:
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        Networks(["10.0.0.0/8", entry], setting="allow")


PROXIES = Networks(["127.0.0.1", "10.0.0.0/8"], setting="trusted_proxies")


@pytest.mark.parametrize(
    ("environ", "proxies", "expected"),
    [
        pytest.param({"REMOTE_ADDR": "203.0.113.7"}, None, "203.0.113.7", id="direct"),
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"},
            None,
            "127.0.0.1",
            id="xff-ignored-without-trusted-proxies",
        ),
        pytest.param(
            {"REMOTE_ADDR": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"},
            PROXIES,
            "198.51.100.1",
            id="xff-ignored-from-untrusted-peer",
        ),
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"},
            PROXIES,
            "203.0.113.7",
            id="one-proxy",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_X_FORWARDED_FOR": "203.0.113.7, 10.1.1.1",
            },
            PROXIES,
            "203.0.113.7",
            id="two-proxies",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_X_FORWARDED_FOR": "127.0.0.1, 198.51.100.9",
            },
            PROXIES,
            "198.51.100.9",
            id="spoofed-leftmost-ignored",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_X_FORWARDED_FOR": "garbage, 198.51.100.9",
            },
            PROXIES,
            "198.51.100.9",
            id="client-claims-left-of-client-never-read",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_X_FORWARDED_FOR": "198.51.100.9, garbage",
            },
            PROXIES,
            None,
            id="malformed-hop",
        ),
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.9,"},
            PROXIES,
            None,
            id="empty-hop",
        ),
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.0.0.5, 127.0.0.1"},
            PROXIES,
            None,
            id="only-proxies",
        ),
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1"}, PROXIES, None, id="proxy-sent-no-header"
        ),
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": ""},
            PROXIES,
            None,
            id="empty-header",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_X_FORWARDED_FOR": "203.0.113.7",
                "HTTP_FORWARDED": "for=203.0.113.7",
            },
            PROXIES,
            None,
            id="both-headers",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_FORWARDED": 'for="[2001:db8::7]:443";proto=https',
            },
            PROXIES,
            "2001:db8::7",
            id="forwarded-v6",
        ),
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": 'for="203.0.113.7'},
            PROXIES,
            None,
            id="forwarded-unclosed-quote-is-not-the-proxy",
        ),
        pytest.param(
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=unknown"},
            PROXIES,
            None,
            id="forwarded-unknown",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "::ffff:127.0.0.1",
                "HTTP_X_FORWARDED_FOR": "::ffff:203.0.113.7",
            },
            PROXIES,
            "203.0.113.7",
            id="mapped-proxy-and-client",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_FORWARDED": 'for="x\\"y, for=\x00, for=203.0.113.7',
            },
            PROXIES,
            "203.0.113.7",
            id="forwarded-garbage-left-of-client-never-read",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_X_FORWARDED_FOR": " " * (MAX_FORWARDED_LENGTH - 11)
                + "203.0.113.7",
            },
            PROXIES,
            "203.0.113.7",
            id="xff-at-the-cap",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_X_FORWARDED_FOR": " " * (MAX_FORWARDED_LENGTH - 10)
                + "203.0.113.7",
            },
            PROXIES,
            None,
            id="xff-over-the-cap",
        ),
        pytest.param(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_FORWARDED": " " * (MAX_FORWARDED_LENGTH - 14) + "for=203.0.113.7",
            },
            PROXIES,
            None,
            id="forwarded-over-the-cap",
        ),
        pytest.param(
            {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "," * 10_000},
            PROXIES,
            "203.0.113.9",
            id="over-the-cap-from-a-non-proxy-is-not-read",
        ),
        pytest.param({"REMOTE_ADDR": ""}, PROXIES, None, id="unix-socket-gunicorn"),
        pytest.param({"REMOTE_ADDR": None}, None, None, id="proxy-protocol-local"),
        pytest.param(
            {"REMOTE_ADDR": "localhost"}, None, None, id="unix-socket-waitress"
        ),
        pytest.param({"REMOTE_ADDR": "0.0.0.0"}, None, None, id="unix-socket-uwsgi"),
        pytest.param({}, None, None, id="missing"),
    ],
)
def test_resolve_client(
    environ: dict[str, object], proxies: Networks | None, expected: str | None
) -> None:
    addr = resolve_client(environ, proxies)
    assert (None if addr is None else str(addr)) == expected
