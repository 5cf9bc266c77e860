"""The cross-site rule: a small pure predicate, with the attack rows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipdebug.gate.crosssite import is_cross_site

HOST = "127.0.0.1:8000"
OWN = f"http://{HOST}"


def environ(**headers: str) -> dict[str, str]:
    env = {"HTTP_HOST": HOST, "wsgi.url_scheme": "http"}
    env.update(headers)
    return env


@pytest.mark.parametrize(
    ("headers", "cross"),
    [
        # No word from a browser: curl, scripts, old clients.
        pytest.param({}, False, id="no-headers"),
        # Sec-Fetch-Site
        pytest.param(
            {"HTTP_SEC_FETCH_SITE": "same-origin"}, False, id="sfs-same-origin"
        ),
        pytest.param({"HTTP_SEC_FETCH_SITE": "none"}, False, id="sfs-none-typed-url"),
        pytest.param({"HTTP_SEC_FETCH_SITE": "cross-site"}, True, id="sfs-cross-site"),
        pytest.param(
            {"HTTP_SEC_FETCH_SITE": "same-site"}, True, id="sfs-same-site-sibling"
        ),
        pytest.param({"HTTP_SEC_FETCH_SITE": ""}, True, id="sfs-empty"),
        pytest.param({"HTTP_SEC_FETCH_SITE": "Same-Origin"}, True, id="sfs-odd-case"),
        pytest.param(
            {"HTTP_SEC_FETCH_SITE": "same-origin, cross-site"}, True, id="sfs-two"
        ),
        # Origin
        pytest.param({"HTTP_ORIGIN": OWN}, False, id="origin-own"),
        pytest.param(
            {"HTTP_ORIGIN": "HTTP://127.0.0.1:8000"}, False, id="origin-own-upper"
        ),
        pytest.param({"HTTP_ORIGIN": "null"}, True, id="origin-null"),
        pytest.param({"HTTP_ORIGIN": ""}, True, id="origin-empty"),
        pytest.param(
            {"HTTP_ORIGIN": "http://127.0.0.2:8000"}, True, id="origin-other-loopback"
        ),
        pytest.param(
            {"HTTP_ORIGIN": "http://127.0.0.1:8001"}, True, id="origin-other-port"
        ),
        pytest.param(
            {"HTTP_ORIGIN": "http://127.0.0.1"}, True, id="origin-without-port"
        ),
        pytest.param(
            {"HTTP_ORIGIN": "http://127.0.0.1:8000.evil.example"},
            True,
            id="origin-suffix",
        ),
        pytest.param(
            {"HTTP_ORIGIN": "http://127.0.0.1:8000@evil.example"},
            True,
            id="origin-userinfo",
        ),
        pytest.param({"HTTP_ORIGIN": f"{OWN}/"}, True, id="origin-with-path"),
        pytest.param({"HTTP_ORIGIN": "file://"}, True, id="origin-file"),
        pytest.param(
            {"HTTP_ORIGIN": "https://127.0.0.1:8000"}, False, id="origin-https-at-proxy"
        ),
        pytest.param(
            {"HTTP_ORIGIN": OWN, "HTTP_SEC_FETCH_SITE": "cross-site"},
            True,
            id="own-origin-but-cross-site",
        ),
        pytest.param(
            {"HTTP_ORIGIN": "https://evil.example", "HTTP_SEC_FETCH_SITE": "none"},
            True,
            id="foreign-origin-sfs-none",
        ),
        # Referer, when there is no Sec-Fetch-Site
        pytest.param({"HTTP_REFERER": f"{OWN}/fail?x=1"}, False, id="referer-own"),
        pytest.param({"HTTP_REFERER": f"{OWN}"}, False, id="referer-own-no-path"),
        pytest.param(
            {"HTTP_REFERER": "http://evil.example/page"}, True, id="referer-foreign"
        ),
        pytest.param(
            {"HTTP_REFERER": "http://127.0.0.1:8000.evil.example/"},
            True,
            id="referer-suffix",
        ),
        pytest.param(
            {"HTTP_REFERER": "http://127.0.0.1:8000@evil.example/"},
            True,
            id="referer-userinfo",
        ),
        pytest.param({"HTTP_REFERER": "garbage"}, True, id="referer-garbage"),
        pytest.param(
            {
                "HTTP_REFERER": "http://evil.example/",
                "HTTP_SEC_FETCH_SITE": "same-origin",
            },
            False,
            id="referer-ignored-with-sfs",
        ),
        pytest.param(
            {"HTTP_REFERER": "http://evil.example/", "HTTP_ORIGIN": OWN},
            False,
            id="origin-decides-before-referer",
        ),
    ],
)
def test_cross_site_rule(headers: dict[str, str], cross: bool) -> None:
    assert is_cross_site(environ(**headers)) is cross


@pytest.mark.parametrize(
    ("scheme", "host", "origin", "cross"),
    [
        pytest.param("https", "app.example", "https://app.example", False, id="https"),
        pytest.param(
            "https", "app.example:443", "https://app.example", False, id="default-port"
        ),
        pytest.param(
            "https", "app.example", "http://app.example", True, id="http-page-to-https"
        ),
        pytest.param("http", "APP.example", "http://app.EXAMPLE", False, id="case"),
        pytest.param("http", "[::1]:8000", "http://[::1]:8000", False, id="ipv6"),
        pytest.param("http", "[::1]:8000", "http://[::2]:8000", True, id="ipv6-other"),
        pytest.param("http", "", "http://app.example", True, id="no-host"),
    ],
)
def test_own_origin_is_scheme_and_host(
    scheme: str, host: str, origin: str, cross: bool
) -> None:
    env = {"wsgi.url_scheme": scheme, "HTTP_ORIGIN": origin}
    if host:
        env["HTTP_HOST"] = host
    assert is_cross_site(env) is cross


HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=60
)


@given(
    site=st.none() | st.sampled_from(["same-origin", "none"]) | HEADER_TEXT,
    origin=st.none() | HEADER_TEXT,
    referer=st.none() | HEADER_TEXT,
    host=HEADER_TEXT,
)
def test_never_raises_and_only_own_origins_pass(
    site: str | None, origin: str | None, referer: str | None, host: str
) -> None:
    env = {"HTTP_HOST": host, "wsgi.url_scheme": "http"}
    for key, value in (
        ("HTTP_SEC_FETCH_SITE", site),
        ("HTTP_ORIGIN", origin),
        ("HTTP_REFERER", referer),
    ):
        if value is not None:
            env[key] = value
    cross = is_cross_site(env)
    if not cross:
        assert site is None or site.strip(" \t") in ("same-origin", "none")
        if origin is not None:
            # Only a real origin naming this very host passes.
            scheme, _, netloc = origin.strip(" \t").lower().partition("://")
            assert scheme in ("http", "https")
            assert netloc.split(":")[0] == host.lower().split(":")[0]
