"""The payments app's models, in modules by entity and re-exported here."""

from payments.models.clients import ApiClient, ApiKey
from payments.models.idempotency import IdempotencyKey
from payments.models.jobs import JobRun
from payments.models.payment import Payment, PaymentEvent, Refund
from payments.models.reconciliation import ReconciliationMismatch

__all__ = [
    "ApiClient",
    "ApiKey",
    "IdempotencyKey",
    "JobRun",
    "Payment",
    "PaymentEvent",
    "ReconciliationMismatch",
    "Refund",
]
