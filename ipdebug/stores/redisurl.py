"""The flag's Redis URL: ``redis://...`` turned into validated connection
options, and the URL for people (:attr:`_Target.location`, :func:`redact`),
with the password replaced by ``***``. The store that uses them is
:mod:`ipdebug.stores.redis`.

.. code-block:: python

    target = parse_url("redis://:PASSWORD@10.0.0.5:6379/0?key=ipdebug:myapp")
    target.location  # 'redis://:***@10.0.0.5:6379/0?key=ipdebug:myapp'

The URL is ``redis://`` (or ``rediss://`` for TLS), an optional
``username:password@``, the host and port (default 6379), the database
(``/0``) and these query options, nothing else:

``key``
    the flag's key (default ``ipdebug:flag``): letters, digits and
    ``:_.-{}``. One key per application; its PIN counters and audit trail
    live beside it, under ``<key>:``.
``timeout``
    seconds to wait for Redis (default 0.25, at most 0.5).
``ssl_ca_certs``
    for ``rediss://``: the CA bundle to check the server's certificate with.

**Security:** the password is never part of an error message or a
``repr``: errors name the URL as :func:`redact` shows it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigError

#: The flag's key when the URL has no ``key`` option.
DEFAULT_KEY = "ipdebug:flag"
#: Seconds to wait for Redis (connect, and each answer) unless ``timeout``.
DEFAULT_TIMEOUT = 0.25

_KEY_RE = re.compile(r"[A-Za-z0-9_.:{}\-]{1,128}", re.ASCII)
_DB_RE = re.compile(r"/?(\d{1,5})?", re.ASCII)
_OPTIONS = ("key", "timeout", "ssl_ca_certs")


def redact(url: str) -> str:
    """``url`` with the password (everything between the first ``:`` and
    the last ``@`` of the part after ``://``) replaced by ``***``.

    It errs on the side of hiding too much, so that it is safe for URLs that
    do not even parse.
    """
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


@dataclass(frozen=True)
class _Target:
    """Where and how to connect, parsed from the URL."""

    tls: bool
    host: str
    port: int
    db: int
    username: str | None
    password: str | None = None
    key: str = DEFAULT_KEY
    timeout: float = DEFAULT_TIMEOUT
    ssl_ca_certs: str | None = None

    def __repr__(self) -> str:
        return f"_Target({self.location!r})"

    @property
    def location(self) -> str:
        """The URL for people: normalised, the password replaced by ``***``."""
        user = self.username or ""
        userinfo = f"{user}:***@" if self.password else (f"{user}@" if user else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{userinfo}{host}:{self.port}/{self.db}?key={self.key}"


def parse_url(url: str) -> _Target:
    """Parse and validate a ``redis://`` or ``rediss://`` flag URL.

    :raises ConfigError: naming the URL (password hidden) and what is wrong.
    """
    shown = redact(url)

    def bad(reason: str) -> ConfigError:
        return ConfigError("flag", shown, reason)

    parts = urlsplit(url)
    if parts.fragment:
        raise bad("has a '#' part; percent-encode '#' in a password as %23")
    if parts.scheme not in ("redis", "rediss"):
        raise bad("is not a redis:// or rediss:// URL")
    try:
        port = parts.port or 6379
    except ValueError:
        raise bad(
            "has an invalid port or host; use redis://HOST:PORT/DB?key=KEY "
            "(percent-encode '/', '?', '#' and '@' in a password)"
        ) from None
    if not parts.hostname:
        raise bad("names no host; use redis://HOST:PORT/DB?key=KEY")
    db_match = _DB_RE.fullmatch(parts.path)
    if db_match is None:
        raise bad(
            "has a bad database number; use /0 (or another number) after the port"
        )
    db = int(db_match.group(1) or 0)
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        if parts.query:
            raise bad("has a malformed query; use ?key=NAME") from None
        query = []
    options: dict[str, str] = {}
    for name, value in query:
        if name not in _OPTIONS:
            raise bad(
                f"has an unknown option {name!r}; the options are {', '.join(_OPTIONS)}"
            )
        if name in options:
            raise bad(f"has the option {name!r} twice")
        options[name] = value
    key = options.get("key", DEFAULT_KEY)
    if not _KEY_RE.fullmatch(key):
        raise bad(f"has a bad key {key!r}; use 1 to 128 letters, digits and ':_.-{{}}'")
    timeout = DEFAULT_TIMEOUT
    if "timeout" in options:
        try:
            timeout = float(options["timeout"])
        except ValueError:
            timeout = math.nan
        if not 0.01 <= timeout <= 0.5:
            raise bad(
                f"has a bad timeout {options['timeout']!r}; give seconds from 0.01 to 0.5"
            )
    ca_certs = options.get("ssl_ca_certs")
    if ca_certs is not None and parts.scheme != "rediss":
        raise bad("has ssl_ca_certs but is not a rediss:// (TLS) URL")
    return _Target(
        tls=parts.scheme == "rediss",
        host=parts.hostname,
        port=port,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        key=key,
        timeout=timeout,
        ssl_ca_certs=ca_certs or None,
    )
