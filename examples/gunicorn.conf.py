"""An existing gunicorn.conf.py with ipdebug added (the last two lines).

    gunicorn -c examples/gunicorn.conf.py examples.wsgi_app:app

gunicorn reads only one -c file, so ipdebug installs its hooks into yours:
it wraps each worker's app after gunicorn loaded it (no change to the app
module) and keeps, and runs first, hooks you already defined. ipdebug's
settings come from IPDEBUG_* environment variables or keyword arguments of
install().
"""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = 4
# Behind nginx on the same host: believe its X-Forwarded-For (ipdebug reads
# its own trusted_proxies setting; this one is gunicorn's, for the scheme).
forwarded_allow_ips = "127.0.0.1"


def post_worker_init(worker):
    # A hook of your own: ipdebug runs it first, then wraps the app.
    worker.log.info("worker %s ready", worker.pid)


import ipdebug.gunicorn  # noqa: E402

ipdebug.gunicorn.install(globals(), trusted_proxies=["127.0.0.1"])
