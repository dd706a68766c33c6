"""Per-client rate limit shared by every web process through Redis (a sliding window counter)."""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache

import redis
from django.conf import settings
from rest_framework.throttling import BaseThrottle

from payments.models import ApiClient

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 60
# One round trip: count this request in the current minute and read the previous minute. The estimate
# previous * (unelapsed share) + current smooths the burst a fixed window allows at its edges.
_SLIDING_WINDOW = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
return {current, previous}
"""


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    # Short timeouts: a slow limiter must not become a slow API.
    return redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)


class ClientRateThrottle(BaseThrottle):
    """Allow each API client `rate_limit_per_minute` requests (default API_RATE_LIMIT_PER_MINUTE).

    If Redis cannot be reached the request is let through with a warning: the limiter protects the
    service; it must never be the reason a payment is refused.
    """

    def allow_request(self, request, view) -> bool:
        client = request.user
        if not isinstance(client, ApiClient):
            return True  # unauthenticated requests are refused before any work is done
        limit = client.rate_limit_per_minute or settings.API_RATE_LIMIT_PER_MINUTE
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        keys = [f"ratelimit:{client.pk}:{window}", f"ratelimit:{client.pk}:{window - 1}"]
        try:
            current, previous = _redis(settings.REDIS_URL).eval(_SLIDING_WINDOW, 2, *keys, WINDOW_SECONDS * 2)
        except redis.RedisError as exc:
            logger.warning("rate limiter unavailable, letting the request through: %s", type(exc).__name__)
            return True
        elapsed_share = (now % WINDOW_SECONDS) / WINDOW_SECONDS
        estimate = int(previous) * (1 - elapsed_share) + int(current)
        if estimate <= limit:
            return True
        # Wait until the previous window's weight has decayed enough (at most to the next window).
        self._wait = max(1, math.ceil(WINDOW_SECONDS - now % WINDOW_SECONDS))
        logger.info("rate limited client=%s estimate=%.0f limit=%s", client.name, estimate, limit)
        return False

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
