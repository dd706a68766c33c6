"""
The WSGI application gunicorn serves (config.wsgi:application), behind one guard.

Django builds its request object before any middleware or error handling runs, and a few headers
can make that step raise: a Content-Type naming a charset that Python knows but that cannot decode
the query string (`charset=rot13`, `bz2`, `punycode`: Django decodes request.GET with it at once),
or an RFC 2231 `charset*=` with an unknown encoding. The exception escaped to gunicorn: a 500 for
anyone, on any URL, answered by gunicorn and logged by it as a plain-text traceback headed by the
full request line, query string (and any key in it) included. The guard answers such a request 400
itself and logs one JSON event without the query string.

Behind it, the API's paths and the site's go through their own middleware stacks (config/stacks.py).
"""

import os

import structlog
from django.core.handlers.wsgi import WSGIRequest
from django.core.wsgi import get_wsgi_application

from config.stacks import ApiWSGIHandler, stack_dispatch

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
logger = structlog.get_logger(__name__)

BAD_REQUEST_BODY = (
    b'{"error": {"type": "invalid_request_error", "code": "request_malformed", '
    b'"message": "The request could not be read (check the charset of its Content-Type).", "param": null}}'
)


def refuse_unreadable_requests(app):
    """Wrap `app` so that a request Django could not even build is answered 400, never 500."""

    def guarded(environ, start_response):
        try:
            # What Django's handler does first, on a copy: building a request rewrites PATH_INFO in
            # its environ, and the handler must start from the original. The body is not read here.
            WSGIRequest(dict(environ))
        except Exception as exc:  # whatever it is, nothing but the request's own headers was read
            logger.warning(
                "request_unreadable",
                method=environ.get("REQUEST_METHOD"),
                path=environ.get("PATH_INFO"),
                error=type(exc).__name__,
            )
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/json"), ("Content-Length", str(len(BAD_REQUEST_BODY)))],
            )
            return [BAD_REQUEST_BODY]
        return app(environ, start_response)

    return guarded


site = get_wsgi_application()  # sets Django up first
application = refuse_unreadable_requests(stack_dispatch(site=site, api=ApiWSGIHandler()))
