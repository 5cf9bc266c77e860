"""ipdebug's ASGI adapter behind a real nginx, with the README's uvicorn
configuration: the spoof matrix of ``test_nginx.py`` (``nginx_matrix.py``),
row for row.

nginx appends its peer to ``X-Forwarded-For``; uvicorn (2 workers) listens on
127.0.0.1 with ``IPDEBUG_TRUSTED_PROXIES=127.0.0.1`` and
``IPDEBUG_ALLOW=127.0.0.3``. The recommended configuration runs uvicorn with
``--no-proxy-headers``, so that ipdebug's walk is the only one: every row of
the WSGI matrix holds. With uvicorn's default (``--proxy-headers``,
``--forwarded-allow-ips 127.0.0.1``) there are two walks; every spoofing row
is still denied (the stranger's rows), which this module checks too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing as t
from collections.abc import Iterator

import pytest

from .appservers import is_debugger, uvicorn
from .nginx import Site, nginx
from .nginx_matrix import DIRECT, OPERATOR, PROXY, STRANGER, THROUGH_NGINX, Headers, get
from .servers import open_window

pytestmark = pytest.mark.server

APP = "tests.apps.asgi_apps:fastapi_app"
BARE = "tests.apps.asgi_apps:fastapi_bare"


@dataclasses.dataclass
class Stack:
    server: int  # uvicorn with ipdebug, direct
    bare: int  # the same app without ipdebug, direct
    nginx: int
    nginx_bare: int


@contextlib.contextmanager
def stack(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("asgi-nginx")
    env = {"IPDEBUG_TRUSTED_PROXIES": PROXY, "IPDEBUG_ALLOW": OPERATOR}
    with (
        uvicorn(tmp_path, APP, *args, workers=2, env=env) as server,
        uvicorn(tmp_path, BARE, *args, workers=1, env=env, name="bare") as bare,
        nginx(
            tmp_path, [Site(t.cast(int, server.port)), Site(t.cast(int, bare.port))]
        ) as proxy,
    ):
        open_window(server, OPERATOR)
        yield Stack(
            server=t.cast(int, server.port),
            bare=t.cast(int, bare.port),
            nginx=proxy.ports[0],
            nginx_bare=proxy.ports[1],
        )


@pytest.fixture(scope="module")
def recommended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory, "--no-proxy-headers") as running:
        yield running


@pytest.fixture(scope="module")
def uvicorn_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory, "--forwarded-allow-ips", PROXY) as running:
        yield running


PATHS = ["/", "/fail", "/?__debugger__=yes&cmd=resource&f=debugger.js"]


def check(
    port: int, bare: int, source: str, headers: Headers, expect_gated: bool
) -> None:
    if expect_gated:
        page = get(port, "/fail", source=source, headers=headers)
        assert is_debugger(page), page.text[:300]
        assert page.header("Cache-Control") == "no-store"
        return
    for path in PATHS:
        got = get(port, path, source=source, headers=headers)
        want = get(bare, path, source=source, headers=headers)
        assert not is_debugger(got)
        assert got.without_date() == want.without_date(), path


@pytest.mark.parametrize(("source", "headers", "expect_gated"), THROUGH_NGINX)
def test_through_nginx(
    recommended: Stack, source: str, headers: Headers, expect_gated: bool
) -> None:
    check(recommended.nginx, recommended.nginx_bare, source, headers, expect_gated)


@pytest.mark.parametrize(("source", "headers", "expect_gated"), DIRECT)
def test_bypassing_nginx(
    recommended: Stack, source: str, headers: Headers, expect_gated: bool
) -> None:
    check(recommended.server, recommended.bare, source, headers, expect_gated)


STRANGER_ROWS = [row for row in THROUGH_NGINX + DIRECT if row.values[0] == STRANGER]


@pytest.mark.parametrize(("source", "headers", "expect_gated"), STRANGER_ROWS)
def test_spoofing_denied_with_uvicorns_own_walk_too(
    uvicorn_default: Stack, source: str, headers: Headers, expect_gated: bool
) -> None:
    assert not expect_gated
    for port, bare in (
        (uvicorn_default.nginx, uvicorn_default.nginx_bare),
        (uvicorn_default.server, uvicorn_default.bare),
    ):
        check(port, bare, source, headers, expect_gated)
