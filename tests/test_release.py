"""The release artifacts and the version.

The wheel must hold every file of ``ipdebug/`` and nothing else; the sdist
must hold what it takes to run this suite. The artifacts are those in
``IPDEBUG_DIST`` when it is set (CI builds them once, checks them with
twine, and installs the wheel it tests), otherwise built here from the
source tree.

When ``IPDEBUG_EXPECT_INSTALLED`` is set, the suite is testing an installed
wheel: ``ipdebug`` must then be imported from site-packages, not from a
checkout.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import ipdebug

from .servers import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: What the sdist carries besides the package, so that distributions can run
#: the suite from it.
SDIST_FOLDERS = ["tests", "examples", "bench", "fuzz", "scripts", "docs"]
SDIST_FILES = [
    "pyproject.toml",
    "noxfile.py",
    "README.md",
    "SECURITY.md",
    "CHANGES.md",
    "LICENSE.txt",
    "tests/constraints-lowest.txt",
    ".ci/run",
]
SOURCE = ROOT / "ipdebug"


def _source_files(top: str) -> set[str]:
    """Every file under ``top`` in the source tree, as archive paths."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / top).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and "_build" not in path.parts  # a local docs build, not shipped
        and path.suffix not in {".pyc", ".pyo"}
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("IPDEBUG_DIST")
    if given:
        return Path(given)
    if not (ROOT / "pyproject.toml").exists() or not SOURCE.is_dir():
        pytest.fail(
            "no source tree to build from: set IPDEBUG_DIST to a folder with "
            "the wheel and the sdist"
        )
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def _one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


@pytest.fixture(scope="module")
def wheel_names(dist: Path) -> set[str]:
    with zipfile.ZipFile(_one(dist, "ipdebug-*.whl")) as wheel:
        return set(wheel.namelist())


@pytest.fixture(scope="module")
def sdist_names(dist: Path) -> set[str]:
    with tarfile.open(_one(dist, "ipdebug-*.tar.gz")) as sdist:
        names = {m.name for m in sdist.getmembers() if m.isfile()}
    # Strip the top folder, ipdebug-<version>/.
    return {name.split("/", 1)[1] for name in names if "/" in name}


def _package(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith("ipdebug/")}


def test_the_wheel_holds_the_package_and_nothing_else(
    wheel_names: set[str], sdist_names: set[str]
) -> None:
    package = _package(wheel_names)
    assert "ipdebug/py.typed" in package
    assert "ipdebug/__init__.py" in package and "ipdebug/__main__.py" in package
    # Every module, new ones included: compared with the source tree when
    # there is one, else with the sdist built from it.
    expected = _source_files("ipdebug") if SOURCE.is_dir() else _package(sdist_names)
    assert package == expected
    info = f"ipdebug-{ipdebug.__version__}.dist-info/"
    others = {n for n in wheel_names - package if not n.startswith(info)}
    assert not others, f"not part of the package: {sorted(others)}"
    for name in ["METADATA", "RECORD", "WHEEL", "entry_points.txt"]:
        assert info + name in wheel_names
    assert any(n.startswith(info + "licenses/LICENSE") for n in wheel_names)


def test_the_sdist_can_run_the_suite(sdist_names: set[str]) -> None:
    assert _package(sdist_names) == (
        _source_files("ipdebug") if SOURCE.is_dir() else _package(sdist_names)
    )
    for folder in SDIST_FOLDERS:
        # This very suite reads its files from ROOT: whatever this run sees
        # (a checkout or an unpacked sdist) the sdist must hold too.
        missing = _source_files(folder) - sdist_names
        assert not missing, f"missing from the sdist: {sorted(missing)}"
    assert "tests/test_release.py" in sdist_names
    assert any(n.startswith("examples/djangoproject/") for n in sdist_names)
    for name in SDIST_FILES:
        assert name in sdist_names, name


def test_the_metadata_states_the_entry_points_and_pins() -> None:
    dist = importlib.metadata.distribution("ipdebug")
    scripts = {
        e.name: e.value for e in dist.entry_points.select(group="console_scripts")
    }
    assert scripts == {"ipdebug": "ipdebug.cli:main"}
    filters = dist.entry_points.select(group="paste.filter_factory")
    assert {e.name: e.value for e in filters} == {
        "main": "ipdebug.paste:filter_factory"
    }
    runtime = [
        Requirement(r) for r in dist.requires or [] if Requirement(r).marker is None
    ]
    assert [r.name.lower() for r in runtime] == ["werkzeug"], (
        "Werkzeug is the only runtime dependency"
    )


def _floors() -> dict[str, str]:
    """The ``>=`` floor of every user-facing dependency in pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    extras = project["optional-dependencies"]
    floors: dict[str, str] = {}
    for group in [
        project["dependencies"],
        # test and docs are tools for this repository, not integrations.
        *(v for k, v in extras.items() if k not in ("test", "docs")),
    ]:
        for text in group:
            requirement = Requirement(text)
            (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
            floors[requirement.name.lower()] = floor
    return floors


def _constraints() -> dict[str, str]:
    text = (ROOT / "tests" / "constraints-lowest.txt").read_text()
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_the_lowest_constraints_are_the_stated_floors() -> None:
    floors = _floors()
    pins = _constraints()
    # quart's floor needs a newer Werkzeug than Werkzeug's floor: the lowest
    # profile leaves it out (tests/constraints-lowest.txt says so).
    assert pins.keys() == floors.keys() - {"quart"}
    floors.pop("quart")
    for name, floor in floors.items():
        assert Version(pins[name]) == Version(floor), name


def test_the_version_scheme_and_changelog() -> None:
    version = Version(ipdebug.__version__)
    assert str(version) == ipdebug.__version__, "write the version normalised"
    assert version.epoch == 0 and not version.local and not version.post
    assert len(version.release) == 3, "versions are MAJOR.MINOR.PATCH"
    assert importlib.metadata.version("ipdebug") == ipdebug.__version__
    changes = (ROOT / "CHANGES.md").read_text()
    headings = re.findall(r"^## (.+)$", changes, flags=re.MULTILINE)
    released = [h for h in headings if h != "Unreleased"]
    if version.is_devrelease:
        assert headings[0] == "Unreleased"
    else:
        assert headings[0] == f"Version {version}", (
            "a release has its own section at the top of CHANGES.md"
        )
    for heading in released:
        assert re.fullmatch(r"Version \d+\.\d+\.\d+", heading), heading
        assert Version(heading.split()[1]) <= Version(version.base_version)


def test_version_of_the_installed_command() -> None:
    command = Path(sys.executable).parent / "ipdebug"
    done = subprocess.run(
        [str(command), "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ipdebug {ipdebug.__version__}\n"


def _installed_paths() -> Iterator[Path]:
    for key in ("purelib", "platlib"):
        yield Path(sysconfig.get_paths()[key]).resolve()


@pytest.mark.skipif(
    not os.environ.get("IPDEBUG_EXPECT_INSTALLED"),
    reason="only when testing an installed wheel (IPDEBUG_EXPECT_INSTALLED)",
)
def test_the_installed_package_is_under_test() -> None:
    module = Path(ipdebug.__file__).resolve()
    assert any(module.is_relative_to(p) for p in _installed_paths()), module
    assert not SOURCE.exists(), f"a source tree at {SOURCE} could shadow the wheel"
