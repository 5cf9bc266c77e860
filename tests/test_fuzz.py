"""The fuzz harnesses in ``fuzz/``: each replays its seeds in-process (fast),
and ``fuzz/run.py`` fuzzes them all under libFuzzer for a bounded time: each
harness gets ``IPDEBUG_FUZZ_SECONDS`` (default 60) of one core's time.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
HARNESSES = sorted(FUZZ.glob("fuzz_*.py"))
SECONDS = int(os.environ.get("IPDEBUG_FUZZ_SECONDS", "60"))
CORES = 2  # the machine and CI have two
# Every harness at once, sharing the cores for as long as gives each SECONDS
# of one core: the same fuzzing as rounds of two SECONDS long, without the
# last round's idle core (three harnesses: 90 s instead of 120 s).
JOBS = len(HARNESSES)
WALL = math.ceil(SECONDS * len(HARNESSES) / CORES) if JOBS > CORES else SECONDS
TIMEOUT = WALL + 60 + 120


def _require_atheris() -> None:
    try:
        import atheris  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"atheris is not importable ({exc}); pip install atheris")


@functools.cache
def _load(path: Path) -> ModuleType:
    _require_atheris()
    spec = importlib.util.spec_from_file_location(f"ipdebug_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs() -> list[object]:
    params: list[object] = []
    for harness in HARNESSES:
        params.append(pytest.param(harness, None, id=f"{harness.stem}/empty"))
        seeds = FUZZ / "corpus" / harness.stem
        params.extend(
            pytest.param(harness, seed, id=f"{harness.stem}/{seed.name}")
            for seed in sorted(seeds.iterdir())
        )
    return params


def test_every_harness_has_seeds() -> None:
    names = {h.stem for h in HARNESSES}
    assert {"fuzz_address", "fuzz_config", "fuzz_flag"} <= names
    for harness in HARNESSES:
        assert any((FUZZ / "corpus" / harness.stem).iterdir()), harness.stem


@pytest.mark.parametrize(("harness", "seed"), _inputs())
def test_harness_accepts_seed(harness: Path, seed: Path | None) -> None:
    module = _load(harness)
    module.TestOneInput(b"" if seed is None else seed.read_bytes())


@pytest.mark.fuzz
@pytest.mark.timeout(TIMEOUT)
def test_fuzzers_find_no_crash() -> None:
    _require_atheris()
    proc = subprocess.run(
        [sys.executable, str(FUZZ / "run.py"), str(WALL), f"--jobs={JOBS}"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT - 30,
        check=False,
    )
    assert proc.returncode == 0, f"fuzz/run.py failed:\n{proc.stdout}{proc.stderr}"
