"""Every command block of the README runs, as written, and does what the
text around it says; the README stays one screen that leads into the docs.

Only ports, paths and addresses are swapped for loopback ones (the
substitutions are listed in each test); the app a recipe names (``myapp``)
is a small Flask app with a failing view, written beside it
(:mod:`tests.recipes`). A README block that no test runs fails
:func:`test_every_command_block_is_run_by_a_test`. The documentation's
blocks are registered and run in ``tests/test_docs.py``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .docblocks import block as docs_block
from .recipes import (
    COMMAND_LANGUAGES,
    DOCS,
    HOST,
    README,
    ROOT,
    VENV_BIN,
    console,
    debugger_page,
    enable_line,
    environment,
    fenced,
    find,
    project,
    run,
    serve,
    unregistered,
)
from .servers import free_port, request, stop, wait_for_port

#: Each command block (``sh`` or ``console``), by how it starts. Every one
#: is run by a test below.
COMMANDS = {
    "demo": "python3 -m venv .venv && .venv/bin/pip install -e '.[flask]'",
    "tests": "./scripts/test",
    "sixty-seconds": "IPDEBUG_ALLOW=203.0.113.0/24 IPDEBUG_TRUSTED_HOSTS=app.example.com \\\n    gunicorn -c python:ipdebug.gunicorn -w 4 -b 0.0.0.0:8000 wsgi:app",
    "enable": "$ sudo -u app ipdebug enable --for 15m --allow ssh --reason INC-42",
}

#: The part of the README that docs/quickstart.md includes.
SIXTY_SECONDS = ("<!-- sixty-seconds -->", "<!-- /sixty-seconds -->")

#: "One screen" for a newcomer, generously.
MAX_LINES = 80


def block(name: str) -> str:
    """The command block ``name`` of :data:`COMMANDS`, as written."""
    return find(README, COMMAND_LANGUAGES, COMMANDS[name])


def python_block(first_line: str) -> str:
    return find(README, ("python",), first_line)


def test_every_command_block_is_run_by_a_test() -> None:
    assert unregistered(README, list(COMMANDS.values())) == [], (
        "README command blocks no test runs: add them to COMMANDS"
    )
    for name in COMMANDS:
        block(name)  # each one exactly once
    source = Path(__file__).read_text()
    for name in COMMANDS:
        assert f'block("{name}")' in source.replace("'", '"'), name


def test_the_first_two_commands_are_the_demo_and_the_tests() -> None:
    commands = [t for lang, t in fenced(README) if lang in COMMAND_LANGUAGES]
    assert commands[:2] == [block("demo"), block("tests")]


def test_the_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"exec {block('tests').strip()}" in ci


def test_the_readme_is_one_screen_that_links_into_the_docs() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_LINES
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        if "://" not in link:
            assert (ROOT / link).is_file(), link
    # Every page of the user's guide and the servers is one link away.
    linked = {Path(link).name for link in links if link.startswith("docs/")}
    index = (DOCS / "index.md").read_text()
    toctrees = re.findall(r"```\{toctree\}\n(.*?)```", index, re.S)
    guide = [n.strip() for n in "".join(toctrees[:2]).splitlines()]
    guide = [n for n in guide if n and not n.startswith(":")]
    assert {f"{n}.md" for n in guide} - linked <= {
        "windows.md",
        "engines.md",
        "capture.md",
        "attach.md",
        "audit.md",
    }


def test_the_docs_include_the_sixty_seconds_from_here() -> None:
    """One text: the getting-started page includes the README's part."""
    text = README.read_text()
    start, end = SIXTY_SECONDS
    assert text.count(start) == 1 and text.count(end) == 1
    part = text.split(start, 1)[1].split(end, 1)[0]
    assert block("sixty-seconds") in part and block("enable") in part
    assert "](" not in part, "links in the included part break in Sphinx"
    quickstart = (DOCS / "quickstart.md").read_text()
    assert (
        "```{include} ../README.md\n"
        f":start-after: {start}\n:end-before: {end}\n```" in quickstart
    )


# The newcomer's path: demo, install, "Flask in 60 seconds"


@pytest.mark.server
@pytest.mark.timeout(900)
def test_the_first_fifteen_minutes(tmp_path: Path) -> None:
    """On a copy of the checkout, as the README and the getting-started
    page say: the demo in a fresh virtualenv, both installs (of the page),
    then "Flask in 60 seconds" with a
    real gunicorn, a real ``ipdebug enable`` and a request that gets the
    debugger. Swapped: the port (``--port``, ``-b``), the allowed network
    (``127.0.0.0/8``), the SSH client (``127.0.0.1``), the flag's path.
    """
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md", "ipdebug", "examples"):
        source = ROOT / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, checkout / name)  # type: ignore[operator]
    for cache in checkout.rglob("__pycache__"):
        shutil.rmtree(cache)
    env = environment(tmp_path, str(checkout / ".venv" / "bin"))
    venv_bin = checkout / ".venv" / "bin"

    # Try it: the demo, in a new virtualenv.
    port = free_port()
    demo = block("demo").strip() + f" --port {port}"
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", demo],
            cwd=checkout,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, timeout=600, process=process)
        deadline = time.monotonic() + 60
        while "Stop with Ctrl-C" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = log.read_text()
        pin = re.search(r"PIN:\s+(\d{3}-\d{3}-\d{3})", text)
        hint = re.search(r"IPDEBUG_FLAG=(\S+) (\S+) status", text)
        assert pin and hint, text
        # The hint works as printed, from another shell without the venv.
        status = subprocess.run(
            ["bash", "-c", f"IPDEBUG_FLAG={hint.group(1)} {hint.group(2)} status"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": env["HOME"]},
            check=False,
        )
        assert status.returncode == 0, status.stderr
        assert "window open until" in status.stdout
        state = Path(hint.group(1)).parent
        assert state.is_dir() and str(state).startswith(env["TMPDIR"])
    finally:
        stop(process)  # SIGTERM: as Ctrl-C
    assert not state.exists(), "the demo left its temporary directory behind"

    # Install: from a wheel built from the checkout, then from the checkout.
    run(docs_block("install-wheel"), checkout, env)
    assert list((checkout / "dist").glob("ipdebug-*.whl"))
    run(docs_block("install-checkout"), checkout, env)
    assert (venv_bin / "gunicorn").exists() and (venv_bin / "ipdebug").exists()

    # In 60 seconds: wsgi.py as written, around the README's "myapp".
    app_dir = project(tmp_path)
    (app_dir / "wsgi.py").write_text(python_block("# wsgi.py\nfrom ipdebug"))
    port = free_port()
    recipe = (
        block("sixty-seconds")
        .replace("203.0.113.0/24", "127.0.0.0/8")
        .replace("0.0.0.0:8000", f"127.0.0.1:{port}")
    )
    log = tmp_path / "gunicorn.log"
    with serve(recipe, app_dir, env, port, log):
        before = request(port, "/fail", headers={"Host": HOST})
        assert (before.status, before.body) == (500, b"our own sorry page")
        # During an incident: the console block, as the app's user.
        ssh = {**env, "SSH_CLIENT": "127.0.0.1 50022 22"}
        printed = run(enable_line(block("enable")), app_dir, ssh)
        sample = block("enable").splitlines()[1:]
        assert [line.split(":")[0] for line in printed.splitlines()[: len(sample)]] == [
            line.split(":")[0] for line in sample
        ]
        assert "  for:    127.0.0.1\n" in printed and "  reason: INC-42\n" in printed
        pin = re.search(r"PIN:\s+(\S+)", printed)
        assert pin
        page = debugger_page(port)
        assert page.status == 500 and "ZeroDivisionError" in page.text
        # The console: the frame's locals, and Flask's request (README, Flask).
        assert "&#39;pears&#39;" in console(port, page, pin.group(1), "basket")
        assert "&#39;/fail&#39;" in console(port, page, pin.group(1), "request.path")
        run("ipdebug disable", app_dir, env)
    # -c python:ipdebug.gunicorn: ipdebug's lines in gunicorn's log, with pids.
    assert re.search(
        r"\[\d+\] \[WARNING\] ipdebug debugging window open until .* for 127\.0\.0\.1",
        log.read_text(),
    ), log.read_text()


@pytest.mark.server
def test_a_trusted_proxy_without_a_proxy_is_loud(tmp_path: Path) -> None:
    """The old "In 60 seconds" mistake (issue 13): ``IPDEBUG_TRUSTED_PROXIES``
    without a proxy in front. The operator is denied, and now the log says
    why at WARNING and ``ipdebug doctor`` reports it.
    """
    app_dir = project(tmp_path)
    (app_dir / "wsgi.py").write_text(python_block("# wsgi.py\nfrom ipdebug"))
    port = free_port()
    recipe = (
        block("sixty-seconds")
        .replace("203.0.113.0/24", "127.0.0.0/8")
        .replace("0.0.0.0:8000", f"127.0.0.1:{port}")
        .replace("IPDEBUG_ALLOW=", "IPDEBUG_TRUSTED_PROXIES=127.0.0.1 IPDEBUG_ALLOW=")
    )
    env = environment(tmp_path, VENV_BIN)
    log = tmp_path / "gunicorn.log"
    with serve(recipe, app_dir, env, port, log):
        run("ipdebug enable --for 5m --allow 127.0.0.1", app_dir, env)
        for _ in range(20):
            reply = request(port, "/fail", headers={"Host": HOST})
            assert reply.body == b"our own sorry page"  # denied
            if "a trusted proxy" in log.read_text():
                break
            time.sleep(0.1)
    assert re.search(
        r"\[\d+\] \[WARNING\] ipdebug denied a request from 127\.0\.0\.1, a trusted proxy",
        log.read_text(),
    ), log.read_text()
    doctor = subprocess.run(
        ["ipdebug", "doctor", "wsgi:app", "--json"],
        cwd=app_dir,
        env={
            **env,
            "IPDEBUG_ALLOW": "127.0.0.0/8",
            "IPDEBUG_TRUSTED_HOSTS": HOST,
            "IPDEBUG_TRUSTED_PROXIES": "127.0.0.1",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    found = {f["id"] for f in json.loads(doctor.stdout)["findings"]}
    assert {"IPD025", "IPD026"} <= found, doctor.stdout
