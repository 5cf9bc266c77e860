from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("fail", views.fail),
    path("checkout", views.checkout),
    path("missing", views.missing),
    path("forbidden", views.forbidden),
]

handler500 = "examples.djangoproject.views.server_error"
