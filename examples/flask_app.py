"""A Flask shop with a bug, wrapped by ipdebug.

Run it any way you run Flask apps (``flask --app examples.flask_app run``,
``gunicorn examples.flask_app:app``). Settings come from ``IPDEBUG_*``
environment variables; open a window with ``ipdebug enable --allow ssh``.
"""

from __future__ import annotations

from flask import Flask

from ipdebug import IPDebugMiddleware

app = Flask(__name__)


@app.route("/")
def index() -> str:
    return '<p>A tiny shop. <a href="/checkout">Check out</a> (it fails).</p>'


@app.route("/checkout")
def checkout() -> str:
    basket = {"apples": 3, "pears": 0}
    unit_price = {"apples": 0.5, "pears": 0.75}
    # The bug: the average price per item divides by the pears count.
    average = sum(unit_price[k] * n for k, n in basket.items()) / basket["pears"]
    return f"average {average}"


@app.errorhandler(500)
def sorry(error: Exception) -> tuple[str, int]:
    # What every other visitor sees: ipdebug does not change it.
    return "<p>Sorry, something went wrong. We have been notified.</p>", 500


# Keep `app` the Flask object (for `flask run` and extensions); wrap the WSGI
# callable inside it.
app.wsgi_app = IPDebugMiddleware(app.wsgi_app)  # type: ignore[method-assign]
