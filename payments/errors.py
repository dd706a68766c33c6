"""Typed errors of the payments domain. The API renders them as {"error": {type, code, message, param}}."""

from __future__ import annotations


class PaymentsError(Exception):
    """An anticipated failure with a stable, machine-readable code; other apps subclass it."""

    code = "payments_error"
    http_status = 400
    type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class PaymentNotFound(PaymentsError):
    code, http_status = "resource_missing", 404


class RefundNotFound(PaymentsError):
    code, http_status = "resource_missing", 404


class IllegalPaymentState(PaymentsError):
    """The command is not allowed in the payment's current state (the state machine said no)."""

    code, http_status = "payment_unexpected_state", 409


class PaymentNotCapturable(IllegalPaymentState):
    code = "payment_not_capturable"


class PaymentNotCancelable(IllegalPaymentState):
    code = "payment_not_cancelable"


class PaymentNotRefundable(IllegalPaymentState):
    code = "payment_not_refundable"


class CaptureAmountTooLarge(PaymentsError):
    code, http_status = "amount_too_large", 409


class RefundExceedsReceived(PaymentsError):
    """The refund would take total refunds past what the payment received."""

    code, http_status = "refund_exceeds_received", 409


class IdempotencyKeyRequired(PaymentsError):
    code, http_status = "idempotency_key_required", 400
    type = "idempotency_error"


class IdempotencyKeyInvalid(PaymentsError):
    code, http_status = "idempotency_key_invalid", 400
    type = "idempotency_error"


class IdempotencyKeyReused(PaymentsError):
    code, http_status = "idempotency_key_reused", 422
    type = "idempotency_error"


class IdempotencyKeyInUse(PaymentsError):
    code, http_status = "idempotency_key_in_use", 409
    type = "idempotency_error"
    retry_after_seconds = 1


class PaymentBusy(PaymentsError):
    """Another request held the payment's row lock longer than DATABASE_LOCK_TIMEOUT_MS; safe to retry."""

    code, http_status = "lock_timeout", 409
    retry_after_seconds = 1


class AmountTooSmall(PaymentsError):
    """Below the provider's minimum charge for the currency (Stripe's code, as Stripe would answer)."""

    code, http_status = "amount_too_small", 400


class AmountInvalidForCurrency(PaymentsError):
    """Not an amount the provider can charge in the currency (a fraction of isk, kwd not ending in 0)."""

    code, http_status = "invalid_charge_amount", 400


class NothingToRetry(PaymentsError):
    """Ops asked to retry a payment that has no queued provider call waiting or dead."""

    code, http_status = "nothing_to_retry", 409


class ProviderTruthUnknown(PaymentsError):
    """The provider could not be asked where a payment stands (unreachable, breaker open, refused)."""

    code, http_status = "provider_unavailable", 503


class ReasonRequired(PaymentsError):
    code, http_status = "reason_required", 400


class PaymentResolveRefused(IllegalPaymentState):
    """Resolving by hand would contradict the provider, or race a worker that is calling it."""

    code = "payment_resolve_refused"


class ProviderCallInTransaction(RuntimeError):
    """A provider call was attempted inside a database transaction: it would hold locks across HTTP."""
