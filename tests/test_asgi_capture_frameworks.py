"""Capture under uvicorn for the ASGI frameworks that swallow errors: Quart
and Django turn a view's exception into their own 500, so it never reaches
the ASGI middleware; their ``got_request_exception`` receivers hand it over
for a customer's request while a capturing window is open. The customer
gets exactly the bare app's bytes; the operator lists the failures and
evaluates a local of the failing view in its live frame.
"""

from __future__ import annotations

import json
import time
import typing as t
from pathlib import Path

import pytest

import ipdebug

from .appservers import flag_path, uvicorn
from .conftest import CUSTOMER, OPERATOR
from .servers import console_output, debugger_path, frame_of, pin_cookie

pytestmark = pytest.mark.server

FAILURES = 4

FRAMEWORKS = [
    pytest.param(
        "examples.djangoproject.asgi:application",
        "django.core.asgi:get_asgi_application",
        "ZeroDivisionError",
        "worker_pid",
        "views.py",
        id="django",
    ),
    pytest.param(
        "tests.apps.quart_app:app",
        "tests.apps.quart_app:bare",
        "LookupError",
        "marker",
        "quart_app.py",
        id="quart",
    ),
]


@pytest.mark.parametrize(("app", "bare_app", "error", "local", "filename"), FRAMEWORKS)
def test_swallowed_errors_of_customers_are_captured(
    tmp_path: Path, app: str, bare_app: str, error: str, local: str, filename: str
) -> None:
    opened = ipdebug.enable(
        "5m", allow=[OPERATOR], flag=flag_path(tmp_path), environ={}, capture=True
    )
    env = {"DJANGO_SETTINGS_MODULE": "examples.djangoproject.settings"}
    bare_args = ["--factory"] if "django.core" in bare_app else []
    with (
        uvicorn(tmp_path, app, workers=2, env=env) as server,
        uvicorn(
            tmp_path, bare_app, *bare_args, workers=1, name="bare", env=env
        ) as bare,
    ):
        expected = bare.outcome("/fail", source=CUSTOMER)
        assert not isinstance(expected, str) and expected[0] == 500
        for _ in range(FAILURES):
            assert server.outcome("/fail", source=CUSTOMER) == expected
        assert server.outcome("/", source=CUSTOMER) == bare.outcome(
            "/", source=CUSTOMER
        )

        listed = server.get("/__ipdebug__/errors.json", source=OPERATOR)
        assert listed.status == 200, listed.text
        entries: list[dict[str, t.Any]] = json.loads(listed.body)["errors"]
        assert len(entries) == FAILURES and len({e["id"] for e in entries}) == FAILURES
        for entry in entries:
            assert entry["method"] == "GET" and entry["path"] == "/fail"
            assert entry["client"] == CUSTOMER
            assert entry["exception"].startswith(f"{error}:"), entry
        # Anybody else reaches the app at that path.
        assert server.outcome(
            "/__ipdebug__/errors.json", source=CUSTOMER
        ) == bare.outcome("/__ipdebug__/errors.json", source=CUSTOMER)
        # Audited by each worker's background writer, soon after.
        deadline = time.monotonic() + 10
        while len(server.audit("error.captured")) < FAILURES:
            assert time.monotonic() < deadline, server.audit("error.captured")
            time.sleep(0.05)

        entry = entries[0]
        page = server.get(entry["url"], source=OPERATOR)
        assert page.status == 200 and "Werkzeug Debugger" in page.text, page.text[:300]
        secret = page.text.split('SECRET = "', 1)[1].split('"', 1)[0]
        assert int(secret.split("x")[0]) == entry["pid"]  # its worker drew it
        frame = frame_of(page.text, filename)
        cookie = pin_cookie(server, secret, opened.pin)
        answer = console_output(
            server.get(debugger_path(secret, cmd=local, frm=frame), headers=cookie)
        )
        assert answer == (
            str(entry["pid"]) if local == "worker_pid" else "'quart-local-44'"
        )
