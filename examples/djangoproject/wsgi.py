"""WSGI entry point: Django's application wrapped in ipdebug.

    gunicorn -c python:ipdebug.gunicorn -w 4 examples.djangoproject.wsgi:application

(``-c python:ipdebug.gunicorn`` adds the worker hooks and logging; it does not
wrap the application a second time.)
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.djangoproject.settings")

from ipdebug.django import get_wsgi_application

application = get_wsgi_application()
