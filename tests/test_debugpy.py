"""``ipdebug enable --attach debugpy`` under real gunicorn: debugpy listens
on loopback only, only after a gated-in request, and its worker is replaced
when the window ends (debugpy cannot stop listening).
"""

from __future__ import annotations

import json
import time
import typing as t
from pathlib import Path

import pytest

import ipdebug
from ipdebug import IPDebugMiddleware

from .conftest import client, open_window
from .servers import gunicorn, request, wait_until
from .servers import open_window as open_server_window


def listening_ports() -> dict[int, set[str]]:
    """Port -> addresses (hex, as in /proc/net/tcp) in LISTEN state."""
    out: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].rsplit(":", 1)
            if fields[3] == "0A":
                out.setdefault(int(port, 16), set()).add(address)
    return out


@pytest.mark.server
def test_debugpy_listens_on_loopback_only_after_a_gated_request(tmp_path: Path) -> None:
    import debugpy  # noqa: F401  (a test dependency: fail, do not skip, without it)

    with gunicorn(tmp_path, "-w", "2", env={"IPDEBUG_ATTACH_WAIT": "2s"}) as server:
        open_server_window(server, "127.0.0.1", attach="debugpy")
        attach_dir = Path(server.flag).parent / "attach"
        before = set(listening_ports())
        for _ in range(4):
            assert request(server.port, "/", source="127.0.0.2").status == 200
        assert not list(attach_dir.glob("*.debugpy"))
        assert set(listening_ports()) == before

        assert request(server.port, "/").status == 200  # gated in
        wait_until(lambda: bool(list(attach_dir.glob("*.debugpy"))), timeout=10)
        (port_file,) = attach_dir.glob("*.debugpy")
        info = json.loads(port_file.read_text())
        assert info["host"] == "127.0.0.1"
        assert listening_ports()[info["port"]] == {
            "0100007F"
        }  # 127.0.0.1, nothing else
        assert "event=attach.listening client=127.0.0.1" in server.log_text()

        # X-IPDebug-Break waits (bounded) for an IDE, then lets the request go on.
        start = time.monotonic()
        owner = int(info["pid"])
        for _ in range(10):
            reply = request(server.port, "/", headers={"X-IPDebug-Break": "1"})
            assert reply.status == 200
            if "event=attach.timeout" in server.log_text():
                break
        assert time.monotonic() - start < 30

        ipdebug.disable(server.flag, environ={})
        wait_until(lambda: owner not in server.live_workers(), timeout=10)
        wait_until(lambda: info["port"] not in listening_ports(), timeout=10)
        assert not port_file.exists()
        assert (
            f"event=attach.recycle client=- debugger='debugpy' pid={owner}"
            in server.log_text()
        )


def test_debugpy_is_refused_where_the_process_cannot_be_recycled(
    make: t.Callable[..., IPDebugMiddleware], records: t.Any
) -> None:
    middleware = make()  # no server integration sets .recycle
    open_window(middleware, attach="debugpy")
    assert client(middleware).get("/").status_int == 200
    assert not middleware.debugger.debugpy.started
    warnings = [r.getMessage() for r in records.records if r.levelname == "WARNING"]
    assert any("refused to start debugpy" in w for w in warnings)
