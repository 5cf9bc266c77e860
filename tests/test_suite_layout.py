"""The suite's own layout: shared helpers and fixtures live in the helper
modules (``conftest.py``, ``servers.py``, ``appservers.py``, ``nginx.py``,
...), never in a test module that others import. Importing a test module
couples two test files, hides where a helper lives, and puts the imported
module's tests and fixtures in the importer's namespace.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_test_modules(path: Path) -> list[str]:
    """The test modules (a dotted part ``test_*``) that the module at
    ``path`` imports, or imports something from, as the import names them.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            dots = "." * node.level
            if node.module:
                names = [f"{dots}{node.module}.{alias.name}" for alias in node.names]
            else:
                names = [dots + alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            tests = [i for i, part in enumerate(parts) if part.startswith("test_")]
            if tests:
                found.add(".".join(parts[: tests[0] + 1]))
    return sorted(found)


def test_no_module_of_the_suite_imports_a_test_module() -> None:
    offenders = {
        path.relative_to(TESTS).as_posix(): names
        for path in sorted(TESTS.rglob("*.py"))
        if (names := imported_test_modules(path))
    }
    assert offenders == {}, (
        "move what these import into a helper module (conftest.py for "
        "in-process helpers and fixtures, servers.py, appservers.py, ...)"
    )


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text(
        "from . import models, test_capture\n"
        "from .servers import spread\n"
        "from .test_nginx import DIRECT\n"
        "import tests.test_docs\n"
        "from tests import test_fleet\n"
        "def f():\n"
        "    from .test_attach import read_until\n"
    )
    assert imported_test_modules(module) == [
        ".test_attach",
        ".test_capture",
        ".test_nginx",
        "tests.test_docs",
        "tests.test_fleet",
    ]
