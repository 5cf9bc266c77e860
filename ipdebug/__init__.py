"""ipdebug: Werkzeug's interactive debugger for one address, for a few
minutes, on a production server. See README.md, and the documentation in
docs/ (the settings in docs/configuration.md).
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
