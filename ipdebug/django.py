"""Django integration.

Django turns an unhandled view exception into its own 500 response (unless
``DEBUG_PROPAGATE_EXCEPTIONS``, which is global), so a WSGI middleware never
sees it. ipdebug listens to Django's ``got_request_exception`` signal and,
for gated-in requests only, hands the exception to the middleware, which
serves Werkzeug's debugger instead of the 500 it receives. Every other request
keeps Django's error handling (``handler500``, the ``django.request`` log,
mail to ``ADMINS``) unchanged.

In ``wsgi.py``, instead of Django's ``get_wsgi_application``:

.. code-block:: python

    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

    from ipdebug.django import get_wsgi_application

    application = get_wsgi_application()

and, for the system checks (``manage.py check --deploy``), in ``settings.py``:

.. code-block:: python

    INSTALLED_APPS = [..., "ipdebug.django.IPDebugConfig"]
    IPDEBUG_ALLOW = ["203.0.113.7"]

Each deployment setting of :class:`~ipdebug.IPDebugMiddleware` is a Django
setting named like its environment variable (``IPDEBUG_ALLOW``,
``IPDEBUG_FLAG``, ``IPDEBUG_TRUSTED_HOSTS``, ``IPDEBUG_TRUSTED_PROXIES``,
``IPDEBUG_MAX_WINDOW``, ...); the other options are keyword arguments of
:func:`get_wsgi_application`. A keyword argument wins over the Django setting,
which wins over the environment variable. Without ``IPDEBUG_TRUSTED_HOSTS``
(setting or variable), the trusted hosts are the names in ``ALLOWED_HOSTS``:
``"*"`` is left out, **never "every host"**; when no name remains, ipdebug's
default (``.localhost``, ``127.0.0.1``) applies.

**Security:** ``ipdebug enable`` does not read Django settings: an
``IPDEBUG_FLAG`` set in ``settings.py`` must be given to it as ``--flag`` (or
its ``IPDEBUG_FLAG``).
"""

from __future__ import annotations

import os
import sys
import typing as t
from collections.abc import Mapping
from inspect import signature

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.signals import got_request_exception

from .config import load_settings
from .errors import ConfigError
from .gate import DEFAULT_TRUSTED_HOSTS, parse_trusted_hosts
from .middleware import IPDebugMiddleware
from .stash import stash_exception

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from .asgi import IPDebugASGIMiddleware

#: The options of ``IPDebugMiddleware`` that Django settings may give, each
#: as ``IPDEBUG_<NAME>``: every one that has an environment variable.
SETTINGS = tuple(
    name for name in signature(load_settings).parameters if name != "environ"
)

#: The ``dispatch_uid`` of ipdebug's ``got_request_exception`` receiver.
DISPATCH_UID = "ipdebug.django"


def get_wsgi_application(**options: t.Any) -> IPDebugMiddleware:
    """Django's ``get_wsgi_application()``, wrapped in
    :class:`~ipdebug.IPDebugMiddleware`: set up Django and return the WSGI
    entry point.

    :param options: keyword arguments of ``IPDebugMiddleware``; they win over
        the ``IPDEBUG_*`` Django settings, which win over the environment.
    :raises ValueError: (:class:`~ipdebug.ConfigError`) naming the bad
        argument or setting and its value.
    """
    from django.core.wsgi import get_wsgi_application as django_application

    return wrap(django_application(), **options)


def get_asgi_application(**options: t.Any) -> IPDebugASGIMiddleware:
    """Django's ``get_asgi_application()``, wrapped in
    :class:`~ipdebug.asgi.IPDebugASGIMiddleware`, for ``asgi.py``; settings
    as for :func:`get_wsgi_application`.
    """
    from django.core.asgi import get_asgi_application as django_application

    return wrap_asgi(django_application(), **options)


def wrap_asgi(application: t.Any, **options: t.Any) -> IPDebugASGIMiddleware:
    """Wrap a Django ASGI application (``ASGIHandler``) already set up."""
    from .asgi import IPDebugASGIMiddleware

    connect_signal()
    environ = options.get("environ")
    from_settings = settings_options(os.environ if environ is None else environ)
    return IPDebugASGIMiddleware(application, **{**from_settings, **options})


def wrap(application: WSGIApplication, **options: t.Any) -> IPDebugMiddleware:
    """Wrap a Django WSGI application (``WSGIHandler``) already set up.
    See :func:`get_wsgi_application`.
    """
    connect_signal()
    environ = options.get("environ")
    from_settings = settings_options(os.environ if environ is None else environ)
    return IPDebugMiddleware(application, **{**from_settings, **options})


def setting_name(option: str) -> str:
    """``"trusted_hosts"`` -> ``"IPDEBUG_TRUSTED_HOSTS"``."""
    return f"IPDEBUG_{option.upper()}"


def settings_options(environ: Mapping[str, str]) -> dict[str, t.Any]:
    """The middleware options the Django settings give: each ``IPDEBUG_*``
    setting that is not ``None``, and ``trusted_hosts`` from
    ``ALLOWED_HOSTS`` when neither ``IPDEBUG_TRUSTED_HOSTS`` (setting) nor
    the variable of that name in ``environ`` is set.

    :raises ConfigError: naming the setting, for a bad value, or for an
        ``IPDEBUG_*`` setting ipdebug does not know (a typo must not silently
        leave a setting at its default).
    """
    known = {setting_name(option) for option in SETTINGS}
    for name in dir(settings):
        if name.startswith("IPDEBUG_") and name not in known:
            raise ConfigError(
                name,
                getattr(settings, name),
                f"is not an ipdebug setting; the settings are {', '.join(sorted(known))}",
            )
    options = {
        option: value
        for option in SETTINGS
        if (value := getattr(settings, setting_name(option), None)) is not None
    }
    if "trusted_hosts" not in options and not environ.get("IPDEBUG_TRUSTED_HOSTS"):
        hosts = hosts_from_allowed_hosts(getattr(settings, "ALLOWED_HOSTS", ()))
        if hosts:
            options["trusted_hosts"] = hosts
    try:
        load_settings(**options, environ=environ)
    except ConfigError as exc:
        if exc.setting not in options:
            raise
        raise ConfigError(setting_name(exc.setting), exc.value, exc.reason) from None
    return options


def hosts_from_allowed_hosts(allowed_hosts: t.Iterable[object]) -> list[str]:
    """The entries of ``ALLOWED_HOSTS`` that name hosts: ``"*"`` (every host)
    and anything else that is not a host name are left out.

    >>> hosts_from_allowed_hosts(["*", ".example.com", "[::1]"])
    ['.example.com', '[::1]']
    """
    hosts = []
    for entry in allowed_hosts:
        if not isinstance(entry, str) or "*" in entry:
            continue
        try:
            parse_trusted_hosts([entry], setting="ALLOWED_HOSTS")
        except ConfigError:
            continue
        hosts.append(entry)
    return hosts


def _stash(sender: object, request: object = None, **kwargs: object) -> None:
    """``got_request_exception`` receiver: hand the exception Django is
    handling to ipdebug when the request is gated in.
    """
    # Django sends the signal inside its ``except`` block: the exception is
    # the one being handled. A WSGIRequest's ``environ`` is the WSGI environ
    # itself (``request.META`` is the same dict), which the middleware reads.
    environ = getattr(request, "environ", None)
    if environ is None:
        # An ASGIRequest: its scope, marked by the ASGI middleware.
        environ = getattr(request, "scope", None)
    exc = sys.exc_info()[1]
    if isinstance(environ, dict) and exc is not None:
        stash_exception(environ, exc)


def connect_signal() -> None:
    """Connect ipdebug's receiver to ``got_request_exception`` (idempotent).
    It acts only on gated-in requests.
    """
    got_request_exception.connect(_stash, dispatch_uid=DISPATCH_UID)


class IPDebugConfig(AppConfig):
    """``INSTALLED_APPS`` entry ``"ipdebug.django.IPDebugConfig"``: registers
    ipdebug's system checks and connects the signal receiver.
    """

    name = "ipdebug"
    label = "ipdebug"
    verbose_name = "ipdebug"

    def ready(self) -> None:
        connect_signal()
        checks.register(check_settings, checks.Tags.security)
        checks.register(check_deployment, checks.Tags.security, deploy=True)


def check_settings(**kwargs: object) -> list[checks.CheckMessage]:
    """System check: the ``IPDEBUG_*`` settings are valid (``ipdebug.E001``)."""
    try:
        settings_options(os.environ)
    except ConfigError as exc:
        return [
            checks.Error(
                f"ipdebug would refuse to start: {exc}",
                hint="Fix the value (or the setting's name); see the configuration page of the documentation (docs/configuration.md).",
                id="ipdebug.E001",
            )
        ]
    return []


def check_deployment(**kwargs: object) -> list[checks.CheckMessage]:
    """Deployment checks (``manage.py check --deploy``): ``DEBUG`` is off
    (``ipdebug.W001``), the debugger can be served for this site's host names
    (``ipdebug.W002``), and the deployment has an allowlist
    (``ipdebug.W003``).
    """
    messages: list[checks.CheckMessage] = []
    if settings.DEBUG:
        messages.append(
            checks.Warning(
                "DEBUG is True: Django shows its technical 500 page, with local "
                "variables and settings, to every client.",
                hint="Set DEBUG = False in production; ipdebug gives the debugger "
                "to allowed clients only, during a window.",
                id="ipdebug.W001",
            )
        )
    try:
        options = settings_options(os.environ)
    except ConfigError:
        return messages  # reported by ipdebug.E001
    if "trusted_hosts" not in options and not os.environ.get("IPDEBUG_TRUSTED_HOSTS"):
        messages.append(
            checks.Warning(
                "ipdebug serves the debugger only for the hosts "
                f"{', '.join(DEFAULT_TRUSTED_HOSTS)}: ALLOWED_HOSTS names no host "
                "it can use ('*' never means every host to ipdebug).",
                hint="Set IPDEBUG_TRUSTED_HOSTS to this site's host names, e.g. "
                "['app.example.com'].",
                id="ipdebug.W002",
            )
        )
    if "allow" not in options and not os.environ.get("IPDEBUG_ALLOW"):
        messages.append(
            checks.Warning(
                "IPDEBUG_ALLOW is not set: any address given to `ipdebug enable "
                "--allow` gets the debugger.",
                hint="Set IPDEBUG_ALLOW to the addresses or networks your operators "
                "connect from; each window can only narrow it.",
                id="ipdebug.W003",
            )
        )
    return messages
