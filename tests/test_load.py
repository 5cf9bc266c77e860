"""Load and toggling: wrk against 4-worker gunicorn for 30 seconds while the
window is enabled and disabled 50 times. No error caused by ipdebug, every
denied response identical to the bare app's, every open and close audited.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import ipdebug

from .servers import gunicorn, request

pytestmark = pytest.mark.server

SECONDS = 30
TOGGLES = 50

# wrk's Lua: count responses that differ from the bare app's (status or
# body), per thread, and print the total at the end.
CHECK_LUA = """
local expected = os.getenv("EXPECTED_BODY")
mismatches = 0
first_bad = ""
function response(status, headers, body)
  if status ~= 200 or body ~= expected then
    mismatches = mismatches + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 80) end
  end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local total, sample = 0, ""
  for _, t in ipairs(threads) do
    total = total + t:get("mismatches")
    if sample == "" then sample = t:get("first_bad") end
  end
  io.write(string.format("MISMATCHES %d\\n", total))
  io.write("FIRST_BAD " .. sample .. "\\n")
end
"""


def test_load_while_toggling_the_window(tmp_path: Path) -> None:
    assert shutil.which("wrk"), (
        "wrk is missing: install Debian's wrk (scripts/test does)"
    )
    script = tmp_path / "check.lua"
    script.write_text(CHECK_LUA)
    # wrk runs from 127.0.0.1; the window is for another address, so every
    # wrk request is a denied one.
    with (
        gunicorn(tmp_path, "-w", "4", env={"IPDEBUG_ALLOW": "127.0.0.0/8"}) as server,
        gunicorn(tmp_path, "-w", "4", ipdebug=False, name="bare") as bare,
    ):
        expected = request(bare.port, "/")
        assert expected.status == 200
        errors: list[BaseException] = []

        def toggle() -> None:
            try:
                pause = SECONDS / (2 * TOGGLES) * 0.9
                for _ in range(TOGGLES):
                    ipdebug.enable(
                        "5m", allow=["127.0.0.9"], flag=server.flag, environ={}
                    )
                    time.sleep(pause)
                    ipdebug.disable(server.flag, environ={})
                    time.sleep(pause)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        toggler = threading.Thread(target=toggle)
        toggler.start()
        run = subprocess.run(
            [
                "wrk",
                "-t2",
                "-c16",
                f"-d{SECONDS}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{server.port}/",
            ],
            capture_output=True,
            text=True,
            env={"EXPECTED_BODY": expected.text, "PATH": "/usr/bin:/bin"},
            timeout=SECONDS + 30,
            check=True,
        )
        toggler.join()
        assert not errors, errors
        out = run.stdout
        requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        assert requests > 1000, out
        assert "Non-2xx or 3xx responses" not in out, out
        assert "Socket errors" not in out, out
        assert "MISMATCHES 0" in out, out
        # Also the headers: one denied request compared in full.
        got = request(server.port, "/")
        assert got.without_date() == expected.without_date()

        log = server.log_text()
        assert " [ERROR] " not in log, log[-3000:]
        trail = [
            json.loads(line)
            for line in (Path(server.flag).parent / "audit.log")
            .read_text()
            .splitlines()
        ]
        events = [record["event"] for record in trail]
        assert events.count("window.enabled") == TOGGLES
        assert events.count("window.disabled") == TOGGLES
        # Every worker saw windows open and close, and logged it.
        seen = [r for r in trail if r["event"] in ("window.opened", "window.closed")]
        assert {r["pid"] for r in seen} == server.worker_pids()
        assert len(seen) >= TOGGLES
