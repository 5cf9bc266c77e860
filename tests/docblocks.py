"""The documentation's code blocks (``docs/*.md``) by name: each one is
registered here with how it starts, and run or checked by the test its
comment names (``tests/test_docs.py`` unless another is named).
``tests/test_docs.py`` fails on a block that is not registered.
"""

from __future__ import annotations

import re
from pathlib import Path

from .recipes import COMMAND_LANGUAGES, DOCS, find

#: Each command block (``sh`` or ``console``): name -> (page, how it starts).
COMMANDS = {
    "install-checkout": ("quickstart", "pip install -e '.[flask,gunicorn]'"),
    "install-wheel": ("quickstart", "pip wheel --no-deps -w dist ."),
    "gunicorn": (
        "gunicorn",
        "IPDEBUG_ALLOW=203.0.113.7 IPDEBUG_TRUSTED_HOSTS=app.example.com \\\n    gunicorn -c python:ipdebug.gunicorn",
    ),
    "nginx": (
        "nginx",
        "IPDEBUG_TRUSTED_PROXIES=127.0.0.1 IPDEBUG_TRUSTED_HOSTS=app.example.com IPDEBUG_ALLOW=203.0.113.0/24",
    ),
    "waitress": (
        "waitress",
        "IPDEBUG_ALLOW=203.0.113.0/24 IPDEBUG_TRUSTED_HOSTS=app.example.com \\\n    waitress-serve",
    ),
    "uwsgi": (
        "uwsgi",
        "IPDEBUG_ALLOW=203.0.113.0/24 IPDEBUG_TRUSTED_HOSTS=app.example.com \\\n    uwsgi ",
    ),
    "redis": ("fleet", "export IPDEBUG_FLAG='redis://"),
    "attach": ("attach", "ipdebug enable --for 15m --allow ssh --attach pdb"),
    # Run by ./scripts/test (CI) as written: its corners and build parts.
    "corners": ("versions", ".venv/bin/nox -s lowest fast-3.13"),
    "release-build": (
        "versions",
        ".venv/bin/python -m build && .venv/bin/twine check --strict",
    ),
    # Run line by line by tests/test_capture.py's walkthrough test.
    "capture": ("capture", "ipdebug enable --for 15m --allow ssh --capture"),
    # Run by tests/test_asgi_readme.py.
    "asgi-uvicorn": ("asgi", "IPDEBUG_ALLOW=127.0.0.1 uvicorn --workers 4"),
    "asgi-gunicorn": (
        "asgi",
        "IPDEBUG_ALLOW=127.0.0.1 gunicorn -c python:ipdebug.gunicorn -w 4 -k uvicorn_worker",
    ),
    "asgi-enable": ("asgi", "ipdebug enable --for 15m --allow 127.0.0.1"),
    "asgi-one-walk": (
        "asgi",
        "IPDEBUG_TRUSTED_PROXIES=127.0.0.1 uvicorn --no-proxy-headers",
    ),
}

#: Each Python block: name -> (page, how it starts).
PYTHON = {
    "flask-forms": ("flask", "app = IPDebugMiddleware(flask_app)"),
    "gunicorn-conf": ("gunicorn", "import ipdebug.gunicorn"),
    "django-wsgi": ("django", "# wsgi.py\nimport os"),
    "django-settings": ("django", "# settings.py"),
    # Run by tests/test_asgi_readme.py.
    "fastapi": ("asgi", "# main.py\nfrom fastapi import FastAPI"),
}

#: Every other block: name -> (page, language, how it starts).
OTHER = {
    "synopsis": ("cli", "text", "ipdebug enable ["),
    "doctor-synopsis": ("doctor", "text", "ipdebug doctor ["),
    "nginx-location": ("nginx", "nginx", "location / {"),
    "acl": ("fleet", "text", "ACL SETUSER"),
    "paste-ini": ("paste", "ini", "[pipeline:main]"),
}


def page(name: str) -> Path:
    """The documentation's page ``name`` (``docs/<name>.md``)."""
    return DOCS / f"{name}.md"


def block(name: str) -> str:
    """The command block ``name`` of :data:`COMMANDS`, as written."""
    where, start = COMMANDS[name]
    return find(page(where), COMMAND_LANGUAGES, start)


def python(name: str) -> str:
    """The Python block ``name`` of :data:`PYTHON`, as written."""
    where, start = PYTHON[name]
    return find(page(where), ("python",), start)


def other(name: str) -> str:
    """The block ``name`` of :data:`OTHER`, as written."""
    where, language, start = OTHER[name]
    return find(page(where), (language,), start)


def registered(path: Path, language: str, text: str) -> bool:
    """Whether a block of the page ``path`` is in one of the registries."""
    name = path.stem
    if language in COMMAND_LANGUAGES:
        return any(p == name and text.startswith(s) for p, s in COMMANDS.values())
    if language == "python":
        return any(p == name and text.startswith(s) for p, s in PYTHON.values())
    return any(
        p == name and lang == language and text.startswith(s)
        for p, lang, s in OTHER.values()
    )


def asgi_blocks(kind: str) -> list[str]:
    """The ``kind`` blocks (``sh``, ``python``) of the ASGI page, in order,
    as ``tests/test_asgi_readme.py`` runs them.
    """
    return re.findall(rf"```{kind}\n(.*?)```", page("asgi").read_text(), re.S)
