"""
Metrics hooks: the one place the metrics module plugs into (issue 8, Observability).

The limiter and the breaker call these on every occurrence, in the process where it happened. They
do nothing until metrics exist; fill them in here rather than adding callbacks elsewhere.
"""


def limiter_waited(*, provider: str, operation: str, wait: float) -> None:
    """A caller found no token and was told to wait `wait` seconds (a rate-limiter wait)."""


def breaker_changed(*, provider: str, from_state: str, to_state: str) -> None:
    """The breaker moved from one state to another (its `state()` gives the current one for a gauge)."""


def redis_unavailable(*, component: str) -> None:
    """The limiter or the breaker ("rate_limiter", "circuit_breaker") could not reach Redis."""
