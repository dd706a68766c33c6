"""The provider rate limit shared by every worker: GCRA in one Lua script, per account and operation."""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import redis
from django.core.exceptions import ImproperlyConfigured

from payments.gateway.limits import hooks
from payments.gateway.limits.clock import LUA_NOW, Clock, now_arg

logger = logging.getLogger(__name__)
# Stripe counts every call against the account's global limit and each endpoint against its own
# (https://docs.stripe.com/rate-limits), so PROVIDER_RATE_LIMITS has both: `account` for every call,
# `default` for each operation without a limit of its own, and named operations.
ACCOUNT = "account"
DEFAULT = "default"
_RATE = re.compile(r"^\s*(?P<calls>\d+)\s*/\s*(?P<count>\d*)\s*(?P<unit>[smh])\s*(?::\s*(?P<burst>\d+))?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}

# GCRA (the generic cell rate algorithm): each key holds its limit's theoretical arrival time (TAT).
# A call passes when TAT - tolerance <= now and moves TAT on by one emission interval; a refused call
# writes nothing, so it costs no token. All times are integer microseconds (exact in Lua's doubles).
# KEYS: the limits this call must pass. ARGV[1]: now, or '' for the Redis server's clock.
# ARGV[2i], ARGV[2i+1]: emission interval and burst tolerance of KEYS[i].
# Returns 0 (passed, counted against every key) or the µs until every key has a token (nothing counted).
# A key whose TAT has passed decides as no key does (max(tat, now)), so it is kept KEEP_PAST_TAT_MS past it:
# no decision changes, and the limit stays exact when the clock given runs behind Redis's expiry clock
# (a caller's clock, a test's fake clock on a loaded machine).
KEEP_PAST_TAT_MS = 60_000
_GCRA = (
    LUA_NOW.format(index=1)
    + f"local KEEP_MS = {KEEP_PAST_TAT_MS}\n"
    + """
local wait, arrivals = 0, {}
for i, key in ipairs(KEYS) do
  local interval, tolerance = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local tat = math.max(tonumber(redis.call('GET', key) or now), now)
  wait = math.max(wait, tat - tolerance - now)
  arrivals[i] = tat + interval
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', arrivals[i]), 'PX', math.ceil((arrivals[i] - now) / 1000) + KEEP_MS)
end
return 0
"""
)


@dataclass(frozen=True)
class Rate:
    """`calls` per `period` seconds, with up to `burst` calls at once after a quiet spell."""

    calls: int
    period: float
    burst: int

    @property
    def interval_us(self) -> int:
        # Rounded up: 3/s allows 3 calls in any second, never a 4th at 0.999999 s.
        return math.ceil(self.period * 1_000_000 / self.calls)

    @property
    def tolerance_us(self) -> int:
        return (self.burst - 1) * self.interval_us


def rate_parse(spec: str) -> Rate:
    """
    Parse `<calls>/<period>[:<burst>]`: "25/s", "100/m", "20/2s", "25/s:5". The burst defaults to
    `calls` (a token bucket as deep as one period, like Stripe's and the sandbox's).

    :raises ImproperlyConfigured: if the spec is not a positive rate
    """
    match = _RATE.match(spec)
    if not match or int(match["calls"]) < 1 or match["count"] == "0" or match["burst"] == "0":
        raise ImproperlyConfigured(f"not a rate: {spec!r} (expected e.g. '25/s', '100/m', '20/2s', '25/s:5')")
    calls = int(match["calls"])
    period = int(match["count"] or 1) * _UNIT_SECONDS[match["unit"]]
    return Rate(calls=calls, period=period, burst=int(match["burst"] or calls))


def account_fingerprint(secret_key: str) -> str:
    """Name a provider account by its API key without putting the key in Redis.

    Live and test keys name different accounts, as Stripe limits live and test mode separately.
    """
    return hashlib.sha256(secret_key.encode()).hexdigest()[:16]


class ProviderRateLimiter:
    """A rate limit per provider account and operation, shared by every process through Redis."""

    def __init__(
        self,
        *,
        redis_client: redis.Redis,
        provider: str,
        account: str,
        limits: Mapping[str, Rate],
        clock: Clock | None = None,
    ) -> None:
        self.provider = provider
        self.key = f"ratelimit:provider:{provider}:{account}"
        self._account_rate = limits.get(ACCOUNT)
        self._default_rate = limits.get(DEFAULT)
        self._operation_rates = {name: rate for name, rate in limits.items() if name not in (ACCOUNT, DEFAULT)}
        self._clock = clock
        self._script = redis_client.register_script(_GCRA)

    def acquire(self, *, operation: str) -> float:
        """
        Take a token for one call of `operation`: 0.0 means go now; otherwise the seconds until a
        token is free (take it then by calling again), and nothing was taken.

        Redis unreachable: 0.0 (go), with a warning. Failing closed would turn a Redis blip into
        stopped payments, while failing open costs at most some 429s: the provider's own limit still
        protects it, and a 429 changes nothing there and becomes a retry scheduled on the row (with
        its Retry-After as a floor), never a lost payment.
        """
        keys, args = [], [now_arg(self._clock)]
        operation_rate = self._operation_rates.get(operation, self._default_rate)
        for key, rate in ((self.key, self._account_rate), (f"{self.key}:{operation}", operation_rate)):
            if rate is not None:
                keys.append(key)
                args += [rate.interval_us, rate.tolerance_us]
        if not keys:
            return 0.0
        try:
            wait_us = int(self._script(keys=keys, args=args))
        except redis.RedisError as exc:
            logger.warning("provider rate limiter unavailable, letting the call through: %s", type(exc).__name__)
            hooks.redis_unavailable(component="rate_limiter")
            return 0.0
        if not wait_us:
            return 0.0
        wait = wait_us / 1_000_000
        hooks.limiter_waited(provider=self.provider, operation=operation, wait=wait)
        return wait
