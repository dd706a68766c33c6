"""
The webhook endpoint: the only unauthenticated write in the system. It is its own authentication:
the provider's signature over the raw body, checked before anything is parsed or stored.

A plain Django view, not DRF: no API key, no session, no CSRF token, none of the API's throttles,
which would turn a burst of genuine deliveries into 429s (and provider retries).
"""

from __future__ import annotations

import json
import threading
import time

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from config.metrics import webhook_intake_observed
from payments.gateway.stripe import PROVIDER
from webhooks.errors import WebhookRejected
from webhooks.services import webhook_event_receive

logger = structlog.get_logger(__name__)
TOO_LARGE = "request_too_large"
# Anyone can post junk here as fast as they like; a log line for each would let them fill the disks
# and bury real lines. One line per reason per this many seconds, per process, with how many it
# stands for; the `webhook_intake` counter counts every one.
REJECTION_LOG_INTERVAL_SECONDS = 10.0
# The two answers to a verified delivery, serialised once (a JsonResponse per delivery showed in profiles).
_STORED = json.dumps({"received": True, "duplicate": False}).encode()
_DUPLICATE = json.dumps({"received": True, "duplicate": True}).encode()


class _ThrottledLog:
    """At most one log line per key per interval; the lines in between are counted into the next."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, key: str) -> int | None:
        """Return how many were suppressed since the last line if one may be logged now, else None."""
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self.interval) < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._suppressed.pop(key, 0)


_rejection_log = _ThrottledLog(REJECTION_LOG_INTERVAL_SECONDS)


def _error(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    # Django's request logger writes a line for every 4xx/5xx answer unless the response says it was
    # logged (django.utils.log.log_response): ours are counted, and logged at the rate above.
    response._has_been_logged = True
    return response


def _rejected(request: HttpRequest, status: int, code: str, message: str) -> JsonResponse:
    webhook_intake_observed(provider=PROVIDER, outcome="rejected", reason=code)
    suppressed = _rejection_log(code)
    if suppressed is not None:
        # Never the header or the body: they are the sender's, and a forger's.
        log = logger.error if status >= 500 else logger.warning
        log(
            "webhook_rejected",
            provider=PROVIDER,
            reason=code,
            status=status,
            remote_addr=request.META.get("REMOTE_ADDR"),
            similar_suppressed=suppressed,
        )
    return _error(status, code, message)


@csrf_exempt
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """POST /webhooks/stripe: verify the raw body, store the event once, answer at once."""
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Only POST is accepted here.")
        response["Allow"] = "POST"
        return response
    limit = settings.STRIPE_WEBHOOK_MAX_BODY_BYTES
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:  # refused before a byte of it is read
        return _rejected(request, 413, TOO_LARGE, f"The body is larger than {limit} bytes.")
    payload = request.read(limit + 1)  # the raw bytes, never request.body or a parsed body
    if len(payload) > limit:
        return _rejected(request, 413, TOO_LARGE, f"The body is larger than {limit} bytes.")
    try:
        event, stored = webhook_event_receive(
            payload=payload, signature=request.headers.get("Stripe-Signature"), now=timezone.now()
        )
    except WebhookRejected as exc:
        return _rejected(request, exc.http_status, exc.code, exc.message)
    webhook_intake_observed(provider=PROVIDER, outcome="accepted" if stored else "duplicate")
    logger.info(
        "webhook_received",
        provider=PROVIDER,
        provider_event_id=event["id"],
        event_type=event["type"],
        duplicate=not stored,
    )
    return HttpResponse(_STORED if stored else _DUPLICATE, content_type="application/json")
