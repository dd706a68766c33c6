"""
One structured log line per provider HTTP call: the fields live in `_log_exchange` only, so a metric
can be added beside it.

The transport records each `Exchange` (method, path, sizes, status, timing, provider request id);
`provider_call` binds `operation` and our `request_id` for the duration of a gateway call and logs
what was recorded, with the typed error's `error_type` on the last line. Bodies, query strings, card
data and metadata values are never recorded. The caller binds `payment_id` and `attempt` with
`structlog.contextvars`; the logging configuration merges them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import structlog
from ulid import ULID

from config import metrics

logger = structlog.get_logger("payments.gateway")

# Ids we log or send as a header: anything else (a newline, a space) would forge a log line or a header.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass
class Exchange:
    """What one HTTP call looked like from outside: never its bodies or its query string."""

    method: str
    endpoint: str  # the URL's path alone
    request_bytes: int
    duration_ms: float = 0.0
    status: int | None = None  # None: no answer
    response_bytes: int | None = None
    provider_request_id: str | None = None
    replayed: bool = False  # the provider replayed a stored answer for the idempotency key


@dataclass(frozen=True)
class Call:
    operation: str
    request_id: str  # ours: logged, and sent to the provider as X-Request-Id


_recording: ContextVar[list[Exchange] | None] = ContextVar("provider_exchanges", default=None)


def safe_id(value: object) -> str | None:
    """`value` if it is an id safe to log and send as a header, else None."""
    return value if isinstance(value, str) and _SAFE_ID.fullmatch(value) else None


def record_exchange(exchange: Exchange) -> None:
    """Keep an HTTP exchange for the log line of the provider call it belongs to (if any)."""
    recorded = _recording.get()
    if recorded is not None:
        recorded.append(exchange)


@contextmanager
def provider_call(*, provider: str, operation: str) -> Iterator[Call]:
    """Bind `operation` and a request id for one gateway call, then log each HTTP exchange it made.

    The request id is the caller's bound `request_id` when it is safe, else a new one.
    """
    request_id = safe_id(structlog.contextvars.get_contextvars().get("request_id")) or f"req_{ULID()}"
    exchanges: list[Exchange] = []
    error_type = None
    with structlog.contextvars.bound_contextvars(operation=operation, request_id=request_id):
        token = _recording.set(exchanges)
        try:
            yield Call(operation=operation, request_id=request_id)
        except BaseException as exc:
            error_type = getattr(exc, "error_type", type(exc).__name__)
            raise
        finally:
            _recording.reset(token)
            # With the SDK's retries off a call is one exchange; none when it failed before sending.
            *earlier, last = exchanges or [Exchange(method="", endpoint="", request_bytes=0)]
            for exchange in earlier:
                _log_exchange(provider, operation, request_id, exchange, error_type=None)
            _log_exchange(provider, operation, request_id, last, error_type=error_type)


def _log_exchange(provider: str, operation: str, request_id: str, exchange: Exchange, *, error_type: str | None):
    metrics.provider_call_observed(
        provider=provider,
        operation=operation,
        outcome=error_type or metrics.PROVIDER_CALL_OK,
        duration_seconds=exchange.duration_ms / 1000,
    )
    (logger.warning if error_type else logger.info)(
        "provider_call",
        provider=provider,
        operation=operation,
        request_id=request_id,
        method=exchange.method,
        endpoint=exchange.endpoint,
        status=exchange.status,
        duration_ms=round(exchange.duration_ms, 1),
        request_bytes=exchange.request_bytes,
        response_bytes=exchange.response_bytes,
        provider_request_id=exchange.provider_request_id,
        replayed=exchange.replayed,
        error_type=error_type,
    )
