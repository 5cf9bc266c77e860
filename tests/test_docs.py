"""Every code block of the documentation (``docs/*.md``) is a promise: each
one is registered (:mod:`tests.docblocks`) with the test that runs or checks
it, and the tests run the commands as written and the Python samples that can
run.

Only ports, paths and addresses are swapped for loopback ones (each test
lists its swaps); the app a recipe names (``myapp``) is a small Flask app with
a failing view (:mod:`tests.recipes`). A new block fails
:func:`test_every_block_is_registered` until it is registered and run. The
generated parts (the doctor checks, the environment variables) are checked
against the code here; ``./scripts/test`` (lint) builds the site with
``sphinx-build -W``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from .docblocks import (
    COMMANDS,
    OTHER,
    PYTHON,
    asgi_blocks,
    block,
    other,
    page,
    python,
    registered,
)
from .recipes import (
    DOCS,
    HOST,
    MYAPP,
    ROOT,
    VENV_BIN,
    WRAPPED_APP,
    console,
    debugger_page,
    environment,
    fenced,
    pages,
    project,
    run,
    serve,
)
from .servers import free_port, request, stop


def test_every_block_is_registered() -> None:
    """Every code block of every page (MyST directives aside)."""
    unregistered = [
        (path.name, language, text[:60])
        for path in pages()
        for language, text in fenced(path)
        if not language.startswith("{") and not registered(path, language, text)
    ]
    assert unregistered == [], "register these blocks, with a test that runs them"


def test_every_registered_block_exists_once_and_is_used() -> None:
    sources = (
        Path(__file__).read_text() + (ROOT / "tests" / "test_readme.py").read_text()
    )
    sources = sources.replace("'", '"')
    for name in COMMANDS:
        block(name)
        assert f'block("{name}")' in sources, name
    for name in PYTHON:
        python(name)
        assert f'python("{name}")' in sources, name
    for name in OTHER:
        other(name)
        assert f'other("{name}")' in sources, name


def test_every_python_block_compiles() -> None:
    for name in PYTHON:
        ast.parse(python(name), filename=name)


# The generated parts


def extension() -> types.ModuleType:
    """docs/_ext/ipdebug_docs.py, without Sphinx (its generators)."""
    spec = importlib.util.spec_from_file_location(
        "ipdebug_docs", DOCS / "_ext" / "ipdebug_docs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_doctor_page_has_one_entry_per_check() -> None:
    """Every id of the registry, once, under its default severity, with its
    message and fix (the values as *placeholders*).
    """
    from ipdebug.doctor import CHECKS

    assert ".. ipdebug-doctor-checks::" in page("doctor").read_text()
    text = "\n" + "\n".join(extension().doctor_checks_rst())
    entries = re.findall(r"^\.\. doctor-check:: (\w+)$", text, re.M)
    assert sorted(entries) == sorted(CHECKS)
    headings = {"critical": "Critical", "warning": "Warnings", "info": "Information"}
    for check, (severity, message, fix) in CHECKS.items():
        before, entry = text.split(f".. doctor-check:: {check}\n", 1)
        entry = entry.split(".. doctor-check::", 1)[0]
        section = max(before.rfind(f"\n{h}\n---") for h in headings.values())
        assert before[section:].startswith(f"\n{headings[severity]}\n"), check
        plain = re.sub(r"`[^`]*`", "", message + fix)  # literals keep {fields}
        for field in re.findall(r"\{(\w+)", plain):
            assert f"*{field}*" in entry, (check, field)
        assert "{" not in re.sub(r"``[^`]*``", "", entry), check
        assert "**Fix:**" in entry


def test_the_rst_of_a_message_escapes_markup() -> None:
    rst_text = extension().rst_text
    assert rst_text("FLASK_DEBUG={value!r} in `flask run`") == (
        r"FLASK\_DEBUG=\ *value*\  in \ ``flask run``\ "
    )
    assert rst_text("a *b* | c_") == r"a \*b\* \| c\_"


def test_the_environment_table_is_every_setting() -> None:
    from ipdebug.doctor.environment import known_variables

    assert ".. ipdebug-environment::" in page("configuration").read_text()
    table = "\n".join(extension().environment_rst())
    for variable in known_variables():
        argument = variable.removeprefix("IPDEBUG_").lower()
        assert f"* - ``{argument}``\n     - ``{variable}``" in table
    assert "``max_tracebacks``\n     - (none)" in table


def test_autodoc_names_only_public_import_paths() -> None:
    """Internal modules move between releases; the docs name none."""
    public = {
        "ipdebug",
        "ipdebug.asgi",
        "ipdebug.django",
        "ipdebug.gunicorn",
        "ipdebug.flask",
        "ipdebug.quart",
    }
    for path in pages():
        for target in re.findall(r"^\.\. auto\w+:: ([\w.]+)", path.read_text(), re.M):
            assert target.rsplit(".", 1)[0] in public, (path.name, target)


def test_the_sphinx_build_runs_in_lint() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    assert "sphinx-build -W --keep-going -q -b html docs" in script
    assert "'.[test,docs]'" in script


# The command line


def test_the_command_line_synopsis_is_the_cli_s() -> None:
    import ipdebug.cli

    doc = ipdebug.cli.__doc__ or ""
    documented = doc.split(".. code-block:: text", 1)[1].split("\n\n")[1]
    expected = [line.strip() for line in documented.splitlines()]
    assert [line.strip() for line in other("synopsis").splitlines()] == expected
    doctor = [line for line in expected if line.startswith("ipdebug doctor")]
    assert other("doctor-synopsis").strip() == doctor[0]


def test_the_matrix_and_build_blocks_are_what_ci_runs() -> None:
    """./scripts/test (which .ci/run calls) runs these, as written."""
    script = (ROOT / "scripts" / "test").read_text()
    assert block("corners").strip() in script.replace('"${flags[@]}" ', "")
    for command in block("release-build").strip().split(" && "):
        assert command.split(" >")[0] in script, command


def test_the_capture_walkthrough_is_the_one_test_capture_runs() -> None:
    walkthrough = block("capture")
    assert walkthrough.splitlines()[-1].startswith("ipdebug disable")
    test_capture = (ROOT / "tests" / "test_capture.py").read_text()
    assert "\ndef test_the_readme_walkthrough_runs_as_written(" in test_capture


def test_the_asgi_page_s_blocks_are_those_test_asgi_readme_runs() -> None:
    run = [b.strip() for b in asgi_blocks("sh")]
    assert block("asgi-uvicorn").strip() in run
    assert block("asgi-gunicorn").strip() in run
    assert block("asgi-enable").strip() in run
    assert block("asgi-one-walk").strip() in run
    assert asgi_blocks("python")[0] == python("fastapi")


# The Python samples


def window_for(flag: Path, address: str) -> str:
    """Open a window for ``address`` with the given flag; its PIN."""
    import ipdebug

    return ipdebug.enable("5m", allow=[address], flag=str(flag)).pin


@pytest.mark.parametrize("line", [0, 1, 2], ids=["app", "wsgi_app", "init_app"])
def test_the_three_flask_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None, line: int
) -> None:
    """Each line of the Flask page, run around a Flask app with a failing
    view. Swapped: ``allow=[...]`` -> ``allow=["127.0.0.0/8"]``.
    """
    import webtest

    import ipdebug
    import ipdebug.flask
    from ipdebug import IPDebugMiddleware

    flag = tmp_path / "state" / "flag.json"
    monkeypatch.setenv("IPDEBUG_FLAG", str(flag))
    code = python("flask-forms").splitlines()[line]
    namespace: dict[str, object] = {}
    exec(compile(MYAPP, "myapp", "exec"), namespace)  # noqa: S102
    flask_app = namespace["app"]
    scope = {"flask_app": flask_app, "IPDebugMiddleware": IPDebugMiddleware}
    scope["ipdebug"] = ipdebug
    swapped = code.replace("allow=[...]", 'allow=["127.0.0.0/8"]')
    exec(swapped, scope)  # noqa: S102
    entry = scope.get("app", flask_app)
    window_for(flag, "127.0.0.1")
    client = webtest.TestApp(entry)
    page = client.get(
        "/fail", extra_environ={"REMOTE_ADDR": "127.0.0.1"}, expect_errors=True
    )
    assert page.status_int == 500 and "ZeroDivisionError" in page.text
    assert "__debugger__" in page.text
    other = client.get(
        "/fail", extra_environ={"REMOTE_ADDR": "127.0.0.2"}, expect_errors=True
    )
    assert other.body == b"our own sorry page"


def test_the_paste_filter(tmp_path: Path, clean_env: None) -> None:
    """The page's ``.ini``, with ``myapp`` defined as a plain app whose
    ``/fail`` fails. Swapped: the flag's path (a ``flag =`` option).
    """
    import webtest
    from paste.deploy import loadapp

    from ipdebug import IPDebugMiddleware

    flag = tmp_path / "state" / "flag.json"
    ini = tmp_path / "app.ini"
    ini.write_text(
        other("paste-ini").replace(
            "max_window = 30m", f"max_window = 30m\nflag = {flag}"
        )
        + "\n[app:myapp]\nuse = call:tests.apps.plain:make_app\n"
    )
    app = loadapp(f"config:{ini}", relative_to=str(ROOT))
    assert isinstance(app, IPDebugMiddleware)
    assert app.settings.allow is not None
    assert app.settings.allow.entries == ("203.0.113.7", "10.8.0.0/16")
    assert app.settings.max_window == 1800
    window_for(flag, "10.8.0.9")
    client = webtest.TestApp(app)
    proxied = {"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": HOST}
    page = client.get(
        "/fail",
        headers={"X-Forwarded-For": "10.8.0.9"},
        extra_environ=proxied,
        expect_errors=True,
    )
    assert page.status_int == 500 and "ZeroDivisionError" in page.text
    with pytest.raises(ZeroDivisionError):  # everybody else: as without ipdebug
        client.get(
            "/fail", headers={"X-Forwarded-For": "10.8.0.10"}, extra_environ=proxied
        )


DJANGO_PROJECT = {
    "mysite/__init__.py": "",
    "mysite/urls.py": textwrap.dedent(
        """
        from django.http import HttpResponseServerError
        from django.urls import path


        def fail(request):
            basket = {"apples": 3, "pears": 0}
            return basket["apples"] / basket["pears"]


        def sorry(request):
            return HttpResponseServerError("our own sorry page")


        urlpatterns = [path("fail", fail)]
        handler500 = sorry
        """
    ),
}

DJANGO_REQUESTS = textwrap.dedent(
    """
    import json, sys
    import ipdebug
    import webtest
    from wsgi import application

    ipdebug.enable("5m")  # the deployment's IPDEBUG_ALLOW decides
    client = webtest.TestApp(application)
    replies = [
        client.get(
            "/fail",
            headers={"X-Forwarded-For": client_address, "Host": "127.0.0.1"},
            extra_environ={"REMOTE_ADDR": "127.0.0.1"},
            expect_errors=True,
        )
        for client_address in sys.argv[1:]
    ]
    print(json.dumps([[r.status_int, r.text] for r in replies]))
    """
)


def test_the_django_wsgi_and_settings(tmp_path: Path) -> None:
    """The page's ``wsgi.py`` as written, and its ``settings.py`` completed
    into a project (a secret key, the hosts, a URLconf whose view fails).
    Swapped: ``...`` (your other apps) -> none, 203.0.113.0/24 ->
    127.0.0.2 (the client that nginx on 127.0.0.1 names).
    """
    for name, text in DJANGO_PROJECT.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    settings = python("django-settings").replace("..., ", "")
    settings = settings.replace("203.0.113.0/24", "127.0.0.2")
    (tmp_path / "mysite" / "settings.py").write_text(
        settings
        + textwrap.dedent(
            """
            SECRET_KEY = "not a secret: a test"
            ALLOWED_HOSTS = ["127.0.0.1"]
            ROOT_URLCONF = "mysite.urls"
            DATABASES = {}
            USE_TZ = True
            """
        )
    )
    (tmp_path / "wsgi.py").write_text(python("django-wsgi"))
    (tmp_path / "requests.py").write_text(DJANGO_REQUESTS)
    env = environment(tmp_path, VENV_BIN, PYTHONPATH=f"{tmp_path}:{ROOT}")
    out = run(f"{sys.executable} requests.py 127.0.0.2 127.0.0.3", tmp_path, env)
    (status, page), (other_status, other_page) = json.loads(out)
    assert status == 500 and "ZeroDivisionError" in page and "__debugger__" in page
    assert (other_status, other_page) == (500, "our own sorry page")


@pytest.mark.server
def test_gunicorn_with_a_config_of_your_own(tmp_path: Path) -> None:
    """A ``gunicorn.conf.py`` that ends with the page's two lines. Swapped:
    the port (the config's ``bind``).
    """
    app_dir = project(tmp_path)
    port = free_port()
    (app_dir / "gunicorn.conf.py").write_text(
        f'bind = "127.0.0.1:{port}"\nworkers = 2\n\n' + python("gunicorn-conf")
    )
    env = environment(
        tmp_path, VENV_BIN, IPDEBUG_ALLOW="127.0.0.1", IPDEBUG_TRUSTED_HOSTS=HOST
    )
    command = "gunicorn -c gunicorn.conf.py myapp:app"
    with serve(command, app_dir, env, port, tmp_path / "gunicorn.log"):
        pin = json.loads(run("ipdebug enable --for 5m --json", app_dir, env))["pin"]
        page = debugger_page(port)
        assert "&#39;/fail&#39;" in console(port, page, pin, "request.path")
        stranger = request(port, "/fail", source="127.0.0.2", headers={"Host": HOST})
        assert stranger.body == b"our own sorry page"


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


@pytest.mark.server
def test_behind_nginx(tmp_path: Path) -> None:
    """The page's nginx ``location`` and gunicorn command. Swapped: the
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
    location = other("nginx-location").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
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
    """The page's uWSGI command behind nginx's ``uwsgi_pass unix:...;
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


@pytest.mark.server
def test_a_fleet_with_the_flag_in_redis(tmp_path: Path) -> None:
    """The page's ACL users on a real redis-server, then its three lines.
    Swapped: redis.internal:6379 -> the test server, the passwords, the
    gunicorn port (GUNICORN_CMD_ARGS), the SSH client (127.0.0.1).
    """
    from .redis_server import redis_server

    with redis_server(tmp_path) as redis:
        for line in other("acl").splitlines():
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
