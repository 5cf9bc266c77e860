"""PasteDeploy integration: ipdebug as a filter in an ``.ini`` pipeline.

.. code-block:: ini

    [pipeline:main]
    pipeline = ipdebug myapp

    [filter:ipdebug]
    use = egg:ipdebug
    allow = 203.0.113.7 10.8.0.0/16
    trusted_hosts = app.example.com
    trusted_proxies = 127.0.0.1
    max_window = 30m

Every option is a keyword argument of :class:`~ipdebug.IPDebugMiddleware`,
written as text: lists are separated by commas or whitespace, booleans are
``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``),
``max_tracebacks`` is an integer. Options left out fall back to the
``IPDEBUG_*`` environment variables, as everywhere. An unknown option is an
error (a typo must not silently leave a setting at its default).
"""

from __future__ import annotations

import typing as t

from .errors import ConfigError
from .middleware import IPDebugMiddleware

_LISTS = ("allow", "trusted_hosts", "trusted_proxies")
_TEXT = ("flag", "console_path", "max_window")
_BOOLS = ("evalex", "relay")
_INTS = ("max_tracebacks",)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}

Filter = t.Callable[[t.Any], IPDebugMiddleware]


def filter_factory(global_conf: dict[str, str], **local_conf: str) -> Filter:
    """PasteDeploy's ``paste.filter_factory`` entry point (``egg:ipdebug``).

    :raises ConfigError: for an unknown option or a value of the wrong kind,
        when the pipeline is loaded.
    """
    options = parse_options(local_conf)

    # PasteDeploy calls this while loading the .ini, so bad values fail then.
    def make_filter(app: t.Any) -> IPDebugMiddleware:
        return IPDebugMiddleware(app, **options)

    return make_filter


def parse_options(conf: dict[str, str]) -> dict[str, t.Any]:
    """Turn ``.ini`` text into keyword arguments of ``IPDebugMiddleware``."""
    options: dict[str, t.Any] = {}
    for name, raw in conf.items():
        value = raw.strip()
        if name in _LISTS:
            options[name] = value.replace(",", " ").split()
        elif name in _TEXT:
            options[name] = value or None
        elif name in _BOOLS:
            if value.lower() not in _TRUE | _FALSE:
                raise ConfigError(name, raw, "is not a boolean; use true or false")
            options[name] = value.lower() in _TRUE
        elif name in _INTS:
            if not value.isdigit():
                raise ConfigError(name, raw, "is not a whole number")
            options[name] = int(value)
        else:
            known = ", ".join(sorted(_LISTS + _TEXT + _BOOLS + _INTS))
            raise ConfigError(name, raw, f"is not an ipdebug option (known: {known})")
    return options
