"""gunicorn integration: one switch and one working console across workers.

Without a config file of your own, use this module as gunicorn's config and
set ipdebug's settings in the environment:

.. code-block:: sh

    IPDEBUG_ALLOW=203.0.113.7 IPDEBUG_TRUSTED_HOSTS=app.example.com \\
        gunicorn -c python:ipdebug.gunicorn -w 4 myapp:app

gunicorn reads only one ``-c``; with a ``gunicorn.conf.py`` of your own, add
one line at its end (it keeps hooks you defined and runs them first):

.. code-block:: python

    __import__("ipdebug.gunicorn").gunicorn.install(globals())

Each worker's application is wrapped in
:class:`~ipdebug.IPDebugMiddleware` after gunicorn has loaded it
(``post_worker_init``), so the app module needs no change; this works with
and without ``--preload``, with the sync and gthread workers, with
``--reload``, and with uvicorn's workers (``-k uvicorn_worker.UvicornWorker``),
whose ASGI app gets :class:`~ipdebug.asgi.IPDebugASGIMiddleware`. Everything per worker (the debugger secret, the relay socket)
is created in the worker, after the fork. Console requests reach the worker
that rendered the page through the relay (see :mod:`ipdebug.debugger.relay`); PIN
failures are counted across workers through the flag's directory.

``ipdebug`` and ``ipdebug.audit`` records go to gunicorn's error log (which
prints the worker pid) unless you configured the ``ipdebug`` logger yourself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import typing as t

from .audit import logger
from .debugger.relay import stop_all
from .middleware import IPDebugMiddleware, instances


def wrap_worker(worker: t.Any, **options: t.Any) -> None:
    """Wrap ``worker.wsgi`` unless the app already wraps itself (in that
    case only the logging is set up).

    :param options: keyword arguments of ``IPDebugMiddleware``; unset ones
        come from ``IPDEBUG_*`` variables.
    """
    _route_logs(worker)
    existing = instances()
    if existing:
        # The app module built its own middleware (in this worker, or in the
        # master with --preload): a second one would answer with the wrong
        # secret.
        logger.info(
            "ipdebug: the application already uses IPDebugMiddleware; not wrapping it again"
        )
    elif _is_asgi(worker):
        # An ASGI worker (uvicorn's): the same core behind the ASGI adapter.
        from .asgi import wrap_asgi

        worker.wsgi = wrap_asgi(worker.wsgi, **options)
        existing = [worker.wsgi.core]
    elif type(worker.wsgi).__module__.startswith("django."):
        # A Django WSGIHandler: read IPDEBUG_* from its settings too, and
        # take over its view exceptions.
        from .django import wrap

        worker.wsgi = wrap(worker.wsgi, **options)
        existing = [worker.wsgi]
    else:
        worker.wsgi = IPDebugMiddleware(worker.wsgi, **options)
        existing = [worker.wsgi]
    for middleware in existing:
        middleware.recycle = _recycler(worker)


def _is_asgi(worker: t.Any) -> bool:
    """Whether the worker serves an ASGI app: uvicorn's workers
    (``uvicorn_worker.UvicornWorker``, ``uvicorn.workers.UvicornWorker``).
    """
    return type(worker).__module__.split(".")[0] in ("uvicorn", "uvicorn_worker")


def _recycler(worker: t.Any) -> t.Callable[[], None]:
    def recycle() -> None:
        # gunicorn's worker loop ends after the current request, and the
        # arbiter starts a fresh worker in its place; the byte on the
        # worker's pipe wakes an idle loop, as gunicorn's reloader does.
        worker.alive = False
        pipe = getattr(worker, "PIPE", None)
        if pipe:
            with contextlib.suppress(OSError):
                os.write(pipe[1], b"1")

    return recycle


def _route_logs(worker: t.Any) -> None:
    if logger.handlers:
        return  # configured by the application: leave it alone
    error_log = getattr(getattr(worker, "log", None), "error_log", None)
    if isinstance(error_log, logging.Logger) and error_log.handlers:
        for handler in error_log.handlers:
            logger.addHandler(handler)
        logger.propagate = False
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def post_worker_init(worker: t.Any) -> None:
    """gunicorn hook: wrap this worker's application."""
    wrap_worker(worker)


def worker_exit(server: t.Any, worker: t.Any) -> None:
    """gunicorn hook: remove this worker's relay socket."""
    stop_all()


def install(namespace: dict[str, t.Any], **options: t.Any) -> None:
    """Install the hooks into a gunicorn config module's namespace, keeping
    (and running first) hooks the config already defines.

    .. code-block:: python

        # gunicorn.conf.py
        import ipdebug.gunicorn
        ipdebug.gunicorn.install(globals(), allow=["10.8.0.0/16"])

    :param options: keyword arguments of ``IPDebugMiddleware``.
    """
    theirs_init = namespace.get("post_worker_init")
    theirs_exit = namespace.get("worker_exit")

    # gunicorn checks each hook's number of arguments: keep them exact.
    def chained_post_worker_init(worker: t.Any) -> None:
        if callable(theirs_init):
            theirs_init(worker)
        wrap_worker(worker, **options)

    def chained_worker_exit(server: t.Any, worker: t.Any) -> None:
        if callable(theirs_exit):
            theirs_exit(server, worker)
        stop_all()

    namespace["post_worker_init"] = chained_post_worker_init
    namespace["worker_exit"] = chained_worker_exit
