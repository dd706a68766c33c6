"""The API's edge: a request id the client can quote (Stripe's Request-Id), one access log line, no-store."""

from __future__ import annotations

import re
import time

import structlog
from ulid import ULID

logger = structlog.get_logger("payments.api.access")
# A client's own correlation id is logged beside ours when it is short and plainly printable;
# anything else (spaces, controls, non-ASCII, long) is dropped rather than cleaned up.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# The path is logged, and a client may put anything where an id goes: a segment holding an e-mail address
# or a run of 13 to 19 digits (a card number, maybe spaced or dashed) is logged as "[redacted]". Our ids
# (pay_…, re_…, ULIDs) hold no "@", and no such run between non-alphanumerics.
_PERSONAL_IN_PATH = re.compile(r"[^/]*@[^/]*|(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")


class RequestIdMiddleware:
    """Tag every response with our `Request-Id`, log one line for each request, and mark API answers no-store.

    The id is always ours, so a log search by id finds our request and no other. The line holds
    method, path, status, duration and client (never bodies, query strings or the Referer, so no
    card data, API key or personal data reaches the logs); the JSON renderer (config/log.py) escapes
    every value a client controls. Every event logged while the request runs carries its request_id.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = f"req_{ULID()}"
        incoming = request.headers.get("X-Request-Id", "")
        client_request_id = incoming if _CLIENT_REQUEST_ID.fullmatch(incoming) else None
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request.request_id):
            response = self.get_response(request)
            response["Request-Id"] = request.request_id
            if request.path.startswith("/api/"):
                # Answers are per client and per moment, errors and replays included: no browser or
                # proxy may keep a copy (https://www.rfc-editor.org/rfc/rfc9111#name-no-store).
                response["Cache-Control"] = "no-store"
            # Every request, not only the API's: with gunicorn's access log off this is the only one,
            # and admin logins and actions must leave a line too.
            logger.info(
                "api_request",
                client_request_id=client_request_id,
                method=request.method,
                path=_PERSONAL_IN_PATH.sub("[redacted]", request.path),
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                client=getattr(getattr(request, "user", None), "name", None),
                bytes_in=_content_length(request),
            )
        if response.status_code < 500:
            # This line is the answer's record: Django's own "Not Found: <path>" warning would repeat
            # the raw path. A 5xx keeps Django's line, logged with its traceback where it was raised.
            response._has_been_logged = True
        return response


def _content_length(request) -> int | None:
    length = request.META.get("CONTENT_LENGTH") or "0"
    return int(length) if length.isdigit() and len(length) < 20 else None  # a header, so not trusted
