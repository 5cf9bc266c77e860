"""Every command block of the README runs, as written, and does what the
text around it says.

Only ports, paths and addresses are swapped for loopback ones (the
substitutions are listed in each test); the app a recipe names (``myapp``)
is a small Flask app with a failing view, written beside it. A README block
that no test runs fails :func:`test_every_command_block_is_run_by_a_test`.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import Reply, free_port, request, stop, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: Each command block (``sh`` or ``console``), by how it starts, and the
#: test that runs it.
COMMANDS = {
    "tests": "./scripts/test",
    "demo": "python3 -m venv .venv && .venv/bin/pip install -e '.[flask]'",
    "install-checkout": "pip install -e '.[flask,gunicorn]'",
    "install-wheel": "pip wheel --no-deps -w dist .",
    "sixty-seconds": "IPDEBUG_ALLOW=203.0.113.0/24 IPDEBUG_TRUSTED_HOSTS=app.example.com \\\n    gunicorn -c python:ipdebug.gunicorn -w 4 -b 0.0.0.0:8000 wsgi:app",
    "enable": "$ sudo -u app ipdebug enable --for 15m --allow ssh --reason INC-42",
    "gunicorn": "IPDEBUG_ALLOW=203.0.113.7 IPDEBUG_TRUSTED_HOSTS=app.example.com \\\n    gunicorn -c python:ipdebug.gunicorn -w 4 -b 0.0.0.0:8000 myapp:app",
    "nginx": "IPDEBUG_TRUSTED_PROXIES=127.0.0.1 IPDEBUG_TRUSTED_HOSTS=app.example.com IPDEBUG_ALLOW=203.0.113.0/24",
    "waitress": "IPDEBUG_ALLOW=203.0.113.0/24 IPDEBUG_TRUSTED_HOSTS=app.example.com \\\n    waitress-serve",
    "uwsgi": "IPDEBUG_ALLOW=203.0.113.0/24 IPDEBUG_TRUSTED_HOSTS=app.example.com \\\n    uwsgi ",
    "redis": "export IPDEBUG_FLAG='redis://",
    "attach": "ipdebug enable --for 15m --allow ssh --attach pdb",
    # Run by ./scripts/test (CI) as written: its corners and build parts.
    "corners": ".venv/bin/nox -s lowest fast-3.13",
    "release-build": ".venv/bin/python -m build && .venv/bin/twine check --strict",
    # Run line by line by tests/test_capture.py's walkthrough test.
    "capture": "ipdebug enable --for 15m --allow ssh --capture",
    # The ASGI section's blocks run in tests/test_asgi_readme.py.
    "asgi-uvicorn": "IPDEBUG_ALLOW=127.0.0.1 uvicorn --workers 4",
    "asgi-gunicorn": "IPDEBUG_ALLOW=127.0.0.1 gunicorn -c python:ipdebug.gunicorn -w 4 -k uvicorn_worker",
    "asgi-enable": "ipdebug enable --for 15m --allow 127.0.0.1",
    "asgi-one-walk": "IPDEBUG_TRUSTED_PROXIES=127.0.0.1 uvicorn --no-proxy-headers",
}

HOST = "app.example.com"

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


def blocks() -> list[tuple[str, str]]:
    """Every fenced block of the README: (language, text)."""
    text = README.read_text()
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.M | re.S)


def block(name: str) -> str:
    """The command block ``name`` of :data:`COMMANDS`, as written."""
    found = [
        text
        for lang, text in blocks()
        if lang in ("sh", "console") and text.startswith(COMMANDS[name])
    ]
    assert len(found) == 1, f"README has {len(found)} blocks for {name!r}"
    return found[0]


def python_block(first_line: str) -> str:
    found = [t for lang, t in blocks() if lang == "python" and t.startswith(first_line)]
    assert len(found) == 1, first_line
    return found[0]


def test_every_command_block_is_run_by_a_test() -> None:
    commands = [text for lang, text in blocks() if lang in ("sh", "console")]
    unrun = [
        text
        for text in commands
        if not any(text.startswith(start) for start in COMMANDS.values())
    ]
    assert unrun == [], "README command blocks no test runs: add them to COMMANDS"
    for name in COMMANDS:
        block(name)  # each one exactly once
    source = Path(__file__).read_text()
    for name in COMMANDS:
        assert f'block("{name}")' in source.replace("'", '"'), name


def test_the_asgi_section_s_blocks_are_those_test_asgi_readme_runs() -> None:
    from .test_asgi_readme import blocks as asgi_blocks

    run = [b.strip() for b in asgi_blocks("sh")]
    assert block("asgi-uvicorn").strip() in run
    assert block("asgi-gunicorn").strip() in run
    assert block("asgi-enable").strip() in run
    assert block("asgi-one-walk").strip() in run


def test_the_test_command_is_what_ci_runs() -> None:
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert f"exec {block('tests').strip()}" in ci


def test_the_matrix_and_build_blocks_are_what_ci_runs() -> None:
    """./scripts/test (which .ci/run calls) runs these, as written."""
    script = (Path(__file__).parent.parent / "scripts" / "test").read_text()
    assert block("corners").strip() in script.replace('"${flags[@]}" ', "")
    for command in block("release-build").strip().split(" && "):
        assert command.split(" >")[0] in script, command


def test_the_capture_walkthrough_is_the_one_test_capture_runs() -> None:
    from . import test_capture

    walkthrough = block("capture")
    assert walkthrough.splitlines()[-1].startswith("ipdebug disable")
    assert callable(test_capture.test_the_readme_walkthrough_runs_as_written)


def test_the_command_line_synopsis_is_the_cli_s() -> None:
    import ipdebug.cli

    synopsis = [
        t for lang, t in blocks() if not lang and t.startswith("ipdebug enable [")
    ]
    assert len(synopsis) == 1
    doc = ipdebug.cli.__doc__ or ""
    documented = doc.split(".. code-block:: text", 1)[1].split("\n\n")[1]
    assert [line.strip() for line in synopsis[0].splitlines()] == [
        line.strip() for line in documented.splitlines()
    ]


# Helpers


def environment(tmp_path: Path, path: str, **extra: str) -> dict[str, str]:
    """A clean environment: ``path`` first on PATH, a home and a temporary
    directory inside ``tmp_path``, the flag there too (a path swap: the
    README's default is the app user's home).
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


def project(tmp_path: Path, *files: str) -> Path:
    """A directory with the README's app module (and ``files``)."""
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


VENV_BIN = str(Path(sys.executable).parent)


# The newcomer's path: demo, install, "In 60 seconds"


@pytest.mark.server
@pytest.mark.timeout(900)
def test_the_first_fifteen_minutes(tmp_path: Path) -> None:
    """On a copy of the checkout, as the README's first sections say: the
    demo in a fresh virtualenv, both installs, then "In 60 seconds" with a
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
    run(block("install-wheel"), checkout, env)
    assert list((checkout / "dist").glob("ipdebug-*.whl"))
    run(block("install-checkout"), checkout, env)
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


# Running under gunicorn, behind nginx


@pytest.mark.server
def test_gunicorn_without_a_config_of_your_own(tmp_path: Path) -> None:
    """Swapped: 203.0.113.7 -> 127.0.0.1, the port."""
    app_dir = project(tmp_path)
    port = free_port()
    recipe = (
        block("gunicorn")
        .replace("203.0.113.7", "127.0.0.1")
        .replace("0.0.0.0:8000", f"127.0.0.1:{port}")
    )
    env = environment(tmp_path, VENV_BIN)
    with serve(recipe, app_dir, env, port, tmp_path / "gunicorn.log"):
        opened = run("ipdebug enable --for 5m --json", app_dir, env)
        page = debugger_page(port)
        pin = json.loads(opened)["pin"]
        assert "&#39;/fail&#39;" in console(port, page, pin, "request.path")
        stranger = request(port, "/fail", source="127.0.0.2", headers={"Host": HOST})
        assert stranger.body == b"our own sorry page"


def nginx_location() -> str:
    found = [
        t for lang, t in blocks() if lang == "nginx" and t.startswith("location / {")
    ]
    assert len(found) == 1
    return found[0]


@pytest.mark.server
def test_behind_nginx(tmp_path: Path) -> None:
    """The README's nginx ``location`` and gunicorn command. Swapped: the
    ports, 203.0.113.0/24 -> 127.0.0.2 (the client, which connects from
    127.0.0.2; nginx is the trusted 127.0.0.1).
    """
    from .nginx import nginx

    app_dir = project(tmp_path)
    port, front = free_port(), free_port()
    recipe = (
        block("nginx")
        .replace("203.0.113.0/24", "127.0.0.2")
        .replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    )
    location = nginx_location().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    server = f"server {{\n listen 127.0.0.1:{front};\n{location}}}\n"
    env = environment(tmp_path, VENV_BIN)
    with (
        serve(recipe, app_dir, env, port, tmp_path / "gunicorn.log"),
        nginx(tmp_path, [], http=server, listen=[front]),
    ):
        opened = json.loads(run("ipdebug enable --for 5m --json", app_dir, env))
        page = debugger_page(front, source="127.0.0.2")
        assert "&#39;/fail&#39;" in console(
            front, page, opened["pin"], "request.path", source="127.0.0.2"
        )
        # A forged X-Forwarded-For to the left of nginx's entry is not read.
        forged = request(
            front,
            "/fail",
            source="127.0.0.3",
            headers={"Host": HOST, "X-Forwarded-For": "127.0.0.2"},
        )
        assert forged.body == b"our own sorry page"
        # From the proxy's address, without the proxy's header: denied.
        direct = request(port, "/fail", headers={"Host": HOST})
        assert direct.body == b"our own sorry page"


WRAPPED_APP = MYAPP + textwrap.dedent(
    """

    from ipdebug import IPDebugMiddleware

    application = IPDebugMiddleware(app)
    """
)


@pytest.mark.server
def test_waitress_behind_a_proxy(tmp_path: Path) -> None:
    """Swapped: the port, 203.0.113.0/24 -> 127.0.0.2 (the client a proxy on
    127.0.0.1 names in X-Forwarded-For, as nginx would append it).
    """
    app_dir = project(tmp_path)
    (app_dir / "myapp.py").write_text(WRAPPED_APP)
    port = free_port()
    recipe = (
        block("waitress")
        .replace("203.0.113.0/24", "127.0.0.2")
        .replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    )
    env = environment(tmp_path, VENV_BIN)
    with serve(recipe, app_dir, env, port, tmp_path / "waitress.log"):
        opened = json.loads(run("ipdebug enable --for 5m --json", app_dir, env))
        proxied = {"X-Forwarded-For": "127.0.0.2"}
        page = debugger_page(port, **proxied)
        assert "&#39;/fail&#39;" in console(
            port, page, opened["pin"], "request.path", **proxied
        )
        # The proxy itself, without the header, is not the client.
        assert request(port, "/fail", headers={"Host": HOST}).body == (
            b"our own sorry page"
        )


@pytest.mark.server
def test_uwsgi_behind_nginx(tmp_path: Path) -> None:
    """The README's uWSGI command behind nginx's ``uwsgi_pass unix:...;
    include uwsgi_params;``. Swapped: /run/myapp -> a private directory, the
    port, 203.0.113.0/24 -> 127.0.0.2 (the client nginx sees).
    """
    from .nginx import nginx

    app_dir = project(tmp_path)
    (app_dir / "myapp.py").write_text(WRAPPED_APP)
    run_dir = tmp_path / "run" / "myapp"
    run_dir.mkdir(parents=True)
    sock = run_dir / "uwsgi.sock"
    recipe = (
        block("uwsgi")
        .replace("203.0.113.0/24", "127.0.0.2")
        .replace("/run/myapp/", f"{run_dir}/")
    )
    front = free_port()
    frontend = tmp_path / "frontend"
    frontend.mkdir()
    shutil.copy("/etc/nginx/uwsgi_params", frontend / "uwsgi_params")
    server = (
        f"server {{\n listen 127.0.0.1:{front};\n location / {{\n"
        f"  uwsgi_pass unix:{sock};\n  include {frontend}/uwsgi_params;\n }}\n}}\n"
    )
    env = environment(tmp_path, VENV_BIN)
    log = tmp_path / "uwsgi.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", recipe],
            cwd=app_dir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not sock.exists():
            assert process.poll() is None and time.monotonic() < deadline, (
                log.read_text()
            )
            time.sleep(0.1)
        with nginx(tmp_path, [], http=server, listen=[front]):
            opened = json.loads(run("ipdebug enable --for 5m --json", app_dir, env))
            page = debugger_page(front, source="127.0.0.2")
            assert "&#39;/fail&#39;" in console(
                front, page, opened["pin"], "request.path", source="127.0.0.2"
            )
            stranger = request(
                front, "/fail", source="127.0.0.3", headers={"Host": HOST}
            )
            assert stranger.status == 500 and b"__debugger__" not in stranger.body
    finally:
        stop(process)


def acl_block() -> str:
    found = [t for lang, t in blocks() if not lang and t.startswith("ACL SETUSER")]
    assert len(found) == 1
    return found[0]


@pytest.mark.server
def test_a_fleet_with_the_flag_in_redis(tmp_path: Path) -> None:
    """The README's ACL users on a real redis-server, then its three lines.
    Swapped: redis.internal:6379 -> the test server, the passwords, the
    gunicorn port (GUNICORN_CMD_ARGS), the SSH client (127.0.0.1).
    """
    from .redis_server import redis_server

    with redis_server(tmp_path) as redis:
        for line in acl_block().splitlines():
            # As typed at redis-cli's prompt: no shell (">" is no redirection).
            said = subprocess.run(
                ["redis-cli", "-p", str(redis.port), *line.split()],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            assert said.stdout == "OK\n", said
        app_dir = project(tmp_path)
        port = free_port()
        where = f"127.0.0.1:{redis.port}"
        lines = (
            block("redis")
            .replace(
                "ipdebug-app:PASSWORD@redis.internal:6379",
                f"ipdebug-app:APP_PASSWORD@{where}",
            )
            .replace(
                "ipdebug-ops:...@redis.internal:6379",
                f"ipdebug-ops:OPS_PASSWORD@{where}",
            )
            .splitlines()
        )
        assert len(lines) == 3
        env = environment(
            tmp_path,
            VENV_BIN,
            GUNICORN_CMD_ARGS=f"-b 127.0.0.1:{port}",
            SSH_CLIENT="127.0.0.1 50022 22",
        )
        del env["IPDEBUG_FLAG"]  # the block sets it
        server = "\n".join(lines[:2])
        with serve(server, app_dir, env, port, tmp_path / "gunicorn.log"):
            printed = run(lines[2], app_dir, env)
            assert "redis://ipdebug-ops:***@" in printed, printed
            pin = re.search(r"PIN:\s+(\S+)", printed)
            assert pin
            page = debugger_page(port, Host="127.0.0.1")
            assert "ZeroDivisionError" in page.text
            assert "&#39;/fail&#39;" in console(
                port, page, pin.group(1), "request.path", Host="127.0.0.1"
            )


@pytest.mark.server
def test_external_debugger_pdb_over_ssh(tmp_path: Path) -> None:
    """Both lines, the second in "another session" reading commands from
    the terminal. Swapped: the SSH client (127.0.0.1), gunicorn's port.
    """
    app_dir = project(tmp_path)
    port = free_port()
    env = environment(tmp_path, VENV_BIN, SSH_CLIENT="127.0.0.1 50022 22")
    server = f"gunicorn -c python:ipdebug.gunicorn -w 2 -b 127.0.0.1:{port} myapp:app"
    enable, attach = block("attach").splitlines()
    with serve(server, app_dir, env, port, tmp_path / "gunicorn.log"):
        run(enable, app_dir, env)
        terminal = subprocess.Popen(
            ["bash", "-c", attach],
            cwd=app_dir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            # What the operator types; the failing request waits for it.
            assert terminal.stdin is not None
            terminal.stdin.write(b"p basket\nc\n")
            terminal.stdin.close()
            page = debugger_page(port, Host="127.0.0.1")  # default trusted_hosts
            assert terminal.stdout is not None
            out = terminal.stdout.read()  # until `ipdebug attach` exits
            assert terminal.wait(30) == 0
        finally:
            stop(terminal)
        assert b"attached to" in out and b"'pears': 0" in out, out
        assert "ZeroDivisionError" in page.text
