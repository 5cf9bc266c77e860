"""ipdebug: Werkzeug's interactive debugger for one address, for a few
minutes, on a production server. See README.md, and the documentation in
docs/ (the settings in docs/configuration.md).

Where things live:

- the middleware: :mod:`ipdebug.middleware` (WSGI, the composition root)
  and :mod:`ipdebug.asgi`;
- the gate, who gets the debugger: :mod:`ipdebug.gate` (window x allowlist
  x Host: the client address through trusted proxies, the trusted Host,
  the cross-site check, and the decisions combining them) and
  :mod:`ipdebug.switch` (the window as a request sees it);
  :mod:`ipdebug.config` reads the settings;
- the stores, where windows are kept: :mod:`ipdebug.stores`;
- the debugger, what a gated-in request gets: :mod:`ipdebug.debugger`;
  errors of other clients: :mod:`ipdebug.capture`; external debuggers:
  :mod:`ipdebug.attach`;
- the integrations: :mod:`ipdebug.flask`, :mod:`ipdebug.django`,
  :mod:`ipdebug.gunicorn`, :mod:`ipdebug.paste`, :mod:`ipdebug.quart`;
- the operator's side: :mod:`ipdebug.cli`, :mod:`ipdebug.api` (enable,
  disable, status), :mod:`ipdebug.doctor`, :mod:`ipdebug.audit`;
- Werkzeug's debugger internals, touched nowhere else:
  :mod:`ipdebug.internals`.
"""

from __future__ import annotations

from .api import Enabled, Status, disable, enable, status
from .errors import ConfigError, FlagError, FlagWriteError, IPDebugError
from .middleware import IPDebugMiddleware

__version__ = "0.1.0.dev0"

__all__ = [
    "ConfigError",
    "Enabled",
    "FlagError",
    "FlagWriteError",
    "IPDebugError",
    "IPDebugMiddleware",
    "Status",
    "__version__",
    "disable",
    "enable",
    "status",
]
