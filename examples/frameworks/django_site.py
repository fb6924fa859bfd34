"""A one-file Django site whose ``LOGGING`` setting records warnings and 500s with code_wake.

    python examples/frameworks/django_site.py DATABASE_URL   # two requests through Django's test client

docs/frameworks.md explains the setting; the tests run this file.
"""

from __future__ import annotations

import logging
import sys

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

DATABASE_URL = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///django_site.sqlite"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "code_wake": {
            "class": "code_wake.logging.CodeWakeHandler",
            "level": "WARNING",
            "store_config": DATABASE_URL,
            "app_name": "django-shop",
            "env_name": "test",
        },
    },
    # On the root logger: django.request (a 500's "Internal Server Error: /path", with
    # the exception) and django.security propagate to it, as do the app's own loggers.
    "root": {"level": "INFO", "handlers": ["code_wake"]},
}


def order(request: HttpRequest) -> HttpResponse:
    logging.getLogger("shop.orders").warning("unknown item %r", request.GET.get("item"))
    return HttpResponse("no such item", status=404)


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the view failed")


urlpatterns = [path("order", order), path("crash", crash)]

settings.configure(
    DEBUG=False,
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["testserver", "127.0.0.1"],
    LOGGING=LOGGING,
    MIDDLEWARE=[],
    SECRET_KEY="example-only",  # noqa: S106 - a test site
)
django.setup()

if __name__ == "__main__":
    from django.test import Client

    client = Client(raise_request_exception=False)
    print(client.get("/order", {"item": "scone"}).status_code)
    print(client.get("/crash").status_code)
