"""
The limiter and the breaker run on the real Redis the test command starts. Each test uses its own
provider or account name, so its Redis keys are its own; time is a fake clock the test moves.
"""

import uuid

import pytest
import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry


class FakeClock:
    """Seconds since the epoch, moved only by the test, in whole microseconds (as the scripts see it)."""

    def __init__(self) -> None:
        self.us = 1_000_000 * 1_000_000

    def __call__(self) -> float:
        return self.us / 1_000_000

    def advance(self, seconds: float) -> None:
        self.us += round(seconds * 1_000_000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def connect():
    """Open a Redis client of its own per simulated worker process; all are closed afterwards."""
    clients = []

    def connect(url: str = settings.REDIS_URL) -> redis.Redis:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=0.25, retry=Retry(NoBackoff(), 0))
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def redis_down(connect) -> redis.Redis:
    """A client of a Redis that is down: nothing listens on port 1, so connecting is refused at once."""
    return connect("redis://127.0.0.1:1/0")


@pytest.fixture
def unique():
    """Make a name (provider, account) of this test's own, so its Redis keys are its own."""
    return lambda name: f"test-{name}-{uuid.uuid4().hex[:12]}"
