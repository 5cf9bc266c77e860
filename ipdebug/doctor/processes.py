"""The processes of this host (``/proc``): Werkzeug's development server,
reverse proxies, and the environment of WSGI servers and the flag they read
(IPD015-IPD017, IPD040, and the environment checks' ids).
"""

from __future__ import annotations

import ast
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..config import default_flag
from .environment import RELOADER_VARIABLES, check_environment
from .findings import Finding, finding, user_name

#: What a reloader (Werkzeug's, or ``flask run``'s) sets in its child.
_RUNTIME = RELOADER_VARIABLES | {"FLASK_RUN_FROM_CLI"}
#: Reverse proxies, and WSGI servers, by the name of their program.
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
_SERVERS = (
    "gunicorn",
    "uwsgi",
    "waitress",
    "mod_wsgi",
    "uvicorn",
    "hypercorn",
    "daphne",
)


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
        reloader = bool(RELOADER_VARIABLES & set(p.environ or ()))
        dev = p.kind == "werkzeug" or reloader
        if dev or (serves and _runs(p, app_module, app_file)):
            dev = True
            found.append(finding("IPD015", process=p.label, user=user_name(p.uid)))
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
                user=user_name(first.uid),
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
            else f"the default of {user_name(p.uid)}, unless the app passes flag= in code"
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
