"""Views of the example project: one that fails, and the site's own 500 page."""

import os

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Hello from Django; /fail fails.\n", content_type="text/plain")


def fail(request: HttpRequest) -> HttpResponse:
    basket = {"apples": 3, "pears": 0}
    worker_pid = os.getpid()
    ratio = basket["apples"] / basket["pears"]  # ZeroDivisionError
    return HttpResponse(f"{ratio} from {worker_pid}")


def checkout(request: HttpRequest) -> HttpResponse:
    """Fails for one customer's odd input (``?customer=...``)."""
    customer_value = request.GET.get("customer", "")
    discount = {"spring": 10}[customer_value]  # KeyError for everybody else
    return HttpResponse(f"{discount}% off")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such basket")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("not your basket")


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: what every client but an allowed one gets."""
    return HttpResponseServerError(
        "Sorry, something broke on our side. We have been told.\n",
        content_type="text/plain",
    )
