"""Outbox topics the webhooks app writes, and the task the relay routes each one to."""

# A verified event was stored: process it (its handler) in a worker, never in the request.
WEBHOOK_EVENT_RECEIVED = "webhooks.event.received"

ROUTES = {
    WEBHOOK_EVENT_RECEIVED: "webhooks.webhook_event_process",
}
