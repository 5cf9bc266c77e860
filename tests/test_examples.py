"""The demo (examples/demo.py) serves the debugger with the PIN it prints,
prints commands that work without an activated virtualenv, and removes its
temporary directory when stopped. (tests/test_readme.py runs the README's
demo command, virtualenv and all.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .servers import free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.server
def test_demo_serves_the_debugger_with_the_printed_pin(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)},
    )
    try:
        wait_for_port(port, process=process)
        assert process.stdout is not None
        banner = b""
        while b"Stop with Ctrl-C" not in banner:
            banner += process.stdout.readline()
        text = banner.decode()
        assert f"http://127.0.0.1:{port}/checkout" in text
        pin = re.search(r"PIN:\s+(\d{3}-\d{3}-\d{3})", text)
        assert pin
        url = f"http://127.0.0.1:{port}/checkout"
        with pytest.raises(urllib.error.HTTPError) as failure:
            urllib.request.urlopen(url, timeout=10)
        page = failure.value.read().decode()
        assert failure.value.code == 500 and "ZeroDivisionError" in page
        secret = re.search(r'SECRET = "([^"]+)"', page)
        assert secret
        query = f"__debugger__=yes&cmd=pinauth&pin={pin.group(1)}&s={secret.group(1)}"
        with urllib.request.urlopen(f"{url}?{query}", timeout=10) as answer:
            assert json.loads(answer.read()) == {"auth": True, "exhausted": False}
        hint = re.search(r"IPDEBUG_FLAG=(\S+) (\S+) status", text)
        assert hint and hint.group(2) == str(Path(sys.executable).parent / "ipdebug")
        state = Path(hint.group(1)).parent
        assert state.parent == tmp_path and state.is_dir()
    finally:
        stop(process)  # SIGTERM, which the demo treats as Ctrl-C
    assert not state.exists(), "the demo left its temporary directory behind"
