"""The deployment ``ipdebug doctor`` checks in its tests: the host's names,
a clean environment, and processes in a fake ``/proc`` (the ``proc`` and
``app_module`` fixtures are in :mod:`tests.conftest`), so nothing depends on
the machine the tests run on.
"""

from __future__ import annotations

from pathlib import Path

HOSTNAMES = ["web1.example.com"]
#: A deployment with nothing to report: its settings in the environment.
GOOD_ENV = {"IPDEBUG_ALLOW": "203.0.113.7", "IPDEBUG_TRUSTED_HOSTS": ".example.com"}


def fake_process(
    proc: Path,
    pid: int,
    argv: list[str],
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    """Add process ``pid`` to the fake ``proc``: its command line, its
    environment (``None``: unreadable) and its working directory.
    """
    base = proc / str(pid)
    base.mkdir()
    (base / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    if environ is None:
        (base / "environ").mkdir()  # unreadable
    else:
        (base / "environ").write_bytes(
            b"\0".join(f"{k}={v}".encode() for k, v in environ.items()) + b"\0"
        )
    if cwd is not None:
        (base / "cwd").symlink_to(cwd)
