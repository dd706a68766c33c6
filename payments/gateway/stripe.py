"""
The Stripe implementation of `PaymentGateway`, on the official SDK. The only module that imports `stripe`.

One `StripeClient` per process, configured once: the SDK's own network retries off (the outbox row
owns the retry schedule), a (connect, read) timeout on every call so "nothing was sent" can be told
from "sent, no answer", the pinned API version, and our derived key as `Idempotency-Key` on every POST.

Every HTTP call writes one structlog line (`payments.gateway.calls`) with ids, sizes, status and
timing, never a body, a query string, card data or metadata values; our request id is also sent to
Stripe as `X-Request-Id`.
"""

from __future__ import annotations

import functools
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import stripe
import structlog
import urllib3.exceptions
from django.conf import settings

from payments.gateway.base import (
    NO_SECRET_CONFIGURED,
    PAYLOAD_NOT_UTF8,
    SIGNATURE_MALFORMED,
    SIGNATURE_MISMATCH,
    SIGNATURE_MISSING,
    TIMESTAMP_OUTSIDE_TOLERANCE,
    EventPage,
    IntentPage,
    IntentResult,
    PaymentGateway,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderDeclined,
    ProviderError,
    ProviderIdempotencyConflict,
    ProviderInvalidRequest,
    ProviderOutcomeUnknown,
    ProviderRateLimited,
    ProviderServerError,
    ProviderUnavailable,
    RefundPage,
    RefundResult,
    WebhookSignatureInvalid,
)
from payments.gateway.calls import Exchange, provider_call, record_exchange, safe_id

logger = structlog.get_logger("payments.gateway")

PROVIDER = "stripe"
# A TCP (and TLS) handshake to Stripe takes milliseconds; one that has not finished in seconds will
# not, and nothing was sent yet, so failing fast is safe. Used when STRIPE_CONNECT_TIMEOUT_SECONDS is unset.
DEFAULT_CONNECT_TIMEOUT_SECONDS = 3.0
# Stripe's search syntax quotes values; our payment ids never need escaping, so refuse any that would.
_SEARCHABLE = re.compile(r"[A-Za-z0-9_:-]{1,128}")
# https://docs.stripe.com/error-codes#idempotency-key-in-use: the same key is still being processed.
_IN_FLIGHT_CODE = "idempotency_key_in_use"
# requests refuses these before connecting: STRIPE_API_BASE is wrong, and every call will fail the same way.
_BAD_URL = (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL)


class _EnvironmentOnceSession(requests.Session):
    """
    A `requests.Session` that reads the proxy environment once per origin, not on every request.

    `requests` merges HTTP(S)_PROXY/NO_PROXY (and the CA bundle variables) into each request by
    scanning every environment variable, twice: ~10 % of a payment submit's CPU in the worker, more
    the larger the environment. The answer depends only on the environment, the URL's scheme and
    host:port and the request's own settings, so it is kept per those; the environment is the
    process's, read once, as a server reads its configuration. Everything else (netrc, cookies,
    the merge itself) is requests' own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment_settings: dict[tuple, dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        origin = urlsplit(url)
        try:
            key = (origin.scheme, origin.netloc, tuple(sorted((proxies or {}).items())), stream, verify, cert)
            hash(key)
        except TypeError:  # an unhashable setting: no cache, requests' own answer
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        merged = self._environment_settings.get(key)
        if merged is None:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment_settings[key] = merged
        return {**merged, "proxies": dict(merged["proxies"])}  # requests may change what it is handed


class _MeasuredRequestsClient(stripe.RequestsClient):
    """The SDK's `requests` transport, timing each HTTP call for the gateway's log line."""

    def _request_internal(self, method, url, headers, post_data, is_streaming):
        if getattr(self._thread_local, "session", None) is None:  # the SDK keeps one session per thread
            self._thread_local.session = self._session or _EnvironmentOnceSession()
        return super()._request_internal(method, url, headers, post_data, is_streaming)

    def request(self, method, url, headers, post_data=None):
        body = post_data.encode() if isinstance(post_data, str) else post_data or b""
        exchange = Exchange(method=method.upper(), endpoint=urlsplit(url).path, request_bytes=len(body))
        started = time.perf_counter()
        try:
            content, status, response_headers = super().request(method, url, headers, post_data)
            exchange.status = status
            exchange.response_bytes = len(content or b"")
            exchange.provider_request_id = safe_id(response_headers.get("Request-Id"))
            exchange.replayed = response_headers.get("Idempotent-Replayed") == "true"
            return content, status, response_headers
        finally:
            exchange.duration_ms = (time.perf_counter() - started) * 1000
            record_exchange(exchange)


# --- the gateway ----------------------------------------------------------------------------------
class StripeGateway:
    """`PaymentGateway` on Stripe. Never retries on its own: every failure is one typed error."""

    name = PROVIDER

    def __init__(
        self,
        *,
        api_key: str,
        api_version: str,
        api_base: str = "",
        timeout_seconds: float,
        connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        if not api_key:
            raise ProviderAuthError("no Stripe secret key is configured (STRIPE_SECRET_KEY)")
        self.timeout = (connect_timeout_seconds, timeout_seconds)
        self.client = stripe.StripeClient(
            api_key,
            stripe_version=api_version,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=0,
            http_client=_MeasuredRequestsClient(timeout=self.timeout),
        )

    def intent_create_and_confirm(
        self,
        *,
        payment_id: str,
        amount: int,
        currency: str,
        payment_method: str,
        capture_method: str,
        description: str,
        idempotency_key: str,
    ) -> IntentResult:
        """Create and confirm a PaymentIntent with `metadata[payment_id]` (decline: ProviderDeclined)."""
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "payment_method": payment_method,
            "capture_method": capture_method,
            "confirm": True,
            # Confirmed server-side with no return_url: refuse redirect-based methods up front. Card
            # 3-D Secure still answers requires_action. https://docs.stripe.com/api/payment_intents/create
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": {"payment_id": payment_id},
        }
        if description:
            params["description"] = description
        intent = self._call(
            "intent_create",
            "payment_intent",
            lambda options: self.client.v1.payment_intents.create(params=params, options=options),
            idempotency_key=idempotency_key,
        )
        return _intent_result(intent)

    def intent_retrieve(self, *, intent_id: str) -> IntentResult:
        intent = self._call(
            "intent_retrieve",
            "payment_intent",
            lambda options: self.client.v1.payment_intents.retrieve(intent_id, options=options),
        )
        return _intent_result(intent)

    def intent_find(self, *, payment_id: str) -> IntentResult | None:
        """Find the intent made for our payment by `metadata['payment_id']`, or None.

        Stripe's search index lags writes by up to a minute (https://docs.stripe.com/search#data-freshness),
        so None means "not found yet": repeat the create with the same idempotency key rather than
        concluding nothing was charged.
        """
        if not _SEARCHABLE.fullmatch(payment_id):
            raise ValueError("a payment id to search for must be letters, digits, '_', ':' or '-'")
        found = self._call(
            "intent_find",
            "search_result",
            lambda options: self.client.v1.payment_intents.search(
                params={"query": f"metadata['payment_id']:'{payment_id}'", "limit": 10}, options=options
            ),
        )
        request_id = _provider_request_id(found)
        intents = [_intent_result(intent, request_id=request_id) for intent in found.data]
        if len(intents) > 1:
            # One create key per payment makes this impossible through us; if it happens, money is at risk.
            logger.warning("provider_duplicate_intents", provider=PROVIDER, intent_ids=[i.id for i in intents])
        return max(intents, key=lambda intent: intent.created) if intents else None

    def intent_capture(self, *, intent_id: str, amount: int | None, idempotency_key: str) -> IntentResult:
        params = {"amount_to_capture": amount} if amount is not None else {}
        intent = self._call(
            "intent_capture",
            "payment_intent",
            lambda options: self.client.v1.payment_intents.capture(intent_id, params=params, options=options),
            idempotency_key=idempotency_key,
        )
        return _intent_result(intent)

    def intent_cancel(self, *, intent_id: str, idempotency_key: str) -> IntentResult:
        intent = self._call(
            "intent_cancel",
            "payment_intent",
            lambda options: self.client.v1.payment_intents.cancel(intent_id, options=options),
            idempotency_key=idempotency_key,
        )
        return _intent_result(intent)

    def refund_create(
        self, *, intent_id: str, refund_id: str, payment_id: str, amount: int, reason: str, idempotency_key: str
    ) -> RefundResult:
        params: dict[str, Any] = {
            "payment_intent": intent_id,
            "amount": amount,
            "metadata": {"refund_id": refund_id, "payment_id": payment_id},
        }
        if reason:
            params["reason"] = reason
        refund = self._call(
            "refund_create",
            "refund",
            lambda options: self.client.v1.refunds.create(params=params, options=options),
            idempotency_key=idempotency_key,
        )
        return _refund_result(refund)

    def refund_retrieve(self, *, refund_id: str) -> RefundResult:
        refund = self._call(
            "refund_retrieve", "refund", lambda options: self.client.v1.refunds.retrieve(refund_id, options=options)
        )
        return _refund_result(refund)

    def events_list(
        self,
        *,
        starting_after: str | None = None,
        delivery_success: bool | None = None,
        types: Sequence[str] = (),
        limit: int = 100,
    ) -> EventPage:
        params: dict[str, Any] = {"limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        if types:
            if len(types) > EVENTS_LIST_MAX_TYPES:
                raise ValueError(f"Stripe filters events on at most {EVENTS_LIST_MAX_TYPES} types, not {len(types)}")
            params["types"] = list(types)
        if delivery_success is not None:
            params["delivery_success"] = delivery_success
        page = self._call(
            "events_list", "list", lambda options: self.client.v1.events.list(params=params, options=options)
        )
        return EventPage(events=[event.to_dict() for event in page.data], has_more=bool(page.has_more))

    def intents_list_created(
        self, *, gte: int, lt: int, starting_after: str | None = None, limit: int = 100
    ) -> IntentPage:
        params = _created_range(gte=gte, lt=lt, starting_after=starting_after, limit=limit)
        page = self._call(
            "intents_list", "list", lambda options: self.client.v1.payment_intents.list(params=params, options=options)
        )
        request_id = _provider_request_id(page)
        return IntentPage(
            intents=[_intent_result(intent, request_id=request_id) for intent in page.data],
            has_more=bool(page.has_more),
        )

    def refunds_list_created(
        self, *, gte: int, lt: int, starting_after: str | None = None, limit: int = 100
    ) -> RefundPage:
        params = _created_range(gte=gte, lt=lt, starting_after=starting_after, limit=limit)
        page = self._call(
            "refunds_list", "list", lambda options: self.client.v1.refunds.list(params=params, options=options)
        )
        return RefundPage(refunds=[_refund_result(refund) for refund in page.data], has_more=bool(page.has_more))

    def _call(
        self,
        operation: str,
        expected_object: str,
        send: Callable[[dict], Any],
        *,
        idempotency_key: str | None = None,
    ) -> Any:
        """Send one request and turn anything but the `expected_object` it asked for into a typed error."""
        if idempotency_key == "":
            raise ValueError(f"{operation} changes something at Stripe: it needs an idempotency key")
        with provider_call(provider=PROVIDER, operation=operation) as call:
            options: dict[str, Any] = {"headers": {"X-Request-Id": call.request_id}}
            if idempotency_key:
                options["idempotency_key"] = idempotency_key
            try:
                answer = send(options)
            except stripe.StripeError as exc:
                raise _translate(exc) from exc
            if _object_type(answer) != expected_object:
                # The SDK turns any 2xx JSON into an object, even {"error": ...}: never a success.
                response = getattr(answer, "last_response", None)
                raise ProviderBadResponse(
                    f"Stripe answered {operation} with a success status but no {expected_object} object",
                    status=getattr(response, "code", None),
                    request_id=safe_id(getattr(response, "request_id", None)),
                )
            return answer


# --- translation: SDK objects and errors to ours --------------------------------------------------
def _translate(exc: stripe.StripeError) -> ProviderError:
    """Map an SDK error onto the typed error that says what the caller must do next (see base.py)."""
    message = exc.user_message or type(exc).__name__
    context = {"status": exc.http_status, "request_id": safe_id(exc.request_id)}
    body = exc.json_body.get("error") if isinstance(exc.json_body, dict) else None
    body = body if isinstance(body, dict) else {}
    code = body.get("code") or exc.code or ""
    if exc.http_status == 409 and code == _IN_FLIGHT_CODE:
        return ProviderIdempotencyConflict(message, in_flight=True, **context)
    if isinstance(exc, stripe.RateLimitError):
        return ProviderRateLimited(message, retry_after=_retry_after(exc.headers), **context)
    if isinstance(exc, stripe.CardError):
        intent = body.get("payment_intent")  # Stripe sends the declined intent's snapshot with the 402
        return ProviderDeclined(
            message,
            code=body.get("decline_code") or code or "card_declined",
            intent=_intent_result(intent) if isinstance(intent, dict) else None,
            **context,
        )
    if isinstance(exc, stripe.IdempotencyError):
        return ProviderIdempotencyConflict(message, in_flight=False, **context)
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        return ProviderAuthError(message, **context)
    if isinstance(exc, stripe.InvalidRequestError):
        return ProviderInvalidRequest(message, code=code, **context)
    if isinstance(exc, stripe.APIConnectionError):
        return _connection_error(exc)
    if isinstance(exc, stripe.APIError):
        if exc.http_status is not None and 200 <= exc.http_status < 300:  # a 2xx body that is not JSON
            return ProviderBadResponse("Stripe answered with a success status and an unreadable body", **context)
        return ProviderServerError(message, **context)
    return ProviderError(message, **context)


def _connection_error(exc: stripe.APIConnectionError) -> ProviderError:
    """No HTTP answer: "not sent" only when the connection itself never opened; otherwise unknown."""
    cause = exc.__cause__
    name = type(cause).__name__ if cause else "connection error"
    if isinstance(cause, _BAD_URL):
        return ProviderAuthError(f"the Stripe API base is not a usable URL ({name}): check STRIPE_API_BASE")
    if _never_connected(cause):
        return ProviderUnavailable(f"could not connect to Stripe ({name}); nothing was sent")
    return ProviderOutcomeUnknown(f"no answer from Stripe after sending ({name}); it may have acted")


def _never_connected(error: BaseException | None) -> bool:
    """True when the chain shows a connect that failed (refused, DNS, connect timeout) before any byte was sent.

    requests wraps urllib3: ConnectionError(MaxRetryError(reason=NewConnectionError(...))) for a refused
    connection, ConnectTimeout for a connect timeout. A read timeout, a reset or a disconnect after the
    request went out is none of these.
    """
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        # NewConnectionError (refused, DNS failure) is a ConnectTimeoutError in urllib3's hierarchy.
        if isinstance(current, (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError)):
            return True
        if isinstance(current, urllib3.exceptions.MaxRetryError):
            pending.append(current.reason)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return False


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a `Retry-After: <seconds>` header; None when absent or not a number of seconds."""
    try:
        seconds = float((headers or {}).get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _object_type(answer: Any) -> str | None:
    if isinstance(answer, stripe.StripeObject) and "object" in answer:
        return answer["object"]
    return None


def _plain(obj: Any) -> dict:
    return obj.to_dict() if isinstance(obj, stripe.StripeObject) else dict(obj)


def _provider_request_id(obj: Any) -> str:
    response = getattr(obj, "last_response", None)
    return safe_id(getattr(response, "request_id", None)) or ""


def _intent_result(obj: Any, *, request_id: str | None = None) -> IntentResult:
    data = _plain(obj)
    error = data.get("last_payment_error") or {}
    return IntentResult(
        id=data["id"],
        status=data["status"],
        amount=data["amount"],
        currency=data["currency"],
        amount_capturable=data.get("amount_capturable") or 0,
        amount_received=data.get("amount_received") or 0,
        next_action=data.get("next_action") or None,
        failure_code=error.get("decline_code") or error.get("code") or "",
        failure_message=error.get("message") or "",
        created=data.get("created") or 0,
        metadata=dict(data.get("metadata") or {}),
        request_id=_provider_request_id(obj) if request_id is None else request_id,
    )


def _refund_result(obj: Any) -> RefundResult:
    data = _plain(obj)
    return RefundResult(
        id=data["id"],
        status=data["status"],
        amount=data["amount"],
        payment_intent=data.get("payment_intent") or "",
        failure_reason=data.get("failure_reason") or "",
        metadata=dict(data.get("metadata") or {}),
        currency=data.get("currency") or "",
        created=data.get("created") or 0,
        request_id=_provider_request_id(obj),
    )


def _created_range(*, gte: int, lt: int, starting_after: str | None, limit: int) -> dict[str, Any]:
    """List parameters for objects created in [gte, lt): https://docs.stripe.com/api/payment_intents/list"""
    params: dict[str, Any] = {"created": {"gte": gte, "lt": lt}, "limit": limit}
    if starting_after:
        params["starting_after"] = starting_after
    return params


# --- the Stripe dashboard -------------------------------------------------------------------------
DASHBOARD_URL = "https://dashboard.stripe.com"
# A key's prefix says which mode its objects live in: https://docs.stripe.com/keys#obtain-api-keys
# (secret `sk_`, restricted `rk_`). The dashboard shows test-mode objects under /test.
_LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")
_TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")


def dashboard_payment_url(*, intent_id: str) -> str | None:
    """
    Return the Stripe dashboard page of a PaymentIntent, or None when no real Stripe account is
    configured: no key, or the SDK pointed elsewhere (STRIPE_API_BASE: the sandbox, stripe-mock),
    where a dashboard link would lead to someone else's account or nowhere.
    """
    key = settings.STRIPE_SECRET_KEY
    if settings.STRIPE_API_BASE or not intent_id:
        return None
    if key.startswith(_LIVE_KEY_PREFIXES):
        mode = ""
    elif key.startswith(_TEST_KEY_PREFIXES):
        mode = "/test"
    else:
        return None
    return f"{DASHBOARD_URL}{mode}/payments/{quote(intent_id, safe='')}"


# --- webhooks: signatures and the snapshots events carry ------------------------------------------
# The event types we act on (https://docs.stripe.com/api/events/types); webhooks/handlers.py maps each
# to its handler. Any other type is stored and ignored.
EVENTS_LIST_MAX_TYPES = 20  # `types[]` of GET /v1/events takes at most this many names
EVENT_INTENT_SUCCEEDED = "payment_intent.succeeded"
EVENT_INTENT_PAYMENT_FAILED = "payment_intent.payment_failed"
EVENT_INTENT_CANCELED = "payment_intent.canceled"
EVENT_INTENT_REQUIRES_ACTION = "payment_intent.requires_action"
EVENT_INTENT_PROCESSING = "payment_intent.processing"
EVENT_INTENT_AMOUNT_CAPTURABLE_UPDATED = "payment_intent.amount_capturable_updated"
EVENT_CHARGE_REFUNDED = "charge.refunded"
EVENT_REFUND_CREATED = "refund.created"
EVENT_REFUND_UPDATED = "refund.updated"
EVENT_REFUND_FAILED = "refund.failed"
EVENT_CHARGE_DISPUTE_CREATED = "charge.dispute.created"
# https://docs.stripe.com/webhooks#verify-events : the SDK's default; a signed delivery older than this
# is refused as a replay. Used when STRIPE_WEBHOOK_TOLERANCE_SECONDS is unset.
DEFAULT_WEBHOOK_TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE
_SIGNATURE_SCHEME = stripe.WebhookSignature.EXPECTED_SCHEME  # "v1"
# Unix seconds have 10 digits until the year 2286. A longer t= is junk, and past 4300 digits int()
# itself raises: refused as malformed before anything converts it.
_TIMESTAMP_MAX_DIGITS = 12


def webhook_signature_verify(
    *, payload: bytes, header: str | None, secrets: Sequence[str], tolerance_seconds: int
) -> None:
    """
    Verify a webhook's raw body against its `Stripe-Signature` with the SDK, under any of `secrets`.

    Several secrets verify at once so one can be rotated without losing events: the body is
    accepted if any of them signed it within `tolerance_seconds`. Nothing is parsed as JSON here.

    :raises WebhookSignatureInvalid: with a reason saying what was wrong (missing, malformed,
        mismatched, too old, not text, or no secret configured)
    """
    if not header:
        raise WebhookSignatureInvalid("no Stripe-Signature header", reason=SIGNATURE_MISSING)
    timestamp = _signature_timestamp(header)
    secrets = [secret for secret in secrets if secret.strip()]
    if not secrets:
        raise WebhookSignatureInvalid("no webhook secret is configured", reason=NO_SECRET_CONFIGURED)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookSignatureInvalid("the body is not UTF-8 text", reason=PAYLOAD_NOT_UTF8) from None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance_seconds)
        except stripe.SignatureVerificationError:
            continue
        return
    # The SDK checks the signature before the timestamp and says which failed only in prose, so the
    # reason comes from the header's own timestamp: an old one is refused as a replay either way.
    if tolerance_seconds and timestamp < time.time() - tolerance_seconds:
        raise WebhookSignatureInvalid(
            f"the signature's timestamp is more than {tolerance_seconds}s old", reason=TIMESTAMP_OUTSIDE_TOLERANCE
        )
    raise WebhookSignatureInvalid("no signature matches the body under our secrets", reason=SIGNATURE_MISMATCH)


def _signature_timestamp(header: str) -> int:
    """The header's t= value, if it also carries a v1 signature (the shape only; verifying is the SDK's).

    Stripe's header is ASCII (digits, hex signatures): anything else is refused here, because the
    SDK compares signatures with `hmac.compare_digest`, which raises TypeError on a non-ASCII str.

    :raises WebhookSignatureInvalid: if the header is not `t=<digits>,v1=<signature>[,…]`
    """
    pairs = [item.partition("=") for item in header.split(",")]
    timestamps = [value for key, _, value in pairs if key.strip() == "t"]
    signatures = [value for key, _, value in pairs if key.strip() == _SIGNATURE_SCHEME and value]
    if (
        not header.isascii()
        or len(timestamps) != 1
        or not timestamps[0].isdigit()
        or len(timestamps[0]) > _TIMESTAMP_MAX_DIGITS
        or not signatures
    ):
        raise WebhookSignatureInvalid(
            f"the Stripe-Signature header is not t=<timestamp>,{_SIGNATURE_SCHEME}=<signature>",
            reason=SIGNATURE_MALFORMED,
        )
    return int(timestamps[0])


def intent_result_from_object(obj: Mapping[str, Any]) -> IntentResult:
    """
    Read a PaymentIntent snapshot (an event's `data.object`) as the gateway reads a fetched one.

    :raises ValueError: if it is not a PaymentIntent object with an id, status, amount and currency
    """
    if not isinstance(obj, Mapping) or obj.get("object") != "payment_intent":
        raise ValueError("not a payment_intent object")
    try:
        return _intent_result(obj, request_id="")
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"a payment_intent object without {exc}") from None


def refund_result_from_object(obj: Mapping[str, Any]) -> RefundResult:
    """
    Read a Refund snapshot (an event's `data.object`) as the gateway reads a fetched one.

    :raises ValueError: if it is not a Refund object with an id, status and amount
    """
    if not isinstance(obj, Mapping) or obj.get("object") != "refund":
        raise ValueError("not a refund object")
    try:
        return _refund_result(obj)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"a refund object without {exc}") from None


# --- the process's gateway ------------------------------------------------------------------------
@functools.cache
def get_gateway() -> PaymentGateway:
    """Return this process's gateway, built from settings on first use and shared by its threads.

    :raises ProviderAuthError: if STRIPE_SECRET_KEY is empty
    """
    return StripeGateway(
        api_key=settings.STRIPE_SECRET_KEY,
        api_base=settings.STRIPE_API_BASE,
        api_version=settings.STRIPE_API_VERSION,
        timeout_seconds=settings.STRIPE_TIMEOUT_SECONDS,
        connect_timeout_seconds=settings.STRIPE_CONNECT_TIMEOUT_SECONDS,
    )


# A forked child (prefork Celery, a preloading gunicorn) must not share the parent's pooled sockets.
os.register_at_fork(after_in_child=get_gateway.cache_clear)
