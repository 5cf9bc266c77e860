"""ASGI entry point: Django's application wrapped in ipdebug.

    uvicorn --workers 4 --no-proxy-headers examples.djangoproject.asgi:application

(The view exception Django turns into its 500 reaches ipdebug through
``got_request_exception``, for gated-in requests only.)
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.djangoproject.settings")

from ipdebug.django import get_asgi_application

application = get_asgi_application()
