"""Run every fuzz harness (``fuzz/fuzz_*.py``) for a bounded time.

Usage::

    python fuzz/run.py [SECONDS] [--jobs N] [--only NAME] [--workdir DIR]

Each harness runs as its own process with libFuzzer's ``-max_total_time``
(``SECONDS``, default 60), at most ``--jobs`` (default 2) at once. It starts
from a *copy* of its seeds in ``fuzz/corpus/<harness>/``, so runs never
change the repository; the working corpus, the crash artifacts and each
harness's log go to a temporary directory (``--workdir`` to choose it).
``fuzz/<harness>.dict``, when there is one, is the harness's libFuzzer
dictionary.

Exits 0 when no harness failed. Otherwise it prints, for each harness that
failed, the end of its log (the Python traceback), every reproducer, and the
command that replays it; the temporary directory is then kept.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEEDS = HERE / "corpus"

#: Files libFuzzer writes for a finding (not slow-unit-*, which is a note).
_FINDINGS = ("crash-", "timeout-", "oom-", "leak-")
#: Seconds one input may take before libFuzzer calls it a hang.
_INPUT_TIMEOUT = 30
#: Seconds allowed on top of -max_total_time for start-up and the last input.
_GRACE = 120


@dataclass
class Result:
    name: str
    returncode: int | None  # None: killed after the time limit
    log: Path
    findings: list[Path]
    runs: int | None
    seconds: float

    @property
    def failed(self) -> bool:
        return self.returncode != 0 or bool(self.findings)


def harnesses() -> list[Path]:
    return sorted(HERE.glob("fuzz_*.py"))


def run_one(harness: Path, seconds: int, workdir: Path) -> Result:
    name = harness.stem
    base = workdir / name
    corpus = base / "corpus"
    artifacts = base / "artifacts"
    seeds = SEEDS / name
    if seeds.is_dir():
        shutil.copytree(seeds, corpus)
    else:
        corpus.mkdir(parents=True)
    artifacts.mkdir(parents=True)
    log = base / "fuzz.log"
    command = [
        sys.executable,
        str(harness),
        f"-max_total_time={seconds}",
        f"-artifact_prefix={artifacts}/",
        f"-timeout={_INPUT_TIMEOUT}",
        "-print_final_stats=1",
    ]
    dictionary = HERE / f"{name}.dict"
    if dictionary.is_file():
        command.append(f"-dict={dictionary}")
    command.append(str(corpus))
    started = time.monotonic()
    with log.open("wb") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        try:
            returncode: int | None = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=seconds + _GRACE,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            returncode = None
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    return Result(
        name=name,
        returncode=returncode,
        log=log,
        findings=sorted(p for p in artifacts.iterdir() if p.name.startswith(_FINDINGS)),
        runs=int(runs.group(1)) if runs else None,
        seconds=elapsed,
    )


def report(result: Result) -> None:
    if not result.failed:
        print(f"{result.name}: ok, {result.runs} inputs in {result.seconds:.0f} s")
        return
    why = (
        "killed: still running after the time limit"
        if result.returncode is None
        else f"exit status {result.returncode}"
    )
    print(f"{result.name}: FAILED ({why})")
    tail = result.log.read_text(errors="replace").splitlines()[-60:]
    print("\n".join(f"    {line}" for line in tail))
    print(f"  log: {result.log}")
    for path in result.findings:
        print(f"  reproducer: {path}")
        print(f"  replay: {sys.executable} {HERE / result.name}.py {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "seconds", nargs="?", type=int, default=60, help="per harness (default 60)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="harnesses at once")
    parser.add_argument(
        "--only", action="append", default=[], help="run this harness (repeatable)"
    )
    parser.add_argument("--workdir", type=Path, help="keep everything here")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.jobs < 1:
        parser.error("seconds and --jobs must be at least 1")
    selected = [h for h in harnesses() if not args.only or h.stem in args.only]
    unknown = set(args.only) - {h.stem for h in selected}
    if unknown or not selected:
        parser.error(f"no such harness: {', '.join(sorted(unknown)) or '(none)'}")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ipdebug-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"fuzzing {', '.join(h.stem for h in selected)} for {args.seconds} s each, "
        f"{args.jobs} at once, in {workdir}",
        flush=True,
    )
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda h: run_one(h, args.seconds, workdir), selected))
    for result in results:
        report(result)
    failed = [r.name for r in results if r.failed]
    if failed:
        print(f"FAILED: {', '.join(failed)}; everything is kept in {workdir}")
        return 1
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{len(results)} harnesses found no crash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
