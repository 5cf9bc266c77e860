"""The environment and the installed software: Flask's and Werkzeug's debug
switches, ``IPDEBUG_*`` variables the middleware would reject or ignore, and
a Werkzeug outside the range this ipdebug was tested with (IPD001-IPD007,
IPD050).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import re
from collections.abc import Mapping

from ..config import load_settings
from ..errors import ConfigError
from ..stores import open_store
from .findings import CRITICAL, Finding, finding

#: Variables Werkzeug's development server (its reloader) sets.
RELOADER_VARIABLES = frozenset(("WERKZEUG_RUN_MAIN", "WERKZEUG_SERVER_FD"))


def known_variables() -> tuple[str, ...]:
    """``IPDEBUG_<SETTING>`` for every setting :func:`load_settings` reads."""
    names = inspect.signature(load_settings).parameters
    return tuple(f"IPDEBUG_{n.upper()}" for n in names if n != "environ")


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
    for name in sorted(RELOADER_VARIABLES & env.keys())[:1]:
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


# Installed versions


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
