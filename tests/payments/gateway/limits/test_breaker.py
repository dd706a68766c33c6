"""The circuit breaker per provider: shared by every worker through Redis, one probe at a time."""

import logging
import threading

import pytest
import redis

from payments.gateway import limits
from payments.gateway.base import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderDeclined,
    ProviderIdempotencyConflict,
    ProviderInvalidRequest,
    ProviderOutcomeUnknown,
    ProviderRateLimited,
    ProviderServerError,
    ProviderUnavailable,
)
from payments.gateway.limits import CircuitBreaker, hooks
from payments.gateway.limits.breaker import PROBE_WAIT_SECONDS


def breaker(client: redis.Redis, clock, provider: str) -> CircuitBreaker:
    return CircuitBreaker(
        redis_client=client,
        provider=provider,
        failure_rate=0.5,
        min_calls=10,
        window_seconds=30,
        open_seconds=15,
        probe_timeout_seconds=30,
        auth_trip_seconds=300,
        clock=clock,
    )


def record(subject: CircuitBreaker, *, successes: int = 0, failures: int = 0) -> None:
    for _ in range(successes):
        subject.record_success()
    for _ in range(failures):
        subject.record_failure()


def open_breaker(subject: CircuitBreaker) -> None:
    record(subject, failures=10)
    assert subject.state() == "open"


def test_the_breaker_opens_when_half_of_ten_calls_in_the_window_failed(connect, clock, unique):
    subject = breaker(connect(), clock, unique("opens"))

    record(subject, successes=5, failures=5)

    assert subject.state() == "open"
    assert subject.allow() == (False, 15.0)


def test_the_breaker_stays_closed_on_too_few_calls_even_if_all_failed(connect, clock, unique):
    subject = breaker(connect(), clock, unique("low-volume"))

    record(subject, failures=9)

    assert subject.state() == "closed"
    assert subject.allow() == (True, 0.0)


def test_the_breaker_stays_closed_below_the_failure_rate(connect, clock, unique):
    subject = breaker(connect(), clock, unique("below-rate"))

    record(subject, successes=12, failures=11)

    assert subject.state() == "closed"


@pytest.mark.parametrize(("seconds_later", "state"), [(29, "open"), (30, "closed")])
def test_only_failures_inside_the_window_count(connect, clock, seconds_later, state, unique):
    subject = breaker(connect(), clock, unique("window"))
    record(subject, failures=9)

    clock.advance(seconds_later)
    subject.record_failure()

    assert subject.state() == state


def test_failures_are_counted_across_workers(connect, clock, unique):
    provider = unique("shared")
    workers = [breaker(connect(), clock, provider) for _ in range(2)]

    for index in range(10):
        workers[index % 2].record_failure()

    assert [worker.state() for worker in workers] == ["open", "open"]


def test_an_open_breaker_refuses_calls_for_the_cool_off(connect, clock, unique):
    subject = breaker(connect(), clock, unique("cool-off"))
    open_breaker(subject)

    clock.advance(14.9)
    allowed, retry_in = subject.allow()

    assert allowed is False
    assert retry_in == pytest.approx(0.1)
    assert subject.state() == "open"


def test_after_the_cool_off_one_probe_goes_and_the_others_wait(connect, clock, unique):
    subject = breaker(connect(), clock, unique("probe"))
    open_breaker(subject)
    clock.advance(15)

    state_before = subject.state()
    probe = subject.allow()
    others = [subject.allow() for _ in range(3)]

    assert state_before == "half_open"
    assert probe == (True, 0.0)
    assert others == [(False, PROBE_WAIT_SECONDS)] * 3
    assert subject.state() == "half_open"


def test_half_open_lets_exactly_one_probe_through_across_two_workers_at_once(connect, clock, unique):
    provider = unique("one-probe")
    workers = [breaker(connect(), clock, provider) for _ in range(2)]
    open_breaker(workers[0])
    clock.advance(15)
    start = threading.Barrier(8)
    answers = []

    def worker(index: int) -> None:
        start.wait()
        answers.extend(workers[index % 2].allow()[0] for _ in range(5))

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers.count(True) == 1
    assert len(answers) == 40


def test_a_probe_success_closes_the_breaker_with_a_fresh_window(connect, clock, unique):
    subject = breaker(connect(), clock, unique("probe-success"))
    open_breaker(subject)
    clock.advance(15)
    subject.allow()

    subject.record_success()
    record(subject, failures=9)  # the failures before it opened are forgotten

    assert subject.state() == "closed"
    assert subject.allow() == (True, 0.0)


def test_a_probe_failure_reopens_the_breaker_for_the_cool_off(connect, clock, unique):
    subject = breaker(connect(), clock, unique("probe-failure"))
    open_breaker(subject)
    clock.advance(15)
    subject.allow()

    subject.record_failure()

    assert subject.state() == "open"
    assert subject.allow() == (False, 15.0)


def test_a_probe_that_never_reports_frees_the_slot_after_its_timeout(connect, clock, unique):
    subject = breaker(connect(), clock, unique("lost-probe"))
    open_breaker(subject)
    clock.advance(15)
    subject.allow()

    clock.advance(29.9)
    while_probing = subject.allow()
    clock.advance(0.1)
    after_timeout = subject.allow()

    assert while_probing == (False, pytest.approx(0.1))  # never past the lease's end
    assert after_timeout == (True, 0.0)


def test_trip_opens_the_breaker_for_the_given_time_whatever_the_failure_rate(connect, clock, unique):
    subject = breaker(connect(), clock, unique("trip"))
    record(subject, successes=20)

    subject.trip(300)
    record(subject, successes=5)  # calls already in flight do not close it
    clock.advance(299)
    still_open = subject.allow()
    clock.advance(1)

    assert still_open == (False, 1.0)
    assert subject.state() == "half_open"


def test_trip_never_shortens_a_longer_cool_off(connect, clock, unique):
    subject = breaker(connect(), clock, unique("trip-longer"))
    subject.trip(300)

    clock.advance(10)
    subject.trip(5)

    assert subject.allow() == (False, 290.0)


def test_reset_closes_an_open_breaker(connect, clock, unique):
    subject = breaker(connect(), clock, unique("reset"))
    subject.trip(300)

    subject.reset()

    assert subject.state() == "closed"
    assert subject.allow() == (True, 0.0)


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (None, "closed"),
        (ProviderDeclined("card_declined", code="card_declined"), "closed"),
        (ProviderInvalidRequest("payment_intent_unexpected_state"), "closed"),
        (ProviderIdempotencyConflict("in flight", in_flight=True), "closed"),
        (ProviderServerError("500", status=500), "open"),
        (ProviderUnavailable("refused"), "open"),
        (ProviderOutcomeUnknown("read timeout"), "open"),
        (ProviderRateLimited("429", retry_after=1.0), "open"),
        (ProviderBadResponse("error body in a 200"), "open"),
        (ValueError("our own bug"), "closed"),
    ],
)
def test_record_outcome_counts_only_an_unwell_provider_as_a_failure(connect, clock, error, state, unique):
    subject = breaker(connect(), clock, unique("outcome"))

    for _ in range(10):
        subject.record_outcome(error=error)

    assert subject.state() == state


def test_an_authentication_error_trips_the_breaker_at_once_and_alerts(connect, clock, unique, caplog):
    subject = breaker(connect(), clock, unique("auth"))

    with caplog.at_level(logging.ERROR, logger="payments.gateway.limits.breaker"):
        subject.record_outcome(error=ProviderAuthError("Invalid API Key provided", status=401))

    assert subject.allow() == (False, 300.0)
    assert [record.levelname for record in caplog.records if "credentials" in record.message] == ["ERROR"]


def test_transitions_are_reported_to_the_metrics_hook(connect, clock, monkeypatch, unique):
    changes = []
    monkeypatch.setattr(hooks, "breaker_changed", lambda **kwargs: changes.append(kwargs))
    provider = unique("transitions")
    subject = breaker(connect(), clock, provider)

    open_breaker(subject)
    clock.advance(15)
    subject.allow()
    subject.record_success()

    assert [(change["from_state"], change["to_state"]) for change in changes] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert {change["provider"] for change in changes} == {provider}


def test_without_an_injected_clock_the_breaker_uses_the_redis_server_clock(connect, unique):
    subject = breaker(connect(), None, unique("server-clock"))

    subject.trip(60)
    allowed, retry_in = subject.allow()

    assert allowed is False
    assert 59 < retry_in <= 60


def test_when_redis_is_down_the_breaker_lets_calls_through_and_never_raises(
    redis_down, clock, unique, monkeypatch, caplog
):
    outages = []
    monkeypatch.setattr(hooks, "redis_unavailable", lambda **kwargs: outages.append(kwargs))
    subject = breaker(redis_down, clock, unique("down"))

    with caplog.at_level(logging.WARNING, logger="payments.gateway.limits.breaker"):
        allowed = subject.allow()
        subject.record_failure()
        subject.record_success()
        subject.trip(300)
        state = subject.state()

    assert allowed == (True, 0.0)
    assert state == "unknown"
    assert outages == [{"component": "circuit_breaker"}] * 5
    assert "provider circuit breaker unavailable" in caplog.text


def test_get_circuit_breaker_reads_the_settings(settings, unique):
    settings.PROVIDER_BREAKER_MIN_CALLS = 2
    settings.PROVIDER_BREAKER_OPEN_SECONDS = 7
    subject = limits.get_circuit_breaker(provider=unique("factory"))

    record(subject, failures=2)
    allowed, retry_in = subject.allow()

    assert subject is limits.get_circuit_breaker(provider=subject.provider)
    assert allowed is False
    assert 6 < retry_in <= 7


def test_the_limiter_and_the_breaker_share_one_redis_client_per_process(unique):
    limiter = limits.get_rate_limiter(account=unique("factory"))
    subject = limits.get_circuit_breaker(provider=unique("factory"))

    assert limiter._script.registered_client is subject._script.registered_client
