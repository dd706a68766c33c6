"""One access log line per API request, with a request id the client can quote (Stripe's Request-Id)."""

from __future__ import annotations

import logging
import re
import time

from ulid import ULID

logger = logging.getLogger("payments.api.access")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    """Tag every response with `Request-Id` and log method, path, status, duration and client.

    Only the path is logged (ids, never bodies or query strings), so no card data or personal data
    (customer_reference, metadata) reaches the logs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-Id", "")
        request.request_id = incoming if _CLIENT_REQUEST_ID.match(incoming) else f"req_{ULID()}"
        started = time.perf_counter()
        response = self.get_response(request)
        response["Request-Id"] = request.request_id
        if request.path.startswith("/api/"):
            client = getattr(getattr(request, "user", None), "name", "-")
            logger.info(
                "request_id=%s method=%s path=%s status=%s duration_ms=%.1f client=%s bytes_in=%s",
                request.request_id,
                request.method,
                request.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
                client,
                request.headers.get("Content-Length", "0"),
            )
        return response
