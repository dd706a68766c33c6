"""Outbox topics the payments app writes, and the task the relay routes each one to."""

PAYMENT_CREATE_REQUESTED = "payments.payment.create_requested"
PAYMENT_CAPTURE_REQUESTED = "payments.payment.capture_requested"
PAYMENT_CANCEL_REQUESTED = "payments.payment.cancel_requested"
REFUND_CREATE_REQUESTED = "payments.refund.create_requested"
# Follow a payment waiting on the customer (3-D Secure) or the provider (async methods) until it settles.
PAYMENT_SYNC_REQUESTED = "payments.payment.sync_requested"

ROUTES = {
    PAYMENT_CREATE_REQUESTED: "payments.payment_submit",
    PAYMENT_CAPTURE_REQUESTED: "payments.payment_capture",
    PAYMENT_CANCEL_REQUESTED: "payments.payment_cancel",
    REFUND_CREATE_REQUESTED: "payments.refund_submit",
    PAYMENT_SYNC_REQUESTED: "payments.payment_sync",
}
