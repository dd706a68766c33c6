"""Typed errors of the webhooks app, rendered by the endpoint as {"error": {"code", "message"}}."""

from __future__ import annotations

from payments.errors import PaymentsError


class WebhookRejected(PaymentsError):
    """A delivery we refuse to store: unverifiable, or signed but not an event. Nothing was written."""

    code, http_status = "webhook_rejected", 400

    def __init__(self, message: str, *, code: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class WebhookEventNotYetKnown(Exception):
    """The event's payment (or refund) is not in our database yet, or not yet bound to the provider's
    object: our own commit may still be on its way. Retried with backoff, then parked for ops."""


class WebhookEventNotOurs(Exception):
    """The event's object carries none of our ids and is bound to none of our rows: not ours to act on."""
