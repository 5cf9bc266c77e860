"""Is this request from a page of another site?

A gated-in operator's browser also runs other sites' pages. Such a page can
make the browser ask for a debugger resource (an ``<img>`` that loads only
while a window is open tells it one is) or for a failing page (a debugger
page rendered, a pdb session offered, all for the attacker's request).
ipdebug treats such a request as *not gated in*: it reaches the app exactly
as without ipdebug.

The browser says where a request comes from:

- ``Sec-Fetch-Site`` (every current browser, on HTTPS and on
  ``localhost``/loopback addresses): only ``same-origin`` and ``none`` (the
  operator typed the address, used a bookmark, reloaded) are accepted.
  ``same-site`` is refused too: a sibling subdomain may be run by someone
  else.
- ``Origin`` (on POST requests and on cross-origin requests): it must be
  the request's own origin, ``scheme://Host``; ``null`` (sandboxed frames,
  some redirects) is refused. A ``Host`` without a port (a proxy forwarding
  nginx's ``$host`` drops it) is compared with the origin's host name. An ``https`` origin is accepted for a request
  the app sees as ``http``: TLS is often ended by a proxy that does not
  tell the app.
- ``Referer``, only when there is no ``Sec-Fetch-Site``: its origin must be
  the request's own.

A request with none of these (curl, scripts, old browsers) is accepted, as
before: it is not a page of another site acting through a browser. Over
plain HTTP to a name other than ``localhost``, browsers send no
``Sec-Fetch-Site`` and a page may suppress its ``Referer``: only HTTPS
gets the whole of this protection.
"""

from __future__ import annotations

import re
import typing as t

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: ``Sec-Fetch-Site`` values of requests the operator made on this site.
SAME_SITE_VALUES = frozenset({"same-origin", "none"})

_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
# scheme://host[:port], nothing else (an Origin has no path, no user info).
_ORIGIN_RE = re.compile(r"(https?)://([^/?#@\s]+)", re.ASCII | re.IGNORECASE)
# The origin part of a Referer: the same, then a path, query or the end.
_REFERER_RE = re.compile(
    r"(https?)://([^/?#@\s]+)(?:[/?#]|$)", re.ASCII | re.IGNORECASE
)


def is_cross_site(environ: WSGIEnvironment) -> bool:
    """Whether the browser says this request comes from another site's
    page (see the module documentation for the rule).

    .. code-block:: python

        is_cross_site({"HTTP_SEC_FETCH_SITE": "cross-site", ...})  # True
        is_cross_site({"HTTP_HOST": "app", "HTTP_ORIGIN": "https://evil"})  # True
        is_cross_site({"HTTP_HOST": "app"})  # False: no browser's word
    """
    site = environ.get("HTTP_SEC_FETCH_SITE")
    if site is not None and site.strip(" \t") not in SAME_SITE_VALUES:
        return True
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None:
        return not _is_own(_ORIGIN_RE.fullmatch(origin.strip(" \t")), environ)
    referer = environ.get("HTTP_REFERER")
    if site is None and referer is not None:
        return not _is_own(_REFERER_RE.match(referer.strip(" \t")), environ)
    return False


def _is_own(match: re.Match[str] | None, environ: WSGIEnvironment) -> bool:
    """Whether a parsed ``scheme://host[:port]`` is the request's origin."""
    if match is None:
        return False  # "null", or not an origin at all
    scheme = match.group(1).lower()
    own_scheme = environ.get("wsgi.url_scheme", "http")
    if scheme != own_scheme and not (scheme == "https" and own_scheme == "http"):
        return False
    host = environ.get("HTTP_HOST")
    if not host:
        return False  # nothing to compare with: in doubt, another site
    theirs, ours = _netloc(scheme, match.group(2)), _netloc(own_scheme, host)
    if theirs == ours:
        return True
    # A proxy that forwards ``Host: $host`` (nginx) drops the port: then
    # the host name must match. (Another port of the same host is
    # ``same-site`` to browsers that send Sec-Fetch-Site, refused above.)
    return ":" not in ours.rpartition("]")[2] and _hostname(theirs) == ours


def _hostname(netloc: str) -> str:
    """``netloc`` without its port (``[v6]`` keeps its brackets)."""
    if netloc.startswith("["):
        return netloc[: netloc.find("]") + 1] if "]" in netloc else netloc
    return netloc.partition(":")[0]


def _netloc(scheme: str, netloc: str) -> str:
    netloc = netloc.lower()
    default = _DEFAULT_PORTS.get(scheme, "")
    return netloc[: -len(default)] if default and netloc.endswith(default) else netloc
