"""
Metrics hooks: the one place the limiter and the breaker report to `config.metrics`.

They run in the process where the thing happened; the metrics add up across processes.
"""

from config import metrics


def limiter_waited(*, provider: str, operation: str, wait: float) -> None:
    """A caller found no token and was told to wait `wait` seconds (a rate-limiter wait)."""
    metrics.rate_limiter_wait_observed(provider=provider, operation=operation, seconds=wait)


def breaker_changed(*, provider: str, from_state: str, to_state: str) -> None:
    """The breaker moved from one state to another (its `state()` gives the current one for a gauge)."""


def redis_unavailable(*, component: str) -> None:
    """The limiter or the breaker ("rate_limiter", "circuit_breaker") could not reach Redis."""
