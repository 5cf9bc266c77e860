"""Sphinx configuration for ipdebug's documentation.

Build it with ``sphinx-build -W --keep-going -b html docs docs/_build/html``
after ``pip install -e '.[docs]'``; ``./scripts/test`` (lint) does the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pallets_sphinx_themes import get_version

# The local extension: the doctor checks and the environment variables,
# generated from the code (_ext/ipdebug_docs.py).
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "ipdebug"
copyright = "2026 the ipdebug authors"
author = "the ipdebug authors"
release, version = get_version("ipdebug")

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",
    "pallets_sphinx_themes",
    "ipdebug_docs",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
# The docs name modules by their public import paths only; internal modules
# move between releases.
add_module_names = False

html_theme = "werkzeug"
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
singlehtml_sidebars = {"index": ["project.html", "localtoc.html"]}
html_title = f"ipdebug Documentation ({version})"
html_show_sourcelink = False
