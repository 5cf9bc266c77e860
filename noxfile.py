"""The compatibility matrix: ``nox -l`` lists the sessions.

- ``fast-3.10`` to ``fast-3.13``: the fast suite (no real servers, browser
  or fuzzing) on each supported Python, with the newest dependencies.
- ``lowest``: the fast suite on the lowest supported Python with the lowest
  supported version of every direct dependency (tests/constraints-lowest.txt,
  the floors in pyproject.toml).
- ``full``: every test (real servers, Chromium, fuzzers) once, on the
  default Python.

Interpreters are looked up on ``PATH`` and in pyenv's versions; a session
whose Python is missing is skipped with a message naming it (pass
``--error-on-missing-interpreters`` to fail instead, as CI does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
FAST = ["-m", "not server and not browser and not fuzz"]
# Test dependencies the fast suite does not use: the real-server and browser
# drivers (uWSGI compiles from source), the linters and the packaging tools.
NOT_FOR_FAST = {"uwsgi", "playwright", "mypy", "ruff", "django-stubs", "nox", "twine"}

nox.options.sessions = [*(f"fast-{v}" for v in PYTHONS), "lowest"]
nox.options.error_on_missing_interpreters = False
nox.options.reuse_venv = "yes"


def _pyenv_paths() -> list[str]:
    """The ``bin`` folders of pyenv's interpreters, so that nox finds
    ``python3.10`` there when pyenv's shims do not provide it.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found: dict[str, str] = {}
    for folder in sorted((root / "versions").glob("3.*"), reverse=True):
        minor = ".".join(folder.name.split(".")[:2])
        if (folder / "bin" / f"python{minor}").exists():
            found.setdefault(minor, str(folder / "bin"))
    return list(found.values())


os.environ["PATH"] = os.pathsep.join([*_pyenv_paths(), os.environ.get("PATH", "")])


def _fast_requirements() -> list[str]:
    """The ``test`` extra of pyproject.toml without ``NOT_FOR_FAST``."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        extras = tomllib.load(file)["project"]["optional-dependencies"]
    return [
        requirement
        for requirement in extras["test"]
        if _name(requirement) not in NOT_FOR_FAST
    ]


def _name(requirement: str) -> str:
    for stop in "<>=!~;[ ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower()


def _pytest(session: nox.Session, *args: str) -> None:
    session.run(
        "python", "-m", "pytest", "-p", "no:cacheprovider", *args, *session.posargs
    )


@nox.session(python=PYTHONS)
def fast(session: nox.Session) -> None:
    """The fast suite with the newest dependencies."""
    session.install("--prefer-binary", "--upgrade", "-e", ".", *_fast_requirements())
    _pytest(session, *FAST)


@nox.session(python=PYTHONS[0])
def lowest(session: nox.Session) -> None:
    """The fast suite with the lowest supported dependencies."""
    constraints = str(ROOT / "tests" / "constraints-lowest.txt")
    # quart's floor needs Werkzeug >= 3.0: not in the lowest profile.
    requirements = [r for r in _fast_requirements() if _name(r) != "quart"]
    session.install("--prefer-binary", "-c", constraints, "-e", ".", *requirements)
    _pytest(session, *FAST)


@nox.session(python=False)
def full(session: nox.Session) -> None:
    """Every test, in the project's .venv (``./scripts/test`` makes it)."""
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        session.skip("no .venv: run ./scripts/test once, which creates it")
    # -m "": every test, not pyproject's quick default.
    session.run(str(python), "-m", "pytest", "-m", "", *session.posargs, external=True)
