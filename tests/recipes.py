"""Reading and running the command blocks of the README and of the
documentation's pages (``docs/*.md``), for ``tests/test_readme.py`` and
``tests/test_docs.py``.

A block is a fenced block (```` ```sh ````), read as written; the tests swap
only ports, paths and addresses for loopback ones, and say which. The app the
recipes name (``myapp``) is :data:`MYAPP`, a small Flask app with a failing
view, written beside them.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

from .servers import Reply, request, stop, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

#: The languages of command blocks: each one must be run or checked by a test.
COMMAND_LANGUAGES = ("sh", "console")

HOST = "app.example.com"

VENV_BIN = str(Path(sys.executable).parent)

#: The app the recipes name: a Flask app whose view module imports neither
#: ``request`` nor ``g`` (the console offers them anyway).
MYAPP = textwrap.dedent(
    """
    from flask import Flask

    app = Flask("myapp")


    @app.route("/")
    def index():
        return "index"


    @app.route("/fail")
    def fail():
        basket = {"apples": 3, "pears": 0}
        return str(basket["apples"] / basket["pears"])


    @app.errorhandler(500)
    def sorry(error):
        return "our own sorry page", 500
    """
)

#: :data:`MYAPP` wrapped in its own module, for servers without a hook.
WRAPPED_APP = MYAPP + textwrap.dedent(
    """

    from ipdebug import IPDebugMiddleware

    application = IPDebugMiddleware(app)
    """
)


def fenced(path: Path) -> list[tuple[str, str]]:
    """Every fenced block of a Markdown file: (language, text). MyST
    directives (```` ```{toctree} ````) have their name in braces as the
    language.
    """
    text = path.read_text()
    return re.findall(r"^```(\S*)[^\n]*\n(.*?)^```$", text, flags=re.M | re.S)


def pages() -> list[Path]:
    """The documentation's pages."""
    return sorted(DOCS.glob("*.md"))


def find(path: Path, languages: tuple[str, ...], start: str) -> str:
    """The one block of ``path`` in one of ``languages`` that starts with
    ``start``.
    """
    found = [t for lang, t in fenced(path) if lang in languages and t.startswith(start)]
    assert len(found) == 1, f"{path.name} has {len(found)} blocks starting {start!r}"
    return found[0]


def unregistered(path: Path, starts: list[str]) -> list[str]:
    """The command blocks of ``path`` that start with none of ``starts``."""
    return [
        text
        for lang, text in fenced(path)
        if lang in COMMAND_LANGUAGES and not any(text.startswith(s) for s in starts)
    ]


def environment(tmp_path: Path, path: str, **extra: str) -> dict[str, str]:
    """A clean environment: ``path`` first on PATH, a home and a temporary
    directory inside ``tmp_path``, the flag there too (a path swap: the
    documented default is the app user's home).
    """
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return {
        "PATH": f"{path}:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(temp),
        "LANG": "C.UTF-8",
        "IPDEBUG_FLAG": str(tmp_path / "state" / "flag.json"),
        **extra,
    }


def run(command: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    """Run a block (or a line of one) with bash; return its output."""
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def serve(
    command: str, cwd: Path, env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server block in its own session until the test is done."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_for_port(port, timeout=60, process=process)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}:\n{log.read_text()}") from None
        yield process
    finally:
        stop(process)


def debugger_page(port: int, source: str = "127.0.0.1", **headers: str) -> Reply:
    """The failing page, once the window is seen (within about a second).

    Call it after ``ipdebug enable``. It returns after more than a second:
    by then every worker re-reads the flag at its next request, so the
    console requests that follow may reach any worker.
    """
    start = time.monotonic()
    reply = None
    for _ in range(100):
        reply = request(port, "/fail", source=source, headers={"Host": HOST, **headers})
        if "__debugger__" in reply.text:
            time.sleep(max(0.0, 1.1 - (time.monotonic() - start)))
            return reply
        time.sleep(0.1)
    raise AssertionError(f"no debugger page: {reply}")


def console(
    port: int,
    page: Reply,
    pin: str,
    command: str,
    source: str = "127.0.0.1",
    **headers: str,
) -> str:
    """Unlock the console with ``pin`` and run ``command`` in the failing
    frame, as Werkzeug's JavaScript does.
    """
    secret = re.search(r'SECRET = "([^"]+)"', page.text)
    frame = re.findall(r'<div class="frame" id="frame-(\d+)">', page.text)
    assert secret and frame
    auth = request(
        port,
        f"/fail?__debugger__=yes&cmd=pinauth&pin={pin}&s={secret.group(1)}",
        source=source,
        headers={"Host": HOST, **headers},
    )
    assert json.loads(auth.body) == {"auth": True, "exhausted": False}
    cookie = auth.header("Set-Cookie")
    assert cookie
    query = f"__debugger__=yes&cmd={command}&frm={frame[-1]}&s={secret.group(1)}"
    reply = request(
        port,
        f"/fail?{query}",
        source=source,
        headers={"Host": HOST, "Cookie": cookie.split(";")[0], **headers},
    )
    assert reply.status == 200, reply
    return reply.text


def project(tmp_path: Path) -> Path:
    """A directory with the recipes' app module, ``myapp.py``."""
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "myapp.py").write_text(MYAPP)
    return directory


def enable_line(text: str) -> str:
    """The command of a ``console`` block's first line, without ``sudo -u
    app`` (the tests run as one user, who is also "the app's").
    """
    line = text.splitlines()[0].removeprefix("$ ")
    return line.removeprefix("sudo -u app ")
