"""
Rate limits shared by every web process through Redis, each a sliding log in one Lua round trip:
requests per API client, and failed API-key attempts per client address.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from functools import lru_cache

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from config.client_address import address_key
from payments.models import ApiClient

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 60
clock = time.time  # read once per request; tests move it instead of sleeping

# KEYS[1] is a sorted set of the times (ms) of the requests allowed in the last window. A request is
# allowed, and recorded when ARGV[4] names it, only while fewer than `limit` remain: a refused request
# costs nothing, so a client that retries as told is never kept out longer. Refused, the answer is
# the milliseconds until enough of the oldest have left the window, the moment one is really allowed
# (0 means allowed). An exact sliding window: never more than `limit` in any `window`.
_SLIDING_LOG = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  if ARGV[4] ~= '' then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], window)
  end
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
"""


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # Short timeouts: a slow limiter must not become a slow API.
    return redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)


def sliding_log_wait(*, key: str, limit: int, window_seconds: int, now: float, record: bool) -> int:
    """
    Return 0 if one more event fits in the window at `now` (recording it if `record`), else the
    whole seconds until one will, rounded up so a client that waits that long is never refused.

    :raises redis.RedisError: if Redis cannot be reached (callers let the request through)
    """
    now_ms = int(now * 1000)
    member = f"{now_ms}:{secrets.token_hex(4)}" if record else ""  # unique: two events in one ms both count
    wait_ms = _redis(settings.REDIS_URL).eval(_SLIDING_LOG, 1, key, now_ms, window_seconds * 1000, limit, member)
    return math.ceil(int(wait_ms) / 1000)


class ClientRateThrottle(BaseThrottle):
    """Allow each API client `rate_limit_per_minute` requests in any 60 s (default API_RATE_LIMIT_PER_MINUTE).

    Retry-After is the time until a request will really be allowed. If Redis cannot be reached the
    request is let through with a warning: the limiter protects the service; it must never be the
    reason a payment is refused.
    """

    def allow_request(self, request, view) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            return True  # unauthenticated requests are refused before any work is done
        limit = client.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE
        try:
            wait = sliding_log_wait(
                key=f"ratelimit:client:{client.pk}",
                limit=limit,
                window_seconds=WINDOW_SECONDS,
                now=clock(),
                record=True,
            )
        except redis.RedisError as exc:
            logger.warning("rate limiter unavailable, letting the request through: %s", type(exc).__name__)
            return True
        if not wait:
            return True
        self._wait = wait
        logger.info("rate limited client=%s limit=%s retry_after=%s", client.name, limit, wait)
        return False

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


def _api_key_failures(*, remote_addr: str, record: bool) -> int:
    try:
        return sliding_log_wait(
            key=f"ratelimit:api_key_failures:{address_key(remote_addr)}",
            limit=settings.API_KEY_FAILURE_LIMIT,
            window_seconds=settings.API_KEY_FAILURE_WINDOW_SECONDS,
            now=clock(),
            record=record,
        )
    except redis.RedisError as exc:
        logger.warning("API key failure limiter unavailable, letting the request through: %s", type(exc).__name__)
        return 0


def api_key_failure_wait(*, remote_addr: str) -> int:
    """
    Return the seconds until `remote_addr` may present an API key again; 0 if it may now.

    `remote_addr` is `config.client_address.client_address(request)`: the peer's address, or behind
    TRUSTED_PROXY_COUNT proxies the one they report; counted by its /64 for IPv6.
    """
    return _api_key_failures(remote_addr=remote_addr, record=False)


def api_key_failure_record(*, remote_addr: str) -> None:
    """Count one failed API-key attempt from `remote_addr` (API_KEY_FAILURE_LIMIT per window)."""
    _api_key_failures(remote_addr=remote_addr, record=True)
