"""
Rate limits shared by every web process through Redis, each a sliding log in one Lua round trip:
requests per API client, and failed API-key attempts per client address (an authenticated request
asks both in one round trip).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from functools import lru_cache

import redis
from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from config.client_address import address_key, client_address
from payments.models import ApiClient

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 60
clock = time.time  # read once per request; tests move it instead of sleeping

# A sliding log: `key` is a sorted set of the times (ms) of the events allowed in the last window. An
# event is allowed, and recorded when `member` names it, only while fewer than `limit` remain: a
# refused event costs nothing, so a client that retries as told is never kept out longer. Refused, the
# answer is the milliseconds until enough of the oldest have left the window, the moment one is really
# allowed (0 means allowed). An exact sliding window: never more than `limit` in any `window`.
_SLIDING_LOG_FUNCTION = """
local function sliding_log_wait(key, now, window, limit, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < limit then
    if member ~= '' then
      redis.call('ZADD', key, now, member)
      redis.call('PEXPIRE', key, window)
    end
    return 0
  end
  local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
"""
# One log. ARGV: now, window, limit, member ('' to only ask).
_SLIDING_LOG = (
    _SLIDING_LOG_FUNCTION
    + "return sliding_log_wait(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])"
)
# An authenticated request's two limits in one round trip: first its address's failed API keys (only
# asked: {1, wait} if the address is refused, and then nothing is recorded), then its client's requests
# ({0, wait}). KEYS: the client's log, the address's log. ARGV: now, the client's window, limit and
# member, the address's window and limit.
_REQUEST_LOGS = (
    _SLIDING_LOG_FUNCTION
    + """
local now = tonumber(ARGV[1])
local refused = sliding_log_wait(KEYS[2], now, tonumber(ARGV[5]), tonumber(ARGV[6]), '')
if refused > 0 then return {1, refused} end
return {0, sliding_log_wait(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])}
"""
)


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # Short timeouts: a slow limiter must not become a slow API.
    return redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)


# Redis names a script by the SHA1 of its text (https://redis.io/docs/latest/commands/evalsha/): an id, not a secret.
_SCRIPT_SHAS = {
    source: hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest() for source in (_SLIDING_LOG, _REQUEST_LOGS)
}


def _script(source: str, keys: list[str], args: list) -> object:
    """Run a Lua script by its SHA1 (EVALSHA: its text is sent only when Redis does not hold it yet)."""
    client = _redis(settings.REDIS_URL)
    try:
        return client.evalsha(_SCRIPT_SHAS[source], len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(source, len(keys), *keys, *args)


def _seconds(wait_ms: object) -> int:
    """Whole seconds, rounded up so a client that waits that long is never refused."""
    return math.ceil(int(wait_ms) / 1000)


def _member(now_ms: int) -> str:
    return f"{now_ms}:{secrets.token_hex(4)}"  # unique: two events in one ms both count


def sliding_log_wait(*, key: str, limit: int, window_seconds: int, now: float, record: bool) -> int:
    """
    Return 0 if one more event fits in the window at `now` (recording it if `record`), else the
    whole seconds until one will, rounded up so a client that waits that long is never refused.

    :raises redis.RedisError: if Redis cannot be reached (callers let the request through)
    """
    now_ms = int(now * 1000)
    member = _member(now_ms) if record else ""
    return _seconds(_script(_SLIDING_LOG, [key], [now_ms, window_seconds * 1000, limit, member]))


def request_limits_wait(*, client: ApiClient, limit: int, remote_addr: str, now: float) -> tuple[bool, int]:
    """
    Ask both limits of an authenticated request in one round trip: (address refused, seconds to wait).

    First whether its address is refused for failed API keys (`api_key_failure_wait`; then nothing
    is recorded), else whether its client may make one more request in the window (recorded if so).

    :raises redis.RedisError: if Redis cannot be reached (callers let the request through)
    """
    now_ms = int(now * 1000)
    keys = [_client_key(client), _failures_key(remote_addr)]
    args = [
        now_ms,
        WINDOW_SECONDS * 1000,
        limit,
        _member(now_ms),
        settings.API_KEY_FAILURE_WINDOW_SECONDS * 1000,
        settings.API_KEY_FAILURE_LIMIT,
    ]
    refused, wait_ms = _script(_REQUEST_LOGS, keys, args)
    return bool(refused), _seconds(wait_ms)


def _client_key(client: ApiClient) -> str:
    return f"ratelimit:client:{client.pk}"


def _failures_key(remote_addr: str) -> str:
    return f"ratelimit:api_key_failures:{address_key(remote_addr)}"


class TooManyApiKeyFailures(exceptions.Throttled):
    default_detail = "Too many failed API key attempts from this address."


class ClientRateThrottle(BaseThrottle):
    """Allow each API client `rate_limit_per_minute` requests in any 60 s (default API_RATE_LIMIT_PER_MINUTE),
    and refuse an address over its failed-API-key limit, good key or not, in the same round trip.

    The address is asked here too because a key verified from the authentication's cache was not
    looked up, so nothing asked Redis about its address before (payments/api/authentication.py).
    Retry-After is the time until a request will really be allowed. If Redis cannot be reached the
    request is let through with a warning: the limiter protects the service; it must never be the
    reason a payment is refused.
    """

    def allow_request(self, request, view) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            return True  # unauthenticated requests are refused before any work is done
        limit = client.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE
        remote_addr = client_address(request)
        try:
            refused_address, wait = request_limits_wait(
                client=client, limit=limit, remote_addr=remote_addr, now=clock()
            )
        except redis.RedisError as exc:
            logger.warning("rate limiter unavailable, letting the request through: %s", type(exc).__name__)
            return True
        if refused_address:
            logger.info("refused an API key from %s for %ss: too many failed attempts", remote_addr, wait)
            raise TooManyApiKeyFailures(wait=wait)
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
            key=_failures_key(remote_addr),
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
