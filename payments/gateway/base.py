"""
The provider seam: one interface, the results it returns and the errors it raises.

Only `payments/gateway/stripe.py` imports `stripe`; services see these types and nothing of the
SDK. Every call that changes something at the provider takes the idempotency key derived from our
row (`Payment.provider_idempotency_key(action)`), so a retry is the same request to the provider.

Errors are typed by what the caller must do next, not by HTTP status:

| error                        | sent?            | effect at the provider | the caller …                          |
|------------------------------|------------------|------------------------|---------------------------------------|
| ProviderRateLimited          | answered 429     | none                   | retries no sooner than `retry_after`  |
| ProviderUnavailable          | not sent         | none                   | retries with backoff                  |
| ProviderServerError          | answered 5xx     | unknown                | retries with the same key             |
| ProviderOutcomeUnknown       | sent, no answer  | unknown (money at risk)| retries with the same key / looks up  |
| ProviderBadResponse          | 2xx, not the object asked for | unknown   | retries with the same key             |
| ProviderIdempotencyConflict  | answered 409/400 | see `in_flight`        | retries (in flight) or stops (reused) |
| ProviderDeclined             | answered 402     | none (a decline)       | fails the payment; no retry           |
| ProviderInvalidRequest       | answered 4xx     | none                   | applies the provider's truth; no retry|
| ProviderAuthError            | answered 401/403 | none                   | stops the line and alerts; no retry   |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class IntentResult:
    """What the provider says a PaymentIntent is now (a snapshot; never our own status)."""

    id: str
    status: str  # the provider's: requires_payment_method, requires_action, processing, requires_capture, …
    amount: int
    currency: str
    amount_capturable: int = 0
    amount_received: int = 0
    next_action: dict | None = None
    failure_code: str = ""  # last_payment_error.decline_code or .code, when the provider refused
    failure_message: str = ""
    created: int = 0  # Unix seconds, the provider's clock
    metadata: dict[str, str] = field(default_factory=dict)
    # The provider's Request-Id of the call that answered, for support tickets; not part of the snapshot.
    request_id: str = field(default="", compare=False)


@dataclass(frozen=True)
class RefundResult:
    id: str
    status: str  # pending, succeeded, failed, canceled, requires_action
    amount: int
    payment_intent: str
    failure_reason: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    currency: str = ""
    created: int = 0  # Unix seconds, the provider's clock
    request_id: str = field(default="", compare=False)  # the provider's Request-Id, as on IntentResult


@dataclass(frozen=True)
class IntentPage:
    intents: list[IntentResult]  # newest first, as the provider lists them
    has_more: bool


@dataclass(frozen=True)
class RefundPage:
    refunds: list[RefundResult]  # newest first
    has_more: bool


@dataclass(frozen=True)
class EventPage:
    events: list[dict]  # the provider's event objects as plain dicts
    has_more: bool


class ProviderError(Exception):
    """Anything the provider call did not turn into the object we asked for."""

    error_type = "provider_error"
    retryable = True  # worth another attempt with the same idempotency key
    outcome_unknown = False  # the provider may have acted: never fail the payment on this

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id  # the provider's Request-Id, for support tickets


class ProviderRateLimited(ProviderError):
    error_type = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after  # seconds, from Retry-After; a floor for the next attempt


class ProviderUnavailable(ProviderError):
    """The connection failed before the request was sent (refused, DNS, connect timeout)."""

    error_type = "connection_failed"


class ProviderServerError(ProviderError):
    error_type = "server_error"
    outcome_unknown = True  # Stripe: a 500 may have been processed; retry with the same key


class ProviderOutcomeUnknown(ProviderError):
    """Sent, but no answer: read timeout, reset after sending. The provider may have acted."""

    error_type = "outcome_unknown"
    outcome_unknown = True


class ProviderBadResponse(ProviderError):
    """A 2xx whose body is not the object asked for (an error body, garbage): never a success."""

    error_type = "bad_response"
    outcome_unknown = True


class ProviderIdempotencyConflict(ProviderError):
    """The idempotency key is in flight (409: retry soon) or was used with other parameters (a bug: stop)."""

    error_type = "idempotency_conflict"

    def __init__(self, message: str, *, in_flight: bool, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.in_flight = in_flight
        self.retryable = in_flight


class ProviderDeclined(ProviderError):
    """A definitive refusal of the payment method (402). The intent snapshot, if sent, is attached."""

    error_type = "declined"
    retryable = False

    def __init__(self, message: str, *, code: str, intent: IntentResult | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.code = code
        self.intent = intent


class ProviderInvalidRequest(ProviderError):
    """Another definitive 4xx (e.g. payment_intent_unexpected_state): no retry; ask for the truth."""

    error_type = "invalid_request"
    retryable = False

    def __init__(self, message: str, *, code: str = "", **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.code = code


class ProviderAuthError(ProviderError):
    """Our key or configuration is wrong (401/403): every call will fail the same way."""

    error_type = "auth_error"
    retryable = False


class WebhookSignatureInvalid(Exception):
    """A webhook body and its signature header did not verify: it must not be stored or acted on.

    `reason` is short and machine-readable (one of WEBHOOK_SIGNATURE_REASONS), for the 400 answer,
    the log line and the rejection counter; the message never quotes the header or the body.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


SIGNATURE_MISSING = "signature_missing"  # no Stripe-Signature header
SIGNATURE_MALFORMED = "signature_malformed"  # no t=<unix seconds> or no v1=<signature> in it
SIGNATURE_MISMATCH = "signature_mismatch"  # signed with none of our secrets, or the body was changed
TIMESTAMP_OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"  # older than the tolerance: a replay
PAYLOAD_NOT_UTF8 = "payload_not_utf8"  # the signature covers text; bytes that are not UTF-8 cannot verify
NO_SECRET_CONFIGURED = "no_secret_configured"  # noqa: S105 - a reason code, not a secret; our configuration, not the sender: nothing can verify
WEBHOOK_SIGNATURE_REASONS = (
    SIGNATURE_MISSING,
    SIGNATURE_MALFORMED,
    SIGNATURE_MISMATCH,
    TIMESTAMP_OUTSIDE_TOLERANCE,
    PAYLOAD_NOT_UTF8,
    NO_SECRET_CONFIGURED,
)


class PaymentGateway(Protocol):
    """What the payments services need from a provider. Implementations never retry on their own."""

    name: str

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
        ...

    def intent_retrieve(self, *, intent_id: str) -> IntentResult: ...

    def intent_find(self, *, payment_id: str) -> IntentResult | None:
        """Find the intent made for our payment by `metadata['payment_id']`, or None."""
        ...

    def intent_capture(self, *, intent_id: str, amount: int | None, idempotency_key: str) -> IntentResult: ...

    def intent_cancel(self, *, intent_id: str, idempotency_key: str) -> IntentResult: ...

    def refund_create(
        self, *, intent_id: str, refund_id: str, payment_id: str, amount: int, reason: str, idempotency_key: str
    ) -> RefundResult: ...

    def refund_retrieve(self, *, refund_id: str) -> RefundResult: ...

    def events_list(
        self,
        *,
        starting_after: str | None = None,
        delivery_success: bool | None = None,
        types: Sequence[str] = (),
        limit: int = 100,
    ) -> EventPage:
        """One page of the provider's events, newest first; only those of `types` when given."""
        ...

    def intents_list_created(
        self, *, gte: int, lt: int, starting_after: str | None = None, limit: int = 100
    ) -> IntentPage:
        """One page of the PaymentIntents created in [gte, lt) (Unix seconds), newest first."""
        ...

    def refunds_list_created(
        self, *, gte: int, lt: int, starting_after: str | None = None, limit: int = 100
    ) -> RefundPage:
        """One page of the refunds created in [gte, lt) (Unix seconds), newest first."""
        ...
