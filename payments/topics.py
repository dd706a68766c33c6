"""Outbox topics the payments app writes; the relay routes each to the task that calls the provider."""

PAYMENT_CREATE_REQUESTED = "payments.payment.create_requested"
PAYMENT_CAPTURE_REQUESTED = "payments.payment.capture_requested"
PAYMENT_CANCEL_REQUESTED = "payments.payment.cancel_requested"
REFUND_CREATE_REQUESTED = "payments.refund.create_requested"
