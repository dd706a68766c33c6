"""The one backoff policy for outbox retries: exponential, full jitter, capped, with a floor."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.conf import settings


def outbox_backoff_delay(*, attempts: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Return seconds until the next attempt after `attempts` failed ones.

    Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform in
    [0, min(cap, base * 2**attempts)], which spreads a thundering herd of retries best. A provider's
    Retry-After is a floor: retrying sooner than it asked only earns another 429.
    """
    exponent = min(max(attempts - 1, 0), 32)  # 2**32 s is past any cap; avoids huge floats
    ceiling = min(settings.OUTBOX_BACKOFF_CAP_SECONDS, settings.OUTBOX_BACKOFF_BASE_SECONDS * 2**exponent)
    delay = (rng or random).uniform(0, ceiling)  # jitter, not a secret
    return max(delay, retry_after or 0.0)


def outbox_next_attempt_at(
    *, now: datetime, attempts: int, retry_after: float | None = None, rng: random.Random | None = None
) -> datetime:
    return now + timedelta(seconds=outbox_backoff_delay(attempts=attempts, retry_after=retry_after, rng=rng))
