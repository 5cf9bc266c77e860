"""uvicorn's own walk of ``X-Forwarded-For`` (IPD027, IPD028).

uvicorn (checked: 0.30 to 0.55) rewrites ``scope["client"]`` from
``X-Forwarded-For`` when ``--proxy-headers`` is on (the default) and the
peer is in ``--forwarded-allow-ips`` (default ``$FORWARDED_ALLOW_IPS``, else
``127.0.0.1,::1``; ``127.0.0.1`` before 0.30). It takes the right-most entry
it does not trust, or the *left-most* one when it trusts them all, and with
``'*'`` always the left-most: the client's own. ipdebug's ASGI adapter reads
``scope["client"]`` as ``REMOTE_ADDR``, so with ``'*'`` every client chooses
its address. gunicorn's uvicorn workers (``uvicorn_worker.UvicornWorker``)
keep proxy headers on and pass gunicorn's ``--forwarded-allow-ips``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..config import Settings
from .findings import Finding, finding
from .processes import Process

#: uvicorn's default when neither the option nor the variable is set.
DEFAULT_ALLOW_IPS = "127.0.0.1,::1"


def uvicorn_proxy(
    argv: Sequence[str], environ: Mapping[str, str] | None
) -> tuple[bool, str] | None:
    """``(proxy_headers, forwarded_allow_ips)`` of a uvicorn command line
    (``uvicorn ...``, ``python -m uvicorn ...``, or gunicorn with a uvicorn
    worker class), else ``None``.
    """
    words = [os.path.basename(a) for a in argv[:3]]
    gunicorn = any(w.startswith("gunicorn") for w in words)
    if gunicorn:
        if not any("uvicorn" in a.lower() for a in argv):
            return None
    elif not any(w.startswith("uvicorn") for w in words):
        return None
    proxy_headers = True
    allow: str | None = None
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--no-proxy-headers" and not gunicorn:
            proxy_headers = False
        elif arg == "--proxy-headers":
            proxy_headers = True
        elif arg == "--forwarded-allow-ips" and i + 1 < len(args):
            allow = args[i + 1]
        elif arg.startswith("--forwarded-allow-ips="):
            allow = arg.partition("=")[2]
    if allow is None:
        allow = (environ or {}).get("FORWARDED_ALLOW_IPS") or DEFAULT_ALLOW_IPS
    return proxy_headers, allow


def check_uvicorn(
    processes: Sequence[Process], settings: Sequence[tuple[Settings, str]]
) -> list[Finding]:
    """uvicorn believing any client's ``X-Forwarded-For`` (IPD027), or a
    second walk beside ipdebug's ``trusted_proxies`` (IPD028).

    **Limits:** only processes of this host with a readable command line;
    a value set in code (``uvicorn.run(..., forwarded_allow_ips=...)``) is
    not seen.
    """
    found: list[Finding] = []
    proxied = [
        (", ".join(s.trusted_proxies.entries), where)
        for s, where in settings
        if s.trusted_proxies
    ]
    for p in processes:
        if p.kind not in ("server", "python"):
            continue
        read = uvicorn_proxy(p.argv, p.environ)
        if read is None:
            continue
        on, allow = read
        if not on:
            continue
        entries = [e.strip() for e in allow.split(",") if e.strip()]
        if "*" in entries:
            found.append(finding("IPD027", process=p.label, allow=allow))
        for proxies, where in proxied:
            found.append(
                finding(
                    "IPD028", process=p.label, allow=allow, where=where, proxies=proxies
                )
            )
    return found
