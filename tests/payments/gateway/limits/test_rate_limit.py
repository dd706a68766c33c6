"""The provider rate limit: GCRA in Redis, shared by every worker, per account and operation."""

import logging
import threading

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from payments.gateway import limits
from payments.gateway.limits import ProviderRateLimiter, Rate, hooks, rate_limit, rate_parse


def limiter(client: redis.Redis, clock, limits_by_name: dict[str, str], account: str) -> ProviderRateLimiter:
    rates = {name: rate_parse(spec) for name, spec in limits_by_name.items()}
    return ProviderRateLimiter(redis_client=client, provider="stripe", account=account, limits=rates, clock=clock)


def grant_count(workers: list[ProviderRateLimiter], *, operation: str = "intent_create") -> int:
    """Let each worker in turn acquire until a whole round is refused; count the tokens granted."""
    granted = 0
    while True:
        round_granted = sum(1 for worker in workers if worker.acquire(operation=operation) == 0.0)
        granted += round_granted
        if not round_granted:
            return granted


def test_two_workers_sharing_redis_get_exactly_the_rate_over_a_simulated_second(connect, clock, unique):
    account = unique("rate")
    workers = [limiter(connect(), clock, {"account": "25/s:1"}, account) for _ in range(2)]

    granted = grant_count(workers)
    for _ in range(999):  # t0 + 1 ms … t0 + 999 ms: the rest of the first second
        clock.advance(0.001)
        granted += grant_count(workers)

    assert granted == 25


def test_after_a_burst_the_rate_holds_over_the_following_second(connect, clock, unique):
    account = unique("burst")
    workers = [limiter(connect(), clock, {"account": "25/s:5"}, account) for _ in range(2)]

    burst = grant_count(workers)
    following_second = 0
    for _ in range(1000):  # t0 + 1 ms … t0 + 1 s
        clock.advance(0.001)
        following_second += grant_count(workers)

    assert burst == 5
    assert following_second == 25


def test_many_threads_at_one_instant_are_granted_exactly_the_burst(connect, clock, unique):
    account = unique("threads")
    workers = [limiter(connect(), clock, {"account": "100/s:10"}, account) for _ in range(4)]
    start = threading.Barrier(8)
    grants = []

    def worker(index: int) -> None:
        start.wait()
        grants.extend(workers[index % 4].acquire(operation="intent_create") == 0.0 for _ in range(10))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert grants.count(True) == 10
    assert len(grants) == 80


@pytest.mark.parametrize("spec", ["3/s", "25/s:5", "100/m", "20/2s"])
def test_the_wait_is_exactly_when_a_token_frees(connect, clock, spec, unique):
    worker = limiter(connect(), clock, {"default": spec}, unique("wait"))
    grant_count([worker])

    wait = worker.acquire(operation="intent_create")
    clock.advance(wait - 0.000_001)
    early = worker.acquire(operation="intent_create")
    clock.advance(0.000_001)
    on_time = worker.acquire(operation="intent_create")

    assert wait > 0
    assert early == pytest.approx(0.000_001)
    assert on_time == 0.0


def test_refused_calls_take_no_token(connect, clock, unique):
    worker = limiter(connect(), clock, {"account": "1/s:1"}, unique("refused"))
    worker.acquire(operation="intent_create")

    clock.advance(0.5)
    refusals = [worker.acquire(operation="intent_create") for _ in range(50)]
    clock.advance(0.5)
    after_one_second = worker.acquire(operation="intent_create")

    assert refusals == [0.5] * 50
    assert after_one_second == 0.0


def test_a_limit_key_expires_soon_after_its_tokens_are_all_back(connect, clock, unique):
    client = connect()
    worker = limiter(client, clock, {"account": "1/s:1"}, unique("expiry"))

    worker.acquire(operation="intent_create")

    assert 1000 < client.pttl(worker.key) <= 1000 + rate_limit.KEEP_PAST_TAT_MS


def test_operations_have_their_own_limits(connect, clock, unique):
    worker = limiter(
        connect(), clock, {"account": "100/s", "default": "2/s:2", "refund_create": "1/s:1"}, unique("operations")
    )

    refunds = grant_count([worker], operation="refund_create")
    creates = grant_count([worker], operation="intent_create")
    captures = grant_count([worker], operation="intent_capture")

    assert (refunds, creates, captures) == (1, 2, 2)


def test_every_operation_counts_against_the_account_limit(connect, clock, unique):
    worker = limiter(connect(), clock, {"account": "3/s:3", "default": "10/s"}, unique("account"))

    granted = [worker.acquire(operation=operation) for operation in ("intent_create", "refund_create", "intent_find")]
    refused = worker.acquire(operation="intent_capture")

    assert granted == [0.0, 0.0, 0.0]
    assert refused == pytest.approx(1 / 3, abs=0.000_001)


def test_a_refusal_by_the_account_limit_takes_no_token_from_the_operation(connect, clock, unique):
    worker = limiter(connect(), clock, {"account": "1/s:1", "default": "1/10s:1"}, unique("atomic"))
    worker.acquire(operation="intent_create")

    refused = worker.acquire(operation="refund_create")  # its own bucket is full; the account's is not
    clock.advance(1)
    granted = worker.acquire(operation="refund_create")

    assert refused == 1.0
    assert granted == 0.0


def test_without_an_injected_clock_the_redis_server_clock_is_used(connect, unique):
    worker = limiter(connect(), None, {"account": "1/h:1"}, unique("server-clock"))

    first = worker.acquire(operation="intent_create")
    second = worker.acquire(operation="intent_create")

    assert first == 0.0
    assert 3590 < second <= 3600


def test_a_wait_is_reported_to_the_metrics_hook(connect, clock, monkeypatch, unique):
    waits = []
    monkeypatch.setattr(hooks, "limiter_waited", lambda **kwargs: waits.append(kwargs))
    worker = limiter(connect(), clock, {"account": "2/s:1"}, unique("metrics"))

    worker.acquire(operation="refund_create")
    worker.acquire(operation="refund_create")

    assert waits == [{"provider": "stripe", "operation": "refund_create", "wait": 0.5}]


def test_when_redis_is_down_the_limiter_lets_calls_through(redis_down, clock, unique, monkeypatch, caplog):
    outages = []
    monkeypatch.setattr(hooks, "redis_unavailable", lambda **kwargs: outages.append(kwargs))
    worker = limiter(redis_down, clock, {"account": "1/h:1"}, unique("down"))

    with caplog.at_level(logging.WARNING, logger="payments.gateway.limits.rate_limit"):
        waits = [worker.acquire(operation="intent_create") for _ in range(3)]

    assert waits == [0.0, 0.0, 0.0]
    assert outages == [{"component": "rate_limiter"}] * 3
    assert "provider rate limiter unavailable" in caplog.text


@pytest.mark.parametrize(
    ("spec", "rate"),
    [
        ("25/s", Rate(calls=25, period=1, burst=25)),
        ("100/m", Rate(calls=100, period=60, burst=100)),
        ("20/2s", Rate(calls=20, period=2, burst=20)),
        (" 25 / s : 5 ", Rate(calls=25, period=1, burst=5)),
        ("1000/h:1", Rate(calls=1000, period=3600, burst=1)),
    ],
)
def test_rates_are_parsed_from_calls_period_and_burst(spec, rate):
    assert rate_parse(spec) == rate


@pytest.mark.parametrize("spec", ["", "25", "25/d", "0/s", "25/0s", "25/s:0", "-1/s", "2.5/s", "25 per second"])
def test_a_malformed_rate_is_refused_as_a_configuration_error(spec):
    with pytest.raises(ImproperlyConfigured, match="not a rate"):
        rate_parse(spec)


def test_get_rate_limiter_reads_the_settings_once(settings, unique):
    settings.PROVIDER_RATE_LIMITS = {"account": "1/h:1"}
    account = unique("factory")

    first = limits.get_rate_limiter(account=account)
    again = limits.get_rate_limiter(account=account)

    assert first is again
    assert first.acquire(operation="intent_create") == 0.0
    assert first.acquire(operation="intent_create") > 3500


def test_get_rate_limiter_refuses_a_malformed_setting(settings, unique):
    settings.PROVIDER_RATE_LIMITS = {"account": "lots"}

    with pytest.raises(ImproperlyConfigured, match="'lots'"):
        limits.get_rate_limiter(account=unique("malformed"))


def test_the_default_account_is_named_by_a_fingerprint_of_the_key_never_the_key(settings):
    settings.STRIPE_SECRET_KEY = "sk_live_not_a_real_key"

    worker = limits.get_rate_limiter()

    assert "sk_live" not in worker.key
    assert worker.key == f"ratelimit:provider:stripe:{limits.account_fingerprint('sk_live_not_a_real_key')}"
    assert limits.account_fingerprint("sk_test_a") != limits.account_fingerprint("sk_live_a")
