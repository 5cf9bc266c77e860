"""Apps whose ``/customer?v=...`` fails with the query in a local variable
(never in the message): the capture tests read it back from live frames.
``plain`` is a bare WSGI app, ``flask_app`` a Flask app with its own 500
page. Neither is wrapped: the servers wrap them.
"""

from __future__ import annotations

import time
import typing as t

from flask import Flask, request

#: Seconds a failing request takes: concurrent failures then occupy a
#: worker (or a gthread worker's threads) and spread over the workers.
SLOW = 0.2


class OrderFailed(Exception):
    """What the failing routes raise."""


def plain(
    environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]
) -> list[bytes]:
    if environ["PATH_INFO"] == "/customer":
        customer_value = environ.get("QUERY_STRING", "")
        time.sleep(SLOW)
        raise OrderFailed(f"order failed ({len(customer_value)} characters)")
    body = f"hello {environ['PATH_INFO']}".encode()
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


flask_app = Flask(__name__)


@flask_app.route("/customer")
def customer() -> str:
    customer_value = request.args.get("v", "")
    time.sleep(SLOW)
    raise OrderFailed(f"order failed ({len(customer_value)} characters)")


@flask_app.route("/")
def index() -> str:
    return "hello from Flask"


@flask_app.errorhandler(500)
def sorry(error: Exception) -> tuple[str, int]:
    return "Sorry, something went wrong (Flask's own page).", 500
