"""``ipdebug doctor``: check a deployment for the mistakes the documentation
warns about.

.. code-block:: text

    ipdebug doctor [APP_IMPORT_PATH] [--flag PATH] [--json]

Each check is a small function returning :class:`Finding` objects with a
stable id from :data:`CHECKS` (``IPD001``), a severity, a message naming the
bad value, and the fix, in the manner of django-debug-toolbar's
``checks.py``. :func:`run_checks` runs them all; the command prints them and
exits 1 when one is critical.

.. code-block:: python

    from ipdebug.doctor import run_checks

    for finding in run_checks("wsgi:app", os.environ):
        print(finding.severity, finding.id, finding.message, finding.fix)

What is looked at: the given environment; the app, imported as gunicorn
would (with Werkzeug's development server replaced by a stub that records
the call) and walked through everything it wraps; the flag, resolved as the
other commands resolve it and judged by :func:`ipdebug.api.status` and the
flag store's own rules; the directories and the audit trail beside it; and
the processes of this host (``/proc``): Werkzeug's development server,
reverse proxies, and the environment of WSGI servers.

**Security:** importing the app runs its module code, as a server would.
Run doctor as the app's user and with the app's environment (``sudo -u app
env $(cat /etc/myapp.env) ipdebug doctor wsgi:app``): the flag's rules
depend on who reads it, and the settings on ``IPDEBUG_*`` variables.

The checks live one concern per module: :mod:`~ipdebug.doctor.findings`
(the :data:`CHECKS` table and :class:`Finding`),
:mod:`~ipdebug.doctor.environment` (variables and versions),
:mod:`~ipdebug.doctor.application` (the app and what it wraps),
:mod:`~ipdebug.doctor.network` (hosts, allowlists and proxies),
:mod:`~ipdebug.doctor.flagfiles` (the flag, its window and the files beside
it), :mod:`~ipdebug.doctor.processes` (``/proc``) and
:mod:`~ipdebug.doctor.report` (the output). :func:`run_checks`, here, runs
them in order.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, Sequence

from ..config import Settings, load_settings, resolve_flag
from ..errors import ConfigError
from ..stores import Window
from .application import check_app, load_app
from .environment import check_environment, check_werkzeug
from .findings import CHECKS, CRITICAL, INFO, RANK, WARNING, Finding, Severity, finding
from .flagfiles import (
    check_files,
    check_flag,
    check_user,
    check_window_use,
    read_audit,
)
from .network import (
    check_forwarding,
    check_proxies,
    check_settings,
    this_host_names,
    window_allow,
)
from .processes import check_processes, classify, scan_processes
from .report import report_json, report_text
from .uvicorn import check_uvicorn

__all__ = [
    "CHECKS",
    "CRITICAL",
    "INFO",
    "PROC",
    "WARNING",
    "Finding",
    "Severity",
    "classify",
    "finding",
    "report_json",
    "report_text",
    "run_checks",
    "this_host_names",
]

#: Where processes are looked for; ``None`` (or no such directory): nowhere.
#: :func:`run_checks` reads it, and :func:`this_host_names`, from this module.
PROC: str | None = "/proc"


def run_checks(
    app_path: str | None,
    environ: Mapping[str, str],
    *,
    flag: str | None = None,
    proc: str | None = None,
    hostnames: Sequence[str] | None = None,
) -> list[Finding]:
    """Run every check; return the findings, most severe first.

    :param app_path: ``module:name`` or ``module:factory()``; ``None`` skips
        the app (its settings then come from ``environ``, as
        ``ipdebug.gunicorn`` would build them).
    :param environ: the app's environment (``os.environ``).
    :param flag: ``--flag``; else ``IPDEBUG_FLAG``, else the default path.
    :param proc: where to look for processes; default :data:`PROC`.
    :param hostnames: this server's names; default :func:`this_host_names`.
    :raises ConfigError: when ``app_path`` cannot be loaded, or ``flag`` is
        not a path (usage errors).
    """
    location = resolve_flag(flag, environ)
    found = check_environment(environ) + check_werkzeug()
    settings: list[tuple[Settings, str]] = []
    module = app_file = None
    if app_path is not None:
        try:
            app, served = load_app(app_path)
        except ConfigError as exc:
            if exc.setting == "APP_IMPORT_PATH":
                raise
            where = f"the IPDebugMiddleware in {app_path}"
            found.append(finding("IPD006", name=exc.setting, where=where, error=exc))
            app, served = None, []
        more, middlewares = (
            ([], []) if app is None else check_app(app, app_path, served)
        )
        found += more
        settings = [
            (m.settings, f"the IPDebugMiddleware in {app_path}") for m in middlewares
        ]
        module = app_path.partition(":")[0]
        app_file = getattr(sys.modules.get(module), "__file__", None)
        for one, where in settings:
            if one.flag != location:
                found.append(
                    finding(
                        "IPD040",
                        who=where,
                        theirs=one.flag,
                        source="its flag setting",
                        ours=location,
                    )
                )
    if not settings:
        with contextlib.suppress(ConfigError):  # reported as IPD006
            settings = [
                (
                    load_settings(flag=location, environ=environ),
                    "the IPDEBUG_* settings",
                )
            ]
    names = this_host_names() if hostnames is None else list(hostnames)
    for one, where in settings:
        found += check_settings(one, where, names)
    root = proc or PROC
    processes = scan_processes(root) if root else []
    found += check_processes(processes, environ, location, module, app_file)
    found += check_uvicorn(processes, settings)
    proxies = [p.label for p in processes if p.kind == "proxy"]
    default = flag is None and not environ.get("IPDEBUG_FLAG")
    state: dict[str, tuple[list[dict[str, object]], Window | None]] = {}
    for where in dict.fromkeys([location, *(s.flag for s, _ in settings)]):
        more, skip = check_user(where, from_default=default and where == location)
        found += more
        window = None
        if not skip:
            allow = any(s.allow for s, _ in settings)
            more, window = check_flag(where, environ, deployment_allow=allow)
            found += more + check_files(where)
        records = read_audit(where)
        if window is not None:
            found += check_window_use(where, window, records)
        state[where] = (records, window)
    for one, where in settings:
        records, window = state.get(one.flag, ([], None))
        allowed = window_allow(window.allow) if window is not None else ()
        found += check_forwarding(one, where, proxies, records, allowed)
        found += check_proxies(one, where, records, allowed)
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda f: (RANK[f.severity], f.id))
