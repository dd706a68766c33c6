"""
Prometheus metrics that add up across processes: what to record (`instruments`), what is read at
scrape time (`collectors`), and the `/metrics` endpoint (`views`).

Any app may import the recording functions from here: this package imports no app at import time
(the collectors read `outbox` and, if it exists, `payments.gateway.limits` only when scraped), so
`outbox` can record without importing `payments`.
"""

from config.metrics.instruments import (
    PROVIDER_CALL_OK,
    WEBHOOK_TYPE_OTHER,
    outbox_relay_batch_observed,
    outbox_task_outcome_observed,
    provider_call_observed,
    rate_limiter_wait_observed,
    webhook_event_processed_observed,
    webhook_intake_observed,
)

__all__ = [
    "PROVIDER_CALL_OK",
    "WEBHOOK_TYPE_OTHER",
    "outbox_relay_batch_observed",
    "outbox_task_outcome_observed",
    "provider_call_observed",
    "rate_limiter_wait_observed",
    "webhook_event_processed_observed",
    "webhook_intake_observed",
]
