"""
The end-to-end row's anchor task, loaded into the benchmark's Celery worker with `--include bench.noop`
(never by the product's workers). Its only work is to say it ran: one RPUSH of its send and finish
times onto the run's list, which the benchmark counts and reads the latencies from.
"""

import functools
import time

import redis
from celery import shared_task
from django.conf import settings


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@shared_task(name="bench.noop")
def noop_task(*, run: str, sent_at: float, **kwargs: object) -> None:
    _redis().rpush(run, f"{sent_at} {time.time()}")
