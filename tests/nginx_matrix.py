"""The README's "Behind nginx" setup as the nginx tests run it (WSGI in
``test_nginx.py``, ASGI in ``test_asgi_nginx.py``): which loopback address
each client connects from, and the spoof matrix both run row for row.

Each row is ``(source, headers, expect_gated)``: a client connecting from
``source`` with ``headers`` (a header may repeat) gets the debugger, or
exactly the bytes of the app without ipdebug.
"""

from __future__ import annotations

import http.client
from collections.abc import Sequence

import pytest

from .servers import Reply

OPERATOR = "127.0.0.3"
STRANGER = "127.0.0.4"
PROXY = "127.0.0.1"  # nginx connects to the app server from here

Headers = Sequence[tuple[str, str]]


def get(port: int, path: str, *, source: str, headers: Headers = ()) -> Reply:
    """Like ``servers.request``, but a header may be sent more than once."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=30, source_address=(source, 0)
    )
    try:
        conn.putrequest("GET", path)  # Host: 127.0.0.1:<port>
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


#: Requests through nginx, which appends its peer to ``X-Forwarded-For``.
THROUGH_NGINX = [
    pytest.param(OPERATOR, [], True, id="operator"),
    pytest.param(
        OPERATOR,
        [("X-Forwarded-For", "198.51.100.1")],
        True,
        id="operator-own-xff-left-of-nginx-entry-never-read",
    ),
    pytest.param(
        OPERATOR,
        [("X-Forwarded-For", "127.0.0.4, 127.0.0.1")],
        True,
        id="operator-own-xff-naming-the-proxy",
    ),
    pytest.param(
        OPERATOR, [("X-Real-IP", "198.51.100.1")], True, id="operator-x-real-ip"
    ),
    # nginx passes a client's Forwarded header on beside the X-Forwarded-For
    # it sets: two forwarding headers at once mean denied (fail closed), even
    # for the operator.
    pytest.param(
        OPERATOR,
        [("Forwarded", f"for={OPERATOR}")],
        False,
        id="operator-own-forwarded-doubles-the-headers",
    ),
    # The limit of listing 127.0.0.1 as a proxy, through nginx too: a local
    # process that connects to nginx from 127.0.0.1 gets 127.0.0.1 appended,
    # which ipdebug skips as a proxy hop, so the entry it wrote is read.
    pytest.param(
        PROXY,
        [("X-Forwarded-For", OPERATOR)],
        True,
        id="local-process-on-the-proxy-address-names-any-client",
    ),
    pytest.param(STRANGER, [], False, id="stranger"),
    pytest.param(
        STRANGER, [("X-Forwarded-For", OPERATOR)], False, id="stranger-forged-xff"
    ),
    pytest.param(
        STRANGER,
        [("X-Forwarded-For", f"{OPERATOR}, {PROXY}")],
        False,
        id="stranger-forged-xff-ending-with-the-proxy",
    ),
    pytest.param(
        STRANGER,
        [("X-Forwarded-For", OPERATOR), ("X-Forwarded-For", PROXY)],
        False,
        id="stranger-forged-xff-twice",
    ),
    pytest.param(
        STRANGER, [("Forwarded", f"for={OPERATOR}")], False, id="stranger-forwarded"
    ),
    pytest.param(
        STRANGER,
        [("Forwarded", f'for="{OPERATOR}", for={PROXY}')],
        False,
        id="stranger-forwarded-chain",
    ),
    pytest.param(STRANGER, [("X-Real-IP", OPERATOR)], False, id="stranger-x-real-ip"),
    pytest.param(
        STRANGER,
        [("X_Forwarded_For", OPERATOR)],  # nginx drops underscored names
        False,
        id="stranger-underscored-xff",
    ),
    pytest.param(
        STRANGER,
        [
            ("X-Forwarded-For", f"{OPERATOR}, {PROXY}"),
            ("Forwarded", f"for={OPERATOR}"),
            ("X-Real-IP", OPERATOR),
        ],
        False,
        id="stranger-all-at-once",
    ),
]


#: Requests straight to the app server, bypassing nginx.
DIRECT = [
    # The peer is not a trusted proxy: forwarding headers are ignored, both
    # ways.
    pytest.param(STRANGER, [("X-Forwarded-For", OPERATOR)], False, id="stranger-xff"),
    pytest.param(
        STRANGER, [("Forwarded", f"for={OPERATOR}")], False, id="stranger-forwarded"
    ),
    pytest.param(OPERATOR, [], True, id="operator-without-proxy"),
    pytest.param(
        OPERATOR,
        [("X-Forwarded-For", "198.51.100.1")],
        True,
        id="operator-xff-ignored",
    ),
    # The peer is the trusted proxy's address, but what it forwarded is no
    # client address.
    pytest.param(PROXY, [], False, id="proxy-address-without-header"),
    pytest.param(
        PROXY, [("X-Forwarded-For", PROXY)], False, id="proxy-address-only-proxies"
    ),
    pytest.param(
        PROXY,
        [("X-Forwarded-For", f"{OPERATOR}, unknown")],
        False,
        id="proxy-address-malformed-hop",
    ),
    pytest.param(
        PROXY,
        [("X-Forwarded-For", OPERATOR), ("Forwarded", f"for={OPERATOR}")],
        False,
        id="proxy-address-both-headers",
    ),
    # The limit of listing 127.0.0.1 as a proxy: any local process that
    # connects from 127.0.0.1 (to gunicorn, or to nginx, which appends
    # 127.0.0.1 and so looks like a second proxy hop) names the client it
    # likes. That is why the README says gunicorn must be reachable only
    # through nginx: this row is the reason, not a feature.
    pytest.param(
        PROXY,
        [("X-Forwarded-For", OPERATOR)],
        True,
        id="proxy-address-names-any-client",
    ),
]
