#!/usr/bin/env python
"""``python examples/djangoproject/manage.py check --deploy`` (or runserver)."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The project is importable as examples.djangoproject from the repository.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.djangoproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
