"""
Two middleware stacks in one process: the API's for `/api/v1/` and `/webhooks/`, the site's for the rest.

Clients of the API authenticate with a key (or, for webhooks, a signature) and read JSON: sessions, CSRF
tokens, Django's users and messages, the admin login lockout, static files and the per-page
Content-Security-Policy are the admin's and the docs' concerns. Run for every request, they cost a
create about a fifth of its CPU (issue 11). So each path goes through one Django handler of two:
settings.MIDDLEWARE (the site: admin, ops pages, API docs, probes, /metrics) or settings.API_MIDDLEWARE,
chosen by PATH_INFO, the path Django resolves: a path dispatched to the API stack can only resolve to an
API or webhook view, and the other way round. gunicorn's application (config/wsgi.py) and the test
client (tests/conftest.py) dispatch the same way.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

API_PATH_PREFIXES = ("/api/v1/", "/webhooks/")
_loading = threading.Lock()


def uses_api_stack(path_info: str) -> bool:
    """Whether a request for `path_info` (the WSGI PATH_INFO) is served by the API's middleware stack."""
    return path_info.startswith(API_PATH_PREFIXES)


class ApiMiddlewareMixin:
    """A Django handler whose middleware is settings.API_MIDDLEWARE instead of settings.MIDDLEWARE.

    Django's loader reads settings.MIDDLEWARE: it is handed the API's list for the time of the load
    (once per handler, at start-up, before any request is served) and given its own back after.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        with _loading:
            site = settings.MIDDLEWARE
            settings.MIDDLEWARE = settings.API_MIDDLEWARE
            try:
                super().load_middleware(is_async)
            finally:
                settings.MIDDLEWARE = site


class ApiWSGIHandler(ApiMiddlewareMixin, WSGIHandler):
    pass


def stack_dispatch(*, site, api):
    """The WSGI application that hands each request to `api` or `site` by its path."""

    def application(environ, start_response):
        handler = api if uses_api_stack(environ.get("PATH_INFO", "")) else site
        return handler(environ, start_response)

    return application
