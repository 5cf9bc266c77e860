"""Capture (``ipdebug enable --capture``), in process: the flag field, the
CLI and the API, what is captured and what the failing client gets, the
errors pages, bounds and audit events.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import ipdebug
from ipdebug.cli import main
from ipdebug.filestore import FileFlagStore
from ipdebug.flag import Window
from ipdebug.pin import PinHash


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# The flag, the CLI and the API


def test_capture_round_trips_and_old_flags_do_not_capture() -> None:
    window = Window.new(
        now=time.time(),
        duration=60,
        allow=("127.0.0.1",),
        reason="",
        by="me",
        pin_hash=PinHash.create("123-456-789"),
        capture=True,
    )
    data = json.loads(window.to_json())
    assert data["capture"] is True
    assert Window.from_json(window.to_json(), now=time.time()).capture is True
    del data["capture"]  # a flag written before capture existed
    assert Window.from_json(json.dumps(data), now=time.time()).capture is False


@pytest.mark.parametrize(
    "value", [pytest.param(v, id=repr(v)) for v in (1, 0, "true", None, [], {})]
)
def test_a_capture_that_is_not_a_bool_is_refused(value: object) -> None:
    window = Window.new(
        now=time.time(),
        duration=60,
        allow=(),
        reason="",
        by="me",
        pin_hash=PinHash.create("123-456-789"),
    )
    data = json.loads(window.to_json())
    data["capture"] = value
    with pytest.raises(ValueError, match="'capture'"):
        Window.from_json(json.dumps(data), now=time.time())


def test_cli_enable_capture_json_and_status(
    flag: str, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    code, out, _ = run(
        capsys, "enable", "--allow", "127.0.0.1", "--capture", "--flag", flag, "--json"
    )
    assert code == 0 and json.loads(out)["capture"] is True
    code, out, _ = run(capsys, "status", "--flag", flag, "--json")
    assert code == 0 and json.loads(out)["capture"] is True
    code, out, _ = run(capsys, "status", "--flag", flag)
    assert "capture: on" in out
    window = FileFlagStore(flag).load(time.time())
    assert window is not None and window.capture is True

    code, out, _ = run(capsys, "enable", "--allow", "127.0.0.1", "--flag", flag)
    assert code == 0 and "Capturing" not in out
    code, out, _ = run(capsys, "status", "--flag", flag, "--json")
    assert json.loads(out)["capture"] is False
    assert "capture: off" in run(capsys, "status", "--flag", flag)[1]


def test_api_enable_capture_and_status(flag: str, clean_env: None) -> None:
    opened = ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, capture=True)
    assert opened.capture is True
    assert ipdebug.status(flag).capture is True
    ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag)
    assert ipdebug.status(flag).capture is False
    with pytest.raises(ValueError, match="capture"):
        ipdebug.enable("5m", flag=flag, capture="yes")  # type: ignore[arg-type]


def test_audit_trail_records_capture_on_enable(flag: str, clean_env: None) -> None:
    ipdebug.enable("5m", allow=["127.0.0.1"], flag=flag, capture=True)
    lines = (Path(flag).parent / "audit.log").read_text().splitlines()
    assert json.loads(lines[-1])["capture"] is True
