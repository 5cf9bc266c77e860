"""Django ASGI and Quart under uvicorn: both turn a view exception into their
own 500; gated-in clients get the debugger (with a working console in the
view's frame), everyone else gets the framework's 500 unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .appservers import gunicorn_uvicorn, is_debugger, open_window_first, uvicorn
from .servers import (
    console_output,
    debugger_page,
    debugger_path,
    frame_of,
    pin_cookie,
)

pytestmark = pytest.mark.server

SORRY = b"Sorry, something broke on our side. We have been told.\n"

FRAMEWORKS = [
    pytest.param(
        "examples.djangoproject.asgi:application",
        "django.core.asgi:get_asgi_application",
        "worker_pid",
        "views.py",
        id="django",
    ),
    pytest.param(
        "tests.apps.quart_app:app",
        "tests.apps.quart_app:bare",
        "marker",
        "quart_app.py",
        id="quart",
    ),
]


@pytest.mark.parametrize(("app", "bare_app", "local", "filename"), FRAMEWORKS)
def test_framework_500_replaced_only_for_gated_in(
    tmp_path: Path, app: str, bare_app: str, local: str, filename: str
) -> None:
    opened = open_window_first(tmp_path, "127.0.0.1")
    env = {"DJANGO_SETTINGS_MODULE": "examples.djangoproject.settings"}
    bare_args = ["--factory"] if "django.core" in bare_app else []
    with (
        uvicorn(tmp_path, app, workers=1, env=env) as server,
        uvicorn(
            tmp_path, bare_app, *bare_args, workers=1, name="bare", env=env
        ) as bare,
    ):
        for path in ("/", "/fail", "/?__debugger__=yes&cmd=resource&f=debugger.js"):
            assert server.outcome(path, source="127.0.0.2") == bare.outcome(
                path, source="127.0.0.2"
            ), path
        denied = server.get("/fail", source="127.0.0.2")
        assert denied.status == 500 and not is_debugger(denied)
        if "django" in app:
            assert denied.body == SORRY
        page = server.get("/fail")
        secret, _, owner = debugger_page(page)
        frame = frame_of(page.text, filename)
        cookie = pin_cookie(server, secret, opened.pin)
        answer = console_output(
            server.get(debugger_path(secret, cmd=local, frm=frame), headers=cookie)
        )
        expected = str(owner) if local == "worker_pid" else "'quart-local-44'"
        assert answer == expected


def test_django_asgi_handler_wrapped_by_the_gunicorn_hook(tmp_path: Path) -> None:
    """An unchanged Django ``asgi.py`` (here Django's own factory) under
    gunicorn's uvicorn workers: the hook wraps it with Django's settings.
    """
    opened = open_window_first(tmp_path, "127.0.0.1")
    with gunicorn_uvicorn(
        tmp_path,
        "django.core.asgi:get_asgi_application()",
        env={"DJANGO_SETTINGS_MODULE": "examples.djangoproject.settings"},
    ) as server:
        denied = server.get("/fail", source="127.0.0.2")
        assert denied.status == 500 and denied.body == SORRY
        page = server.get("/fail")
        secret, _, owner = debugger_page(page)
        frame = frame_of(page.text, "views.py")
        cookie = pin_cookie(server, secret, opened.pin)
        answer = console_output(
            server.get(
                debugger_path(secret, cmd="worker_pid", frm=frame), headers=cookie
            )
        )
        assert answer == str(owner)
