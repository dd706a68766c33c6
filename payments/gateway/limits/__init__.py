"""
What every worker asks Redis before it calls the provider: a token from the shared rate limit, then
the circuit breaker's leave. Nothing here calls the provider.

    limiter, breaker = get_rate_limiter(), get_circuit_breaker()
    wait = limiter.acquire(operation="intent_create")  # 0.0: go; else reschedule the row at now + wait
    allowed, retry_in = breaker.allow()                  # not allowed: reschedule at now + retry_in
    ... call the provider ...
    breaker.record_outcome(error=None or the ProviderError it raised)

Ask the limiter first: a token taken and then refused by the breaker only wastes a token, while a
half-open breaker's probe slot taken and then refused a token would hold every worker back.

The state lives in Redis and changes in one Lua script per call (atomic, one round trip), so every
web, worker and relay process shares it. Time is the Redis server's (`TIME` inside the script): one
clock for every worker, whatever their own clocks say; tests inject a clock instead. Redis keys:

    ratelimit:provider:{provider}:{account}               the account's GCRA arrival time (µs)
    ratelimit:provider:{provider}:{account}:{operation}   the operation's
    breaker:provider:{provider}                           hash: state, open_until, probe_until (µs)
    breaker:provider:{provider}:calls                     hash: "success:{second}", "failure:{second}" counts

When Redis cannot be reached both let the call through (`ProviderRateLimiter.acquire` and
`CircuitBreaker.allow` say why) and never raise. Metrics plug into `hooks`.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from payments.gateway.limits.breaker import CLOSED, HALF_OPEN, OPEN, UNKNOWN, CircuitBreaker
from payments.gateway.limits.rate_limit import ProviderRateLimiter, Rate, account_fingerprint, rate_parse

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "UNKNOWN",
    "CircuitBreaker",
    "ProviderRateLimiter",
    "Rate",
    "account_fingerprint",
    "get_circuit_breaker",
    "get_rate_limiter",
    "provider_breaker_states",
    "rate_parse",
]


@lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    # One client per process, shared by the limiter and the breaker. Short timeouts and a single retry
    # (for a pooled connection Redis closed): a slow Redis must not hold up a payment; past this the
    # call is let through.
    return redis.Redis.from_url(
        url, socket_timeout=0.25, socket_connect_timeout=0.25, retry=Retry(NoBackoff(), retries=1)
    )


@lru_cache(maxsize=16)
def _rate_limiter(provider: str, account: str, url: str, specs: tuple[tuple[str, str], ...]) -> ProviderRateLimiter:
    limits = {name: rate_parse(spec) for name, spec in specs}  # parsed once per process and setting
    return ProviderRateLimiter(redis_client=_redis_client(url), provider=provider, account=account, limits=limits)


def get_rate_limiter(*, provider: str = "stripe", account: str | None = None) -> ProviderRateLimiter:
    """
    Return this process's limiter for `provider`, configured by PROVIDER_RATE_LIMITS.

    :param account: the provider account the calls count against; by default the configured API key's
        (a Stripe Connect call on behalf of another account passes that account's id)
    :raises ImproperlyConfigured: if a rate in PROVIDER_RATE_LIMITS cannot be parsed
    """
    account = account or account_fingerprint(settings.STRIPE_SECRET_KEY)
    specs = tuple(sorted(settings.PROVIDER_RATE_LIMITS.items()))
    return _rate_limiter(provider, account, settings.REDIS_URL, specs)


@lru_cache(maxsize=16)
def _circuit_breaker(provider: str, url: str, config: tuple) -> CircuitBreaker:
    failure_rate, min_calls, window_seconds, open_seconds, probe_timeout_seconds, auth_trip_seconds = config
    return CircuitBreaker(
        redis_client=_redis_client(url),
        provider=provider,
        failure_rate=failure_rate,
        min_calls=min_calls,
        window_seconds=window_seconds,
        open_seconds=open_seconds,
        probe_timeout_seconds=probe_timeout_seconds,
        auth_trip_seconds=auth_trip_seconds,
    )


def get_circuit_breaker(*, provider: str = "stripe") -> CircuitBreaker:
    """Return this process's breaker for `provider`, configured by the PROVIDER_BREAKER_* settings."""
    config = (
        settings.PROVIDER_BREAKER_FAILURE_RATE,
        settings.PROVIDER_BREAKER_MIN_CALLS,
        settings.PROVIDER_BREAKER_WINDOW_SECONDS,
        settings.PROVIDER_BREAKER_OPEN_SECONDS,
        settings.PROVIDER_BREAKER_PROBE_TIMEOUT_SECONDS,
        settings.PROVIDER_BREAKER_AUTH_TRIP_SECONDS,
    )
    return _circuit_breaker(provider, settings.REDIS_URL, config)


def provider_breaker_states() -> dict[str, str]:
    """Each provider's breaker state for the `/metrics` gauge ("unknown" while Redis is away)."""
    return {"stripe": get_circuit_breaker(provider="stripe").state()}
