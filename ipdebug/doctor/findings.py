"""The catalogue of ``ipdebug doctor``'s checks and the :class:`Finding`
each one returns.

Every check has a stable id in :data:`CHECKS` (``IPD001``), a default
severity, and the texts of its message and fix, formatted with the values
the check passes to :func:`finding`:

.. code-block:: python

    finding("IPD001", value="1", where="this shell's environment")
"""

from __future__ import annotations

import pwd
import typing as t
from dataclasses import dataclass

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
    "IPD006": (CRITICAL, "{name} in {where} is refused: {error}; the middleware cannot be built with it, so the app does not start", "correct {name} (see Configuration in the documentation)"),
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
    "IPD021": (CRITICAL, "{where} contains {entry!r}, every address in practice (a network wider than /8): every client gets the debugger in a window, behind nothing but the PIN", "{fix}"),
    "IPD022": (CRITICAL, "trusted_proxies of {where} contains {entry!r}, every address in practice (a network wider than /8): every client can write its own X-Forwarded-For and so choose its address", "list only your own reverse proxies in trusted_proxies (IPDEBUG_TRUSTED_PROXIES)"),
    "IPD023": (WARNING, "trusted_proxies of {where} is unset, but {evidence}: behind a proxy, ipdebug sees the proxy's address as every client's and ignores X-Forwarded-For", "set IPDEBUG_TRUSTED_PROXIES to your proxies' addresses (127.0.0.1 for one on this host), have them append X-Forwarded-For, and make the app reachable only through them"),
    "IPD024": (CRITICAL, "{source} contains {entry!r} and trusted_proxies of {where} is unset while {proxy} runs on this host: every client that comes through that proxy has the proxy's address and is allowed", "remove {entry} from allow and from ipdebug enable --allow, and set IPDEBUG_TRUSTED_PROXIES=127.0.0.1"),
    "IPD025": (WARNING, "{entry!r} is in {source} and in trusted_proxies of {where} ({proxy!r}): a request from it is taken for a proxy's and denied unless it carries X-Forwarded-For, so that address itself never gets the debugger (and nothing says so at INFO level)", "if no proxy runs in front of the app, unset IPDEBUG_TRUSTED_PROXIES; if {entry} is your proxy, remove it from {source}: clients behind it are matched by the address it appends"),
    "IPD026": (WARNING, "trusted_proxies of {where} is set, but {count} request(s) from {peers} (a trusted proxy) came without a forwarding header (audit.log since {since}) and no request in audit.log carried one: the app looks reached directly, and each such request is denied", "if no proxy runs in front of the app, unset IPDEBUG_TRUSTED_PROXIES; otherwise have the proxy append X-Forwarded-For (nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for) and make the app reachable only through it; ignore this for a load balancer's health checks"),
    "IPD027": (CRITICAL, "{process} rewrites the client address from X-Forwarded-For for peers in --forwarded-allow-ips {allow!r}, every address: every client writes its own X-Forwarded-For and so chooses the address ipdebug's ASGI adapter sees", "run uvicorn with --no-proxy-headers and set IPDEBUG_TRUSTED_PROXIES to your proxies, or list only your proxies in --forwarded-allow-ips (FORWARDED_ALLOW_IPS)"),
    "IPD028": (WARNING, "{process} rewrites the client address from X-Forwarded-For (proxy headers on, --forwarded-allow-ips {allow!r}) and trusted_proxies of {where} ({proxies}) walks it again: two walks that agree only while uvicorn trusts no more than ipdebug", "run uvicorn with --no-proxy-headers so that ipdebug's walk is the only one (see ASGI in the documentation)"),
    "IPD030": (CRITICAL, "the flag {flag} is refused: {problem}; the middleware treats it as off (no window) and logs why", "remove it (ipdebug disable), correct what the message says, and open a new window as the app's user (ipdebug enable)"),
    "IPD031": (WARNING, "the flag's directory {directory} {problem}: ipdebug enable refuses to write there, and the middleware refuses any flag in it", "use a directory of the app's user that only it can write (chmod 700 {directory}), or set IPDEBUG_FLAG to a path in one"),
    "IPD032": (WARNING, "a window is open for {left} more (until {until} UTC, reason {reason!r}, by {by})", "close it when done (ipdebug disable), and open short ones (--for 15m)"),
    "IPD033": (WARNING, "a window is open, but neither the app's allow (IPDEBUG_ALLOW) nor the window's (ipdebug enable --allow) lists an address: nobody gets the debugger", "open it again for your address: ipdebug enable --allow ssh (or --allow ADDRESS)"),
    "IPD034": (WARNING, "the console of window {window} is locked after {failures} wrong PINs: nobody can unlock it until the window ends", "open a new window for a new PIN (ipdebug enable); audit.log (pin.failure) says who tried"),
    "IPD035": (INFO, "no app process has reported window {window} yet (no window.opened in audit.log): processes notice a window at their next request", "load a page of the app; if it still does not appear, the app reads another flag or does not run ipdebug"),
    "IPD036": (WARNING, "the open window starts debugpy (ipdebug enable --attach debugpy): any local user can attach to it while it listens", "use it only on a host without untrusted local users, and close the window when done (ipdebug disable)"),
    "IPD037": (WARNING, "{directory} {what}: ipdebug refuses to listen on or connect to sockets there, so {effect}", "remove it (rm -r {directory}); ipdebug creates it again with mode 0700"),
    "IPD038": (WARNING, "the audit trail {path} {problem}", "make it a regular file of the app's user with mode 0600 (chmod 600 {path}), or remove it: the next event creates it"),
    "IPD039": (WARNING, "the flag {flag} is root's default: this runs as root, and an app running as another user reads the default flag of that user", "run ipdebug as the app's user (sudo -u APPUSER ipdebug ...), or set IPDEBUG_FLAG to one path for the app and the commands"),
    "IPD040": (WARNING, "{who} reads the flag {theirs} ({source}), but this command checks {ours}, which ipdebug enable here would write: windows opened here do not reach it", "use one flag for both: IPDEBUG_FLAG={theirs} for the app and the commands (or --flag {theirs})"),
    "IPD041": (WARNING, "the flag's directory {directory} belongs to {user}, but this runs as root: the flag's rules depend on who reads it, so it was not judged", "run doctor as that user: sudo -u {name} ipdebug doctor ..."),
    "IPD042": (WARNING, "window {window} has been open for {age} ({left} left) and {activity}: it is open longer than it is used", "close it now (ipdebug disable); opening a new one takes seconds when it is needed again"),
    "IPD060": (WARNING, "the open window captures every client's unhandled errors (ipdebug enable --capture) and has {left} left: other clients' data stays in memory, open to the console, until it ends", "close it when you have the error you need (ipdebug disable), and open capturing windows for a few minutes (--for 15m)"),
    "IPD050": (WARNING, "Werkzeug {version} is installed, but this ipdebug was tested with {required}: the debugger internals it uses may have changed", "install a Werkzeug in that range: pip install '{required}'"),
}
# fmt: on

#: The order of the report: most severe first.
RANK = {CRITICAL: 0, WARNING: 1, INFO: 2}


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


def user_name(uid: int, *, bare: bool = False) -> str:
    """``name (uid N)`` for messages; ``name`` alone when ``bare``."""
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid) if bare else f"uid {uid}"
    return name if bare else f"{name} (uid {uid})"
