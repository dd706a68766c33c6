"""Site-wide request hygiene that no view should have to repeat."""

from __future__ import annotations

import codecs
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from config.db import database_unavailable

logger = logging.getLogger(__name__)
# As the API's own 503 (payments/api/exception_handler.py): the next request reconnects.
DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = 1
# A JSON answer loads nothing and is shown in no frame (OWASP's REST Security Cheat Sheet).
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


class RefuseUnreadableRequestMiddleware:
    """Refuse, before any view or query sees it, a request Django or PostgreSQL would misread.

    - A NUL byte in the path or a query parameter is 400: PostgreSQL cannot store or compare NUL in
      text, so a `?status__exact=%00` on an admin list (or a `%00` object id in an admin URL) reached
      the database and came back as a 500. Nothing legitimate sends one.
    - A body without a Content-Length (`Transfer-Encoding: chunked`) is 411: Django and DRF read a body
      only up to its Content-Length, and gunicorn passes a chunked request on without one, so its body
      was taken for no body at all (a chunked refund of 100 refunded all that was left).
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "HTTP_TRANSFER_ENCODING" in request.META:
            return _refusal(
                411,
                "length_required",
                "A request body needs a Content-Length header; chunked transfer encoding is not accepted.",
            )
        if "\x00" in request.path or _query_has_nul(request):
            return _refusal(400, "parameter_invalid", "NUL bytes are not allowed.")
        return self.get_response(request)


def _refusal(status: int, code: str, message: str) -> JsonResponse:
    payload = {"type": "invalid_request_error", "code": code, "message": message, "param": None}
    return JsonResponse({"error": payload}, status=status)


def _query_has_nul(request: HttpRequest) -> bool:
    """Whether a name or value of request.GET holds a NUL, without parsing a query string that cannot hold one.

    Decoded as UTF-8 (Django's default), a NUL comes only from a NUL byte or `%00` in the raw query
    string (an invalid sequence decodes to U+FFFD, never to NUL); other charsets a client may name
    (UTF-7's `+AAA-`, UTF-16) are parsed and looked through as before.
    """
    query = request.META.get("QUERY_STRING", "")
    if "%00" not in query and "\x00" not in query and _decodes_as_utf8(request):
        return False
    return any("\x00" in key or "\x00" in value for key, value in _query_items(request))


def _decodes_as_utf8(request: HttpRequest) -> bool:
    try:
        return codecs.lookup(request.encoding or settings.DEFAULT_CHARSET).name == "utf-8"
    except LookupError:
        return False


def _query_items(request: HttpRequest):
    for key, values in request.GET.lists():
        for value in values:
            yield key, value


class DatabaseUnavailableMiddleware:
    """Answer 503 with Retry-After, not 500, when a view outside the API lost its database connection.

    The API's views say so through DRF's exception handler; the webhook endpoint and the admin are
    plain Django views, where a PostgreSQL restart or a terminated session mid-request was a 500 with
    a traceback logged as a bug (and, for the provider, a failure like any other). Their transaction
    rolled back, so a retry is safe, and Django closes the broken connection when the request ends.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_unavailable(exception):
            return None  # anything else is Django's 500, logged with its traceback
        logger.warning("database unavailable, answered 503: %s", type(exception.__cause__ or exception).__name__)
        message = "The service is briefly unavailable; nothing was stored. Retry shortly."
        if request.path.startswith(("/api/", "/webhooks/")):
            response = JsonResponse({"error": {"code": "service_unavailable", "message": message}}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS)
        response._has_been_logged = True  # the warning above is its line, not Django's error per 5xx
        return response


class ApiSecurityHeadersMiddleware:
    """The API stack's answer to the site's CSP and clickjacking middleware: two fixed headers.

    django-csp builds the pages' policy from settings on every response (a twentieth of a create's CPU);
    an API answer needs only the strictest policy, which never changes. X-Frame-Options is set as
    XFrameOptionsMiddleware sets it (X_FRAME_OPTIONS), for browsers that predate frame-ancestors.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.frame_options = settings.X_FRAME_OPTIONS.upper()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        headers = response.headers
        headers.setdefault("Content-Security-Policy", API_CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", self.frame_options)
        return response
