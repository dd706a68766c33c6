"""
The metrics that processes record as things happen, and the one function each caller uses.

Callers never touch the metric objects: they call a `*_observed` function with plain values, so the
names, labels and buckets live here alone. Figures that live in the database (outbox rows by state,
the oldest due row) and the circuit breakers' state are not recorded here: they are read when
`/metrics` is scraped (`config.metrics.collectors`).

Label values must come from small, fixed sets (operations, error types, topics): each combination
is a time series in Prometheus and a key in every process's metric file. Never ids or messages.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from config.metrics.multiprocess import multiprocess_install

multiprocess_install()  # before the first metric is created

PROVIDER_CALL_OK = "ok"  # the outcome of a call that returned the object asked for
# From a fast sandbox call (~10 ms) through Stripe's usual 0.2 to 1 s to STRIPE_TIMEOUT_SECONDS (10 s by
# default) and a slow timeout (30 s); anything longer lands in +Inf.
PROVIDER_CALL_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)

_PROVIDER_CALLS = Counter(
    "provider_calls",
    "Outbound provider API calls, by operation and outcome (ok, or the typed error's error_type).",
    ["provider", "operation", "outcome"],
)
_PROVIDER_CALL_DURATION = Histogram(
    "provider_call_duration_seconds",
    "Duration of outbound provider API calls, whatever their outcome.",
    ["provider", "operation"],
    buckets=PROVIDER_CALL_SECONDS_BUCKETS,
)
_RATE_LIMIT_WAITS = Counter(
    "provider_rate_limit_waits",
    "Times a worker found no token in the shared provider rate limit and had to wait (its row rescheduled).",
    ["provider", "operation"],
)
_RATE_LIMIT_WAIT_SECONDS = Counter(
    "provider_rate_limit_wait_seconds",
    "Seconds of waiting the shared provider rate limit asked for, added up.",
    ["provider", "operation"],
)
_OUTBOX_TASK_OUTCOMES = Counter(
    "outbox_task_outcomes",
    "Outbox messages processed by their task, by topic and outcome (done, retry, dead, skipped).",
    ["topic", "outcome"],
)
_OUTBOX_RELAY_MESSAGES = Counter(
    "outbox_relay_messages",
    "Outbox messages the relay claimed, by what became of them: published to the broker, given back "
    "after a broker error, unrouted (no task for the topic), dead (lease expired after the last attempt).",
    ["outcome"],
)

_WEBHOOK_INTAKE = Counter(
    "webhook_intake",
    "Webhook deliveries by what the endpoint answered: accepted (stored now), duplicate (stored before), "
    "rejected (nothing stored), with the rejection's reason (signature_mismatch, too_large, …).",
    ["provider", "outcome", "reason"],
)
_WEBHOOK_EVENTS_PROCESSED = Counter(
    "webhook_events_processed",
    "Webhook events processed by a worker, by event type (types we do not handle count as 'other') and "
    "the status the attempt left (PROCESSED, IGNORED, FAILED, PARKED).",
    ["type", "status"],
)
WEBHOOK_TYPE_OTHER = "other"


def provider_call_observed(*, provider: str, operation: str, outcome: str, duration_seconds: float) -> None:
    """Count one outbound provider call and its duration.

    `outcome` is PROVIDER_CALL_OK or the raised `ProviderError.error_type`; `operation` is the gateway
    method (e.g. "intent_create_and_confirm", "refund_create"). Call it once per HTTP call.
    """
    _PROVIDER_CALLS.labels(provider=provider, operation=operation, outcome=outcome).inc()
    _PROVIDER_CALL_DURATION.labels(provider=provider, operation=operation).observe(duration_seconds)


def rate_limiter_wait_observed(*, provider: str, operation: str, seconds: float) -> None:
    """Count a wait the shared rate limit imposed; a wait of 0 (a token was free) records nothing."""
    if seconds <= 0:
        return
    _RATE_LIMIT_WAITS.labels(provider=provider, operation=operation).inc()
    _RATE_LIMIT_WAIT_SECONDS.labels(provider=provider, operation=operation).inc(seconds)


def outbox_task_outcome_observed(*, topic: str, outcome: str) -> None:
    """Count what processing one outbox message came to: "done", "retry", "dead" or "skipped"."""
    _OUTBOX_TASK_OUTCOMES.labels(topic=topic, outcome=outcome).inc()


def outbox_relay_batch_observed(*, published: int, given_back: int, unrouted: int, dead: int) -> None:
    """Count one relay batch's messages by what became of them (zeros too, so every series exists)."""
    counts = {"published": published, "given_back": given_back, "unrouted": unrouted, "dead": dead}
    for outcome, count in counts.items():
        _OUTBOX_RELAY_MESSAGES.labels(outcome=outcome).inc(count)


def webhook_intake_observed(*, provider: str, outcome: str, reason: str = "") -> None:
    """Count one delivery to a webhook endpoint: "accepted", "duplicate" or "rejected" (with its reason)."""
    _WEBHOOK_INTAKE.labels(provider=provider, outcome=outcome, reason=reason).inc()


def webhook_event_processed_observed(*, type: str, status: str) -> None:
    """Count one processing attempt of a stored event; `type` must come from a fixed set (the handled
    types, else WEBHOOK_TYPE_OTHER): anyone who can sign could otherwise make new series."""
    _WEBHOOK_EVENTS_PROCESSED.labels(type=type, status=status).inc()
