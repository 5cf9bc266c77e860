"""Settings of a minimal Django project served with ipdebug.

    IPDEBUG_FLAG=/tmp/ipdebug-demo/flag.json \
        gunicorn -c python:ipdebug.gunicorn -w 4 examples.djangoproject.wsgi:application
    IPDEBUG_FLAG=/tmp/ipdebug-demo/flag.json ipdebug enable --for 15m --allow 127.0.0.1

then open http://127.0.0.1:8000/fail. Anyone else gets ``views.server_error``.
"""

import os

# Set a real secret in production (this project signs nothing).
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-ipdebug-example")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", ".localhost", "[::1]"]

INSTALLED_APPS = [
    # ipdebug's system checks (manage.py check --deploy).
    "ipdebug.django.IPDebugConfig",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "examples.djangoproject.urls"
WSGI_APPLICATION = "examples.djangoproject.wsgi.application"  # for runserver
DATABASES: dict[str, dict[str, str]] = {}
# Django 5's default, stated for Django 4.2 (which warns when it is unset).
USE_TZ = True

# Who may ever get the debugger (each `ipdebug enable --allow` can only
# narrow it). Django settings win over IPDEBUG_* environment variables.
IPDEBUG_ALLOW = ["127.0.0.1", "::1"]
# IPDEBUG_TRUSTED_HOSTS defaults to ALLOWED_HOSTS (without "*").
# IPDEBUG_TRUSTED_PROXIES = ["127.0.0.1"]  # behind nginx on this host
# IPDEBUG_MAX_WINDOW = "30m"
# IPDEBUG_FLAG: leave it to the environment, so that `ipdebug enable` and the
# app agree on it.

# Errors go to stderr (gunicorn's log) as well as to ADMINS by mail.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
}
