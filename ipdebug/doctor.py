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
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib
import importlib.metadata
import inspect
import ipaddress
import json
import os
import pwd
import re
import socket
import stat
import sys
import time
import typing as t
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from .address import Networks
from .api import status
from .config import (
    Settings,
    default_flag,
    format_duration,
    load_settings,
    resolve_flag,
    state_directory,
)
from .errors import ConfigError, FlagError
from .filestore import unsafe_directory
from .flag import Window, open_store
from .hosts import DEFAULT_TRUSTED_HOSTS, host_is_trusted
from .middleware import IPDebugMiddleware
from .pin import MAX_PIN_FAILURES

Severity = t.Literal["critical", "warning", "info"]
CRITICAL: Severity = "critical"
WARNING: Severity = "warning"
INFO: Severity = "info"

# fmt: off
#: Every check: id -> (severity, message, fix), formatted with the values
#: each check passes. Ids are stable: never reuse one for another meaning.
CHECKS: dict[str, tuple[Severity, str, str]] = {
    "IPD001": (CRITICAL, "FLASK_DEBUG={value!r} in {where} turns on Flask's debug mode: app.debug, and Werkzeug's debugger for every client under `flask run` or app.run()", "unset FLASK_DEBUG (or set it to 0) where the app starts, and restart it; debug with `ipdebug enable` instead"),
    "IPD002": (WARNING, "FLASK_ENV={value!r} in {where}: {effect}", "unset FLASK_ENV where the app starts"),
    "IPD003": (CRITICAL, "WERKZEUG_DEBUG_PIN='off' in {where}: a Werkzeug debugger started with it runs Python for whoever reaches it, without a PIN", "unset WERKZEUG_DEBUG_PIN; ipdebug ignores it and draws its own PIN per window"),
    "IPD004": (WARNING, "WERKZEUG_DEBUG_PIN is a fixed PIN in {where} (not shown): a Werkzeug debugger started with it accepts that PIN for as long as it runs", "unset WERKZEUG_DEBUG_PIN; ipdebug ignores it and draws its own PIN per window"),
    "IPD005": (CRITICAL, "{name}={value!r} in {where}: Werkzeug's development server (its reloader) sets it; that server is not for production, and with debug on it serves Werkzeug's debugger to every client", "serve the app with a production server (gunicorn, uWSGI, waitress), without {name}"),
    "IPD006": (CRITICAL, "{name} in {where} is refused: {error}; the middleware cannot be built with it, so the app does not start", "correct {name} (see Configuration in the README)"),
    "IPD007": (WARNING, "{name} in {where} is not an ipdebug setting and is ignored{hint}", "rename or remove it; the settings are {known}"),
    "IPD010": (CRITICAL, "{path} is a werkzeug.debug.DebuggedApplication (evalex={evalex}): Werkzeug's debugger ({what}) for every client, whatever ipdebug decides", "remove DebuggedApplication from the app; ipdebug serves the debugger itself, only in a window"),
    "IPD011": (CRITICAL, "{path} is a Flask app with debug on (app.config['DEBUG'] is True): Werkzeug's debugger for every client under `flask run` or app.run(), and Flask's error handling changes", "set DEBUG to False (and unset FLASK_DEBUG) in production; debug with `ipdebug enable` instead"),
    "IPD012": (INFO, "ipdebug is not installed in {app}: no IPDebugMiddleware in the app or anything it wraps", "fine if gunicorn wraps each worker (-c python:ipdebug.gunicorn, or ipdebug.gunicorn.install in your config); otherwise wrap it: app.wsgi_app = IPDebugMiddleware(app.wsgi_app)"),
    "IPD013": (WARNING, "{app} is wrapped in {count} IPDebugMiddleware ({paths}): console requests reach the outer one, which does not hold the inner one's tracebacks, so the console fails", "wrap the app once (an app module that wraps itself needs no other wrapper)"),
    "IPD014": (CRITICAL, "importing {app} starts Werkzeug's development server (run_simple({host!r}, {port!r}, use_debugger={debugger})): an app.run() outside `if __name__ == '__main__':`", "move app.run() under `if __name__ == '__main__':` and serve the app with a production server"),
    "IPD015": (CRITICAL, "Werkzeug's development server runs here: {process} as {user}; it is not for production, and with debug on it serves Werkzeug's debugger to every client", "stop it and serve the app with a production server (gunicorn, uWSGI, waitress) wrapped in ipdebug"),
    "IPD016": (INFO, "the environment of {count} server process group(s) could not be read, e.g. {process} as {user}", "run doctor as root or as that user to check them"),
    "IPD017": (INFO, "{process} has other ipdebug settings than this shell ({names}): the app's settings were judged with this shell's", "run doctor with the app's environment (e.g. sudo -u APPUSER env $(cat /etc/APP.env) ipdebug doctor ...)"),
    "IPD020": (WARNING, "trusted_hosts {hosts} of {where} covers none of this server's names ({names}): debugger requests for them are refused ('Host ... is not trusted' in the log){tail}", "add the name operators type in the browser to IPDEBUG_TRUSTED_HOSTS (e.g. {name}); ignore this if {excuse}"),
    "IPD021": (CRITICAL, "{where} contains {entry!r}, every address: every client gets the debugger in a window, behind nothing but the PIN", "{fix}"),
    "IPD022": (CRITICAL, "trusted_proxies of {where} contains {entry!r}, every address: every client can write its own X-Forwarded-For and so choose its address", "list only your own reverse proxies in trusted_proxies (IPDEBUG_TRUSTED_PROXIES)"),
    "IPD023": (WARNING, "trusted_proxies of {where} is unset, but {evidence}: behind a proxy, ipdebug sees the proxy's address as every client's and ignores X-Forwarded-For", "set IPDEBUG_TRUSTED_PROXIES to your proxies' addresses (127.0.0.1 for one on this host), have them append X-Forwarded-For, and make the app reachable only through them"),
    "IPD024": (CRITICAL, "{source} contains {entry!r} and trusted_proxies of {where} is unset while {proxy} runs on this host: every client that comes through that proxy has the proxy's address and is allowed", "remove {entry} from allow and from ipdebug enable --allow, and set IPDEBUG_TRUSTED_PROXIES=127.0.0.1"),
    "IPD030": (CRITICAL, "the flag {flag} is refused: {problem}; the middleware treats it as off (no window) and logs why", "remove it (ipdebug disable), correct what the message says, and open a new window as the app's user (ipdebug enable)"),
    "IPD031": (WARNING, "the flag's directory {directory} {problem}: ipdebug enable refuses to write there, and the middleware refuses any flag in it", "chmod 700 {directory} and make the app's user its owner, or use another IPDEBUG_FLAG"),
    "IPD032": (WARNING, "a window is open for {left} more (until {until} UTC, reason {reason!r}, by {by})", "close it when done (ipdebug disable), and open short ones (--for 15m)"),
    "IPD033": (WARNING, "a window is open, but neither the app's allow (IPDEBUG_ALLOW) nor the window's (ipdebug enable --allow) lists an address: nobody gets the debugger", "open it again for your address: ipdebug enable --allow ssh (or --allow ADDRESS)"),
    "IPD034": (WARNING, "the console of window {window} is locked after {failures} wrong PINs: nobody can unlock it until the window ends", "open a new window for a new PIN (ipdebug enable); audit.log (pin.failure) says who tried"),
    "IPD035": (INFO, "no app process has reported window {window} yet (no window.opened in audit.log): processes notice a window at their next request", "load a page of the app; if it still does not appear, the app reads another flag or does not run ipdebug"),
    "IPD036": (WARNING, "the open window starts debugpy (ipdebug enable --attach debugpy): any local user can attach to it while it listens", "use it only on a host without untrusted local users, and close the window when done (ipdebug disable)"),
    "IPD037": (WARNING, "{directory} is {what}: ipdebug refuses to put its sockets there, so {effect}", "remove it (rm -r {directory}); ipdebug creates it again with mode 0700"),
    "IPD038": (WARNING, "the audit trail {path} {problem}", "make it a regular file of the app's user with mode 0600 (chmod 600 {path}), or remove it: the next event creates it"),
    "IPD039": (WARNING, "the flag {flag} is root's default: this runs as root, and an app running as another user reads the default flag of that user", "run ipdebug as the app's user (sudo -u APPUSER ipdebug ...), or set IPDEBUG_FLAG to one path for the app and the commands"),
    "IPD040": (WARNING, "{who} reads the flag {theirs} ({source}), but this command checks {ours}, which ipdebug enable here would write: windows opened here do not reach it", "use one flag for both: IPDEBUG_FLAG={theirs} for the app and the commands (or --flag {theirs})"),
    "IPD041": (WARNING, "the flag's directory {directory} belongs to {user}, but this runs as root: the flag's rules depend on who reads it, so it was not judged", "run doctor as that user: sudo -u {name} ipdebug doctor ..."),
    "IPD050": (WARNING, "Werkzeug {version} is installed, but this ipdebug was tested with {required}: the debugger internals it uses may have changed", "install a Werkzeug in that range: pip install '{required}'"),
}
# fmt: on

#: An open window with more time left than this is reported (IPD032).
LONG_WINDOW = 30 * 60.0
#: Where processes are looked for; ``None`` (or no such directory): nowhere.
PROC: str | None = "/proc"
#: Attributes through which WSGI wrappers hold the app they wrap (Flask's
#: ``wsgi_app``, Werkzeug's middlewares, whitenoise, ``functools.wraps``).
WRAPPED_ATTRIBUTES = ("app", "wsgi_app", "application", "_app", "__wrapped__")

_RANK = {CRITICAL: 0, WARNING: 1, INFO: 2}
_MAX_NODES = 64
_AUDIT_TAIL = 256 * 1024
_RELOADER = frozenset(("WERKZEUG_RUN_MAIN", "WERKZEUG_SERVER_FD"))
_RUNTIME = _RELOADER | {"FLASK_RUN_FROM_CLI"}
_PROXIES = frozenset(
    (
        "nginx",
        "haproxy",
        "apache2",
        "httpd",
        "caddy",
        "traefik",
        "envoy",
        "lighttpd",
        "h2o",
        "varnishd",
    )
)
_SERVERS = ("gunicorn", "uwsgi", "waitress", "mod_wsgi")
_LOCALHOST_RE = re.compile(r"(localhost|ip6-localhost|ip6-loopback)(\.localdomain)?")


@dataclass(frozen=True)
class Finding:
    """One problem: a stable ``id``, a ``severity`` (``critical`` makes the
    command exit 1), a ``message`` naming the bad value, and the ``fix``.
    """

    id: str
    severity: Severity
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }


def finding(check: str, severity: Severity | None = None, **values: object) -> Finding:
    """The :class:`Finding` of ``check``, its texts formatted with ``values``."""
    default, message, fix = CHECKS[check]
    return Finding(
        check, severity or default, message.format(**values), fix.format(**values)
    )


def known_variables() -> tuple[str, ...]:
    """``IPDEBUG_<SETTING>`` for every setting :func:`load_settings` reads."""
    names = inspect.signature(load_settings).parameters
    return tuple(f"IPDEBUG_{n.upper()}" for n in names if n != "environ")


# The environment


def check_environment(
    env: Mapping[str, str], where: str = "this shell's environment"
) -> list[Finding]:
    """Flask's and Werkzeug's debug switches, and ``IPDEBUG_*`` variables
    the middleware would reject or ignore (IPD001-IPD007).
    """
    found: list[Finding] = []
    debug = env.get("FLASK_DEBUG")
    if debug and debug.lower() not in ("0", "false", "no"):  # Flask's rule
        found.append(finding("IPD001", value=debug, where=where))
    flask_env = env.get("FLASK_ENV")
    if flask_env and flask_env.lower() == "development":
        old = _version("flask") < (2, 3)
        effect = (
            "the installed Flask (< 2.3) turns on debug mode with it"
            if old
            else "Flask >= 2.3 ignores it, but someone meant to run in development mode, and older Flask and other tools turn the debugger on with it"
        )
        severity = CRITICAL if old else None
        found.append(
            finding("IPD002", severity, value=flask_env, where=where, effect=effect)
        )
    pin = env.get("WERKZEUG_DEBUG_PIN")
    if pin == "off":  # exactly Werkzeug's test
        found.append(finding("IPD003", where=where))
    elif pin is not None and pin.replace("-", "").isdecimal():  # ditto
        found.append(finding("IPD004", where=where))
    for name in sorted(_RELOADER & env.keys())[:1]:
        found.append(finding("IPD005", name=name, value=env[name], where=where))
    known = known_variables()
    for name, value in sorted(env.items()):
        if not name.startswith("IPDEBUG_"):
            continue
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            found.append(
                finding(
                    "IPD007", name=name, where=where, hint=hint, known=", ".join(known)
                )
            )
            continue
        try:
            settings = load_settings(environ={name: value})
            if name == "IPDEBUG_FLAG":
                open_store(settings.flag)
        except (ConfigError, ImportError) as exc:
            found.append(finding("IPD006", name=name, where=where, error=exc))
    return found


# The app


class ServeCall(t.NamedTuple):
    """A call of Werkzeug's ``run_simple`` made while importing the app."""

    host: object
    port: object
    use_debugger: bool


def load_app(spec: str, *, cwd: str | None = None) -> tuple[object, list[ServeCall]]:
    """Import ``module:name`` or ``module:factory(literal args)`` as gunicorn
    does, with ``cwd`` (default: the current directory) first on
    ``sys.path``; ``module`` alone means ``module:application``, else
    ``module:app``. Werkzeug's ``run_simple`` is a stub during the import: it
    records each call (an ``app.run()`` at import time) and returns at once.
    What the module prints goes to standard error.

    :raises ConfigError: naming the spec and the import error; or, unchanged,
        the one ipdebug raised while the app was built (a bad setting).
    """
    import werkzeug
    import werkzeug.serving

    calls: list[ServeCall] = []

    def stub(
        hostname: object, port: object, app: object, *args: t.Any, **kwargs: t.Any
    ) -> None:
        debugger = kwargs.get("use_debugger", args[1] if len(args) > 1 else False)
        calls.append(ServeCall(hostname, port, bool(debugger)))

    real = werkzeug.serving.run_simple
    directory = os.getcwd() if cwd is None else cwd
    module_name, _, expression = spec.partition(":")
    sys.path.insert(0, directory)
    werkzeug.serving.run_simple = werkzeug.run_simple = stub  # type: ignore[assignment]
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keeps --json clean
            app = _evaluate(importlib.import_module(module_name), expression)
    except ConfigError:
        raise  # ipdebug refused the app's own settings: a finding, see run_checks
    except (Exception, SystemExit) as exc:
        error = f"cannot be loaded: {type(exc).__name__}: {exc}"
        raise ConfigError("APP_IMPORT_PATH", spec, error) from None
    finally:
        werkzeug.serving.run_simple = werkzeug.run_simple = real
        with contextlib.suppress(ValueError):
            sys.path.remove(directory)
    if not callable(app):
        raise ConfigError("APP_IMPORT_PATH", spec, "is not a WSGI application")
    return app, calls


def _evaluate(module: object, expression: str) -> object:
    if not expression:
        for name in ("application", "app"):
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError("neither 'application' nor 'app' is defined")
    node = ast.parse(expression.strip(), mode="eval").body
    if isinstance(node, ast.Name):
        return getattr(module, node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        return getattr(module, node.func.id)(*args, **kwargs)
    raise ValueError("expected a name, or a call with literal arguments")


def walk(app: object, label: str) -> list[tuple[str, object]]:
    """The app and everything it wraps, as ``(path, object)`` pairs, through
    :data:`WRAPPED_ATTRIBUTES` and ``DispatcherMiddleware.mounts``,
    breadth first, each object once, at most 64.
    """
    seen: set[int] = set()
    out: list[tuple[str, object]] = []
    todo = [(label, app)]
    while todo and len(out) < _MAX_NODES:
        path, obj = todo.pop(0)
        if inspect.ismethod(obj):  # Flask's own wsgi_app, a bound __call__
            obj = obj.__self__
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        out.append((path, obj))
        for attr in WRAPPED_ATTRIBUTES:
            child = _held(obj, attr)
            if callable(child):
                todo.append((f"{path}.{attr}", child))
        mounts = _held(obj, "mounts")
        if isinstance(mounts, dict):
            todo += [(f"{path}.mounts[{k!r}]", v) for k, v in mounts.items()]
    return out


def _held(obj: object, attr: str) -> object:
    """What ``obj`` holds in ``attr`` (in its ``__dict__`` or a slot), read
    without running properties or ``__getattr__``; ``None`` for a method of
    its class.
    """
    try:
        own = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        own = None
    if isinstance(own, dict) and attr in own:
        return own[attr]
    try:
        found = inspect.getattr_static(obj, attr)
    except AttributeError:
        return None
    if inspect.ismemberdescriptor(found):  # a __slots__ entry
        with contextlib.suppress(AttributeError):
            return found.__get__(obj, type(obj))
    return None


def check_app(
    app: object, label: str, served: Sequence[ServeCall] = ()
) -> tuple[list[Finding], list[IPDebugMiddleware]]:
    """An always-on Werkzeug debugger or Flask debug mode anywhere in the
    app, Werkzeug's server started at import, and whether (and how often)
    ipdebug wraps the app (IPD010-IPD014).

    :returns: the findings, and the middlewares found.
    """
    from werkzeug.debug import DebuggedApplication

    found: list[Finding] = []
    middlewares: list[tuple[str, IPDebugMiddleware]] = []
    flask = sys.modules.get("flask")  # only when the app imported it
    for path, obj in walk(app, label):
        if isinstance(obj, DebuggedApplication):
            what = "a Python console" if obj.evalex else "tracebacks with source code"
            found.append(finding("IPD010", path=path, evalex=obj.evalex, what=what))
        elif isinstance(obj, IPDebugMiddleware):
            middlewares.append((path, obj))
        elif flask is not None and isinstance(obj, flask.Flask) and obj.debug:
            found.append(finding("IPD011", path=path))
    for call in served:
        found.append(
            finding(
                "IPD014",
                app=label,
                host=call.host,
                port=call.port,
                debugger=call.use_debugger,
            )
        )
    if not middlewares:
        found.append(finding("IPD012", app=label))
    elif len(middlewares) > 1:
        paths = ", ".join(p for p, _ in middlewares)
        found.append(finding("IPD013", app=label, count=len(middlewares), paths=paths))
    return found, [m for _, m in middlewares]


# Settings


def this_host_names() -> list[str]:
    """This server's names (``gethostname``, ``getfqdn``, which may wait for
    DNS), without ``localhost`` and its variants.
    """
    names = dict.fromkeys(n.lower() for n in (socket.gethostname(), socket.getfqdn()))
    return [n for n in names if n and not _LOCALHOST_RE.fullmatch(n)]


def check_settings(
    settings: Settings, where: str, hostnames: Sequence[str]
) -> list[Finding]:
    """``trusted_hosts`` against this server's names, and an ``allow`` or
    ``trusted_proxies`` that covers every address (IPD020-IPD022).
    """
    found: list[Finding] = []
    hosts = settings.trusted_hosts
    if hostnames and not any(host_is_trusted(n, hosts) for n in hostnames):
        default = hosts == DEFAULT_TRUSTED_HOSTS
        found.append(
            finding(
                "IPD020",
                None if default else INFO,
                hosts=list(hosts),
                where=where,
                names=", ".join(hostnames),
                tail="; only an SSH tunnel to localhost works" if default else "",
                name=hostnames[-1],
                excuse="you use an SSH tunnel"
                if default
                else "operators use another name (a load balancer's)",
            )
        )
    allow = settings.allow.entries if settings.allow else ()
    for entry in _everyone(allow):
        fix = "list only the operators' addresses in allow (IPDEBUG_ALLOW)"
        found.append(finding("IPD021", where=f"allow of {where}", entry=entry, fix=fix))
    proxies = settings.trusted_proxies.entries if settings.trusted_proxies else ()
    for entry in _everyone(proxies):
        found.append(finding("IPD022", where=where, entry=entry))
    return found


def window_allow(entries: Iterable[str]) -> tuple[str, ...]:
    """A window's allowlist as the gate reads it (``::ffff:0:0/96`` is
    ``0.0.0.0/0``).
    """
    try:
        return Networks(entries, setting="--allow").entries
    except ConfigError:  # the flag store refuses such a window anyway
        return ()


def _everyone(entries: Iterable[str]) -> list[str]:
    return [e for e in entries if ipaddress.ip_network(e, strict=False).prefixlen == 0]


def _loopback(entries: Iterable[str]) -> str | None:
    for entry in entries:
        net = ipaddress.ip_network(entry, strict=False)
        if ipaddress.ip_address("127.0.0.1" if net.version == 4 else "::1") in net:
            return entry
    return None


def check_forwarding(
    settings: Settings,
    where: str,
    proxies: Sequence[str],
    records: Sequence[Mapping[str, object]],
    window_allow: Sequence[str] = (),
) -> list[Finding]:
    """``trusted_proxies`` unset while requests come through a proxy
    (IPD023), and, worse, with a loopback address allowed (IPD024).

    The evidence: a reverse proxy process on this host (``proxies``: their
    labels), or audit records marked ``"forwarded": true``. **Limits:** the
    audit trail has that field only where the middleware writes it (see the
    README); a proxy on another host (a load balancer) is not visible here.
    """
    if settings.trusted_proxies:
        return []
    evidence = [f"{p} runs on this host" for p in proxies[:1]]
    forwarded = [r for r in records if r.get("forwarded") is True]
    if forwarded:
        since = forwarded[0].get("time", "?")
        evidence.append(
            f"{len(forwarded)} requests in audit.log since {since} came with forwarding headers"
        )
    if not evidence:
        return []
    found = [finding("IPD023", where=where, evidence=" and ".join(evidence))]
    deployment = _loopback(settings.allow.entries if settings.allow else ())
    window = _loopback(window_allow)
    if proxies and (deployment or window):
        source = "allow" if deployment else "the open window's allowlist"
        entry = deployment or window
        found.append(
            finding("IPD024", source=source, entry=entry, where=where, proxy=proxies[0])
        )
    return found


# The flag and the files beside it


def check_user(location: str, *, from_default: bool) -> tuple[list[Finding], bool]:
    """Whether this process judges the flag as the app does: the flag's rules
    depend on who reads it (IPD039, IPD041).

    :returns: the findings, and whether the flag must be left unjudged (root
        looking at another user's directory).
    """
    found: list[Finding] = []
    if os.geteuid() != 0:
        return found, False
    if from_default:
        found.append(finding("IPD039", flag=location))
    directory = os.path.dirname(location)
    owner = 0
    if "://" not in location:
        with contextlib.suppress(OSError):
            owner = os.stat(directory).st_uid
    if owner:
        found.append(
            finding(
                "IPD041",
                directory=directory,
                user=_user(owner),
                name=_user(owner, bare=True),
            )
        )
    return found, bool(owner)


def check_flag(
    location: str, env: Mapping[str, str], *, deployment_allow: bool
) -> tuple[list[Finding], Window | None]:
    """The flag judged as the middleware judges it, and the open window
    (IPD030, IPD032, IPD033, IPD036; IPD021 for the window's allowlist).

    :param deployment_allow: whether the app has its own ``allow``.
    :returns: the findings, and the open window if there is one.
    """
    try:
        try:
            current = status(location, environ=env)
        except ConfigError:  # a bad IPDEBUG_MAX_WINDOW, reported as IPD006
            current = status(location, environ={})
    except Exception as exc:  # a store that cannot be reached at all
        problem = f"cannot be read: {type(exc).__name__}: {exc}"
        return [finding("IPD030", flag=location, problem=problem)], None
    if current.problem:
        return [finding("IPD030", flag=location, problem=current.problem)], None
    if not current.enabled or current.until is None:
        return [], None
    found: list[Finding] = []
    if current.remaining_s > LONG_WINDOW:
        until = f"{current.until:%Y-%m-%d %H:%M:%S}"
        left = format_duration(current.remaining_s)
        found.append(
            finding(
                "IPD032",
                left=left,
                until=until,
                reason=current.reason or "-",
                by=current.by or "-",
            )
        )
    if not current.allow and not deployment_allow:
        found.append(finding("IPD033"))
    for entry in _everyone(window_allow(current.allow)):
        fix = "close it now (ipdebug disable) and open one for your address: ipdebug enable --allow ssh"
        found.append(
            finding("IPD021", where="the open window's allowlist", entry=entry, fix=fix)
        )
    if getattr(current, "attach", None) == "debugpy":
        found.append(finding("IPD036"))
    try:
        window = open_store(location).load(time.time())
    except (FlagError, ConfigError, ImportError, OSError):
        window = None
    return found, window


_PRIVATE = {
    "relay": "console requests that reach another worker than the page's fail",
    "attach": "ipdebug enable --attach cannot be used",
}


def check_files(location: str) -> list[Finding]:
    """The flag's directory while there is no flag (the store checks it only
    when it reads one), the private socket directories and the audit trail
    beside it (IPD031, IPD037, IPD038). Nothing for a flag in Redis.
    """
    if "://" in location:
        return []
    found: list[Finding] = []
    directory = os.path.dirname(location)
    try:
        problem = unsafe_directory(os.stat(directory))
    except OSError:
        return found
    if problem and not os.path.lexists(location):
        found.append(finding("IPD031", directory=directory, problem=problem))
    for name, effect in _PRIVATE.items():
        path = state_directory(location, name)
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if not stat.S_ISDIR(st.st_mode):
                what = "not a directory"
            elif st.st_uid != os.geteuid() or mode & 0o077:
                what = f"mode {mode:04o}, owned by {_user(st.st_uid)}"
            else:
                continue
            found.append(finding("IPD037", directory=path, what=what, effect=effect))
    for name in ("audit.log", "audit.log.1"):
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            mode = stat.S_IMODE(st.st_mode)
            if not stat.S_ISREG(st.st_mode):
                problem = "is not a regular file: no event can be recorded in it"
            elif mode & 0o077:
                problem = f"has mode {mode:04o}: other users can read the console commands typed in windows, or write to it"
            else:
                continue
            found.append(finding("IPD038", path=path, problem=problem))
    return found


def read_audit(location: str, limit: int = _AUDIT_TAIL) -> list[dict[str, object]]:
    """The records in the last ``limit`` bytes of ``audit.log`` beside the
    flag; none for a flag in Redis, or when it cannot be read.
    """
    if "://" in location:
        return []
    path = os.path.join(os.path.dirname(location), "audit.log")
    try:
        with open(path, "rb") as file:
            start = max(0, os.fstat(file.fileno()).st_size - limit)
            file.seek(start)
            lines = file.read(limit).splitlines()
    except OSError:
        return []
    records = []
    for line in lines[1:] if start else lines:  # the first may be cut
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def check_window_use(
    location: str, window: Window, records: Sequence[Mapping[str, object]]
) -> list[Finding]:
    """A locked console, and an open window that no process has reported
    (IPD034, IPD035).
    """
    found: list[Finding] = []
    short = window.id[:8]
    with contextlib.suppress(Exception):
        failures = open_store(location).pin_failures(window.id)
        if failures >= MAX_PIN_FAILURES:
            found.append(finding("IPD034", window=short, failures=failures))
    seen = any(
        r.get("event") == "window.opened" and r.get("window") == short for r in records
    )
    if "://" not in location and not seen:
        found.append(finding("IPD035", window=short))
    return found


# Processes


@dataclass(frozen=True)
class Process:
    """Processes of this host with the same user, command line, directory
    and environment (a server's master and its workers).
    """

    pids: tuple[int, ...]
    uid: int
    argv: tuple[str, ...]
    cwd: str | None
    #: ``None`` when not read (reverse proxies) or not readable.
    environ: Mapping[str, str] | None
    #: ``"werkzeug"``, ``"server"``, ``"proxy"`` or ``"python"``.
    kind: str

    @property
    def label(self) -> str:
        pids = ", ".join(map(str, self.pids[:5])) + (", ..." * (len(self.pids) > 5))
        command = " ".join(self.argv)
        command = command if len(command) <= 120 else command[:117] + "..."
        return f"{command!r} (pid{'s' * (len(self.pids) > 1)} {pids})"


def classify(argv: Sequence[str]) -> str | None:
    """``"werkzeug"`` for Werkzeug's development server (``flask run``,
    ``python -m werkzeug.serving``, django-extensions' ``runserver_plus``),
    ``"server"`` for a WSGI server, ``"proxy"`` for a reverse proxy,
    ``"python"`` for another Python process, else ``None``.
    """
    words = [os.path.basename(a.split(" ")[0]).rstrip(":").lower() for a in argv]
    if not words:
        return None
    if "werkzeug.serving" in argv or "runserver_plus" in argv:
        return "werkzeug"
    if "flask" in words[:3] and "run" in argv:
        return "werkzeug"
    if words[0] in _PROXIES:
        return "proxy"
    if any(w.startswith(_SERVERS) for w in words[:3]):
        return "server"
    return "python" if words[0].startswith("python") else None


def scan_processes(proc: str) -> list[Process]:
    """The processes under ``proc`` (``/proc``) that :func:`classify`
    recognises, grouped. Environments are read for all but reverse proxies;
    other users' are unreadable unless this runs as root.
    """
    try:
        names = [n for n in os.listdir(proc) if n.isdigit() and int(n) != os.getpid()]
    except OSError:
        return []
    groups: dict[tuple[object, ...], tuple[Process, list[int]]] = {}
    for name in names:
        base = os.path.join(proc, name)
        try:
            argv = tuple(
                os.fsdecode(a) for a in _read(base, "cmdline").split(b"\0") if a
            )
            uid = os.stat(base).st_uid
        except OSError:
            continue
        kind = classify(argv)
        if kind is None:
            continue
        environ: dict[str, str] | None = None
        cwd: str | None = None
        if kind != "proxy":
            with contextlib.suppress(OSError):
                pairs = [e.partition(b"=") for e in _read(base, "environ").split(b"\0")]
                environ = {os.fsdecode(k): os.fsdecode(v) for k, _, v in pairs if k}
            with contextlib.suppress(OSError):
                cwd = os.readlink(os.path.join(base, "cwd"))
        # A reloader and its child differ only in the reloader's variables.
        same = None if environ is None else sorted(environ.items() - _reloader(environ))
        key = (uid, argv, cwd, None if same is None else tuple(same))
        first, pids = groups.get(key, (Process((), uid, argv, cwd, environ, kind), []))
        if environ and _reloader(environ):
            first = replace(first, environ=environ)
        groups[key] = (first, [*pids, int(name)])
    return sorted(
        (replace(p, pids=tuple(sorted(pids))) for p, pids in groups.values()),
        key=lambda p: p.pids,
    )


def _reloader(environ: Mapping[str, str]) -> set[tuple[str, str]]:
    """What a reloader's child inherits that the reloader set at run time."""
    return {(k, v) for k, v in environ.items() if k in _RUNTIME}


def _read(base: str, name: str) -> bytes:
    with open(os.path.join(base, name), "rb") as file:
        return file.read(1 << 20)


def check_processes(
    processes: Sequence[Process],
    env: Mapping[str, str],
    flag: str,
    app_module: str | None = None,
    app_file: str | None = None,
) -> list[Finding]:
    """Werkzeug's development server, the environment of WSGI servers, and
    the flag those that use ipdebug read (IPD015-IPD017, IPD040, and the
    environment checks' ids).

    **Limits:** a process shows the environment it was started with, not
    what it set itself later; other users' processes are unreadable unless
    this runs as root; servers in a container (another PID namespace) or on
    another host are not seen. ``app.run()`` without the reloader looks like
    any ``python app.py``: it is recognised only when the script (or ``-m``
    module) is the app's module and its ``__main__`` block calls ``run``.
    """
    found: list[Finding] = []
    unreadable = []
    serves = app_file is not None and _main_block_serves(app_file)
    for p in processes:
        reloader = bool(_RELOADER & set(p.environ or ()))
        dev = p.kind == "werkzeug" or reloader
        if dev or (serves and _runs(p, app_module, app_file)):
            dev = True
            found.append(finding("IPD015", process=p.label, user=_user(p.uid)))
        if p.kind == "proxy" or (p.kind == "python" and not dev):
            continue
        if p.environ is None:
            unreadable.append(p)
            continue
        where = f"the environment of {p.label}"
        found += [f for f in check_environment(p.environ, where) if f.id != "IPD005"]
        if any(k.startswith("IPDEBUG_") for k in p.environ) or any(
            "ipdebug" in a for a in p.argv
        ):
            found += _compare_settings(p, p.environ, env, flag)
    if unreadable:
        first = unreadable[0]
        found.append(
            finding(
                "IPD016",
                count=len(unreadable),
                process=first.label,
                user=_user(first.uid),
            )
        )
    return found


def _compare_settings(
    p: Process, theirs: Mapping[str, str], ours: Mapping[str, str], flag: str
) -> list[Finding]:
    """A server using ipdebug with other settings, or another flag, than
    this shell (IPD017, IPD040).
    """
    found: list[Finding] = []
    keys = {k for k in (*theirs, *ours) if k.startswith("IPDEBUG_")}
    keys.discard("IPDEBUG_FLAG")  # compared as resolved paths below
    differ = sorted(k for k in keys if theirs.get(k) != ours.get(k))
    if differ:
        found.append(finding("IPD017", process=p.label, names=", ".join(differ)))
    value = theirs.get("IPDEBUG_FLAG") or default_flag(p.uid)
    if value != flag and ("://" in value or os.path.isabs(value)):
        source = (
            "its IPDEBUG_FLAG"
            if theirs.get("IPDEBUG_FLAG")
            else f"the default of {_user(p.uid)}, unless the app passes flag= in code"
        )
        found.append(
            finding("IPD040", who=p.label, theirs=value, source=source, ours=flag)
        )
    return found


def _runs(p: Process, module: str | None, path: str | None) -> bool:
    """Whether ``p`` is ``python [options] path`` or ``python -m module``."""
    if p.kind != "python":
        return False
    args = iter(p.argv[1:])
    for arg in args:
        if arg == "-m":
            return module is not None and next(args, None) == module
        if arg == "-c":
            return False
        if not arg.startswith("-"):
            script = os.path.realpath(os.path.join(p.cwd or "/", arg))
            return path is not None and script == os.path.realpath(path)
    return False


def _main_block_serves(path: str) -> bool:
    """Whether the ``if __name__ == "__main__":`` block of ``path`` calls
    ``run_simple`` or a ``run`` method (``app.run()``; not ``asyncio.run``).
    """
    try:
        with open(path, "rb") as file:
            tree = ast.parse(file.read())
    except (OSError, SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            for call in ast.walk(node):
                if isinstance(call, ast.Call):
                    name = ast.unparse(call.func)
                    if name.endswith(("run_simple", ".run")) and name != "asyncio.run":
                        return True
    return False


# Versions and users


def check_werkzeug() -> list[Finding]:
    """Werkzeug outside the range this ipdebug declares (IPD050)."""
    try:
        requires = importlib.metadata.requires("ipdebug") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    installed = _version("werkzeug")
    for required in requires:
        if not re.match(r"werkzeug\b", required, re.IGNORECASE):
            continue
        for op, text in re.findall(r"(>=|<=|==|<|>)\s*([0-9][0-9.]*)", required):
            bound = tuple(int(p) for p in text.split(".") if p)
            compare = {
                ">=": installed >= bound,
                "<=": installed <= bound,
                "==": installed == bound,
                "<": installed < bound,
                ">": installed > bound,
            }
            if not compare[op]:
                version = ".".join(map(str, installed))
                return [finding("IPD050", version=version, required=required)]
    return []


def _version(dist: str) -> tuple[int, ...]:
    try:
        text = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ()
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def _user(uid: int, *, bare: bool = False) -> str:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid) if bare else f"uid {uid}"
    return name if bare else f"{name} (uid {uid})"


# Everything


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
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda f: (_RANK[f.severity], f.id))


def report_json(
    findings: Sequence[Finding], *, app: str | None, flag: str
) -> dict[str, object]:
    """``{"findings": [...], "critical": n, "warnings": n, "info": n,
    "app": ..., "flag": ...}``.
    """
    return {
        "findings": [f.to_json() for f in findings],
        "critical": sum(f.severity == CRITICAL for f in findings),
        "warnings": sum(f.severity == WARNING for f in findings),
        "info": sum(f.severity == INFO for f in findings),
        "app": app,
        "flag": flag,
    }


def report_text(findings: Sequence[Finding], *, app: str | None, flag: str) -> str:
    """One block per finding (``CRITICAL IPD001 message``, then ``  fix:
    ...``) and a summary line naming what was checked.
    """
    lines: list[str] = []
    for f in findings:
        lines += [f"{f.severity.upper()} {f.id} {f.message}", f"  fix: {f.fix}"]
    checked = f"flag {flag}; " + (
        f"app {app}" if app else "app not checked: give APP_IMPORT_PATH, e.g. wsgi:app"
    )
    if not findings:
        return f"ipdebug doctor: no problems found ({checked})"
    counts = report_json(findings, app=app, flag=flag)
    lines.append(
        f"ipdebug doctor: {counts['critical']} critical, {counts['warnings']} "
        f"warning(s), {counts['info']} info ({checked})"
    )
    return "\n".join(lines)
