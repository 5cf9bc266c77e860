"""The benchmark script runs (quick mode) and reports every figure; the
figures themselves are not asserted here (see BENCHMARKS.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .servers import ROOT

pytestmark = pytest.mark.server


def test_benchmark_quick_mode_writes_every_table(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = out.read_text()
    for heading in [
        "## Targets",
        "## Per request, in process",
        "### Allowlist size",
        "### Hostile forwarding headers",
        "### Debugger page render",
        "### Throughput",
        "### Worker memory",
        "### From `ipdebug enable`/`disable` to every worker",
        "## ASGI",
        "### uvicorn throughput",
        "### Capture (`ipdebug enable --capture`), clients not gated in",
        "### Worker memory (RSS) while capturing",
        "## Findings",
    ]:
        assert heading in report, heading
    for case in [
        "1. bare app",
        "3. ipdebug, flag off",
        "6. Werkzeug DebuggedApplication",
        "7. Werkzeug ProxyFix",
        "10000 networks",
        "group of 50 exceptions | native",
        "denied, failing request, capturing window (captured)",
        "a no-op class middleware",
        "a captured error adds ≤ 20 µs to its request",
        "RSS bounded by max_captured while capturing",
    ]:
        assert case in report, case
    assert "Quick mode" in report
