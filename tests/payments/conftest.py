import pytest


class FakeClock:
    """The rate limiters' clock, moved by a test: Unix seconds, as time.time() returns them."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """Freeze the clock of every Redis rate limit (payments/api/throttling.py) at a fixed moment."""
    from payments.api import throttling

    fake = FakeClock(1_900_000_000.0)
    monkeypatch.setattr(throttling, "clock", fake)
    return fake
