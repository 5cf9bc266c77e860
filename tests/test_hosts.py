from __future__ import annotations

import pytest

from ipdebug.errors import ConfigError
from ipdebug.gate.hosts import (
    DEFAULT_TRUSTED_HOSTS,
    host_is_trusted,
    parse_trusted_hosts,
)

TRUSTED = parse_trusted_hosts(
    ["app.example.com", ".corp.example", "::1", *DEFAULT_TRUSTED_HOSTS],
    setting="trusted_hosts",
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("app.example.com", True, id="exact"),
        pytest.param("APP.Example.COM", True, id="case-insensitive"),
        pytest.param("app.example.com:8443", True, id="port-ignored"),
        pytest.param("corp.example", True, id="domain-itself"),
        pytest.param("a.b.corp.example", True, id="subdomain"),
        pytest.param("localhost:5000", True, id="localhost"),
        pytest.param("api.localhost", True, id="dot-localhost"),
        pytest.param("127.0.0.1:8000", True, id="loopback"),
        pytest.param("[::1]:8000", True, id="ipv6-literal"),
        pytest.param("evil.example", False, id="dns-rebinding"),
        pytest.param("app.example.com.evil.example", False, id="suffix-attack"),
        pytest.param("evilcorp.example", False, id="no-dot-boundary"),
        pytest.param("www.app.example.com", False, id="exact-has-no-subdomains"),
        pytest.param("127.0.0.2", False, id="other-loopback"),
        pytest.param("app.example.com:99999", False, id="bad-port"),
        pytest.param("app.example.com:", False, id="empty-port"),
        pytest.param("app.example.com/x", False, id="path"),
        pytest.param("user@app.example.com", False, id="userinfo"),
        pytest.param("", False, id="empty"),
        pytest.param(None, False, id="missing"),
        pytest.param("app.example.com\r\nX: y", False, id="crlf"),
        pytest.param("a" * 300, False, id="huge"),
    ],
)
def test_host_is_trusted(host: object, expected: bool) -> None:
    assert host_is_trusted(host, TRUSTED) is expected


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("*.example.com", id="wildcard"),
        pytest.param("example.com:443", id="port"),
        pytest.param("", id="empty"),
        pytest.param("exa mple.com", id="space"),
        pytest.param(".", id="dot"),
        pytest.param("127.0.0.1:8000", id="ipv4-with-port"),
        pytest.param("[fe80::1%eth0]", id="zone-id"),
        pytest.param("a" * 300, id="too-long"),
    ],
)
def test_parse_trusted_hosts_rejects(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"trusted_hosts: .* is not a host name"):
        parse_trusted_hosts(["ok.example", entry], setting="trusted_hosts")


def test_empty_list_is_refused() -> None:
    # Werkzeug >= 3.1.7 reads an empty list as "trust every host".
    with pytest.raises(ConfigError, match="is empty"):
        parse_trusted_hosts([], setting="trusted_hosts")
