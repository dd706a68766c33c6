"""Each sandbox fault, and each way a connection fails, comes out of StripeGateway as the typed error it is."""

import time

import pytest
from ulid import ULID

from payments.gateway.base import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderIdempotencyConflict,
    ProviderOutcomeUnknown,
    ProviderRateLimited,
    ProviderServerError,
    ProviderUnavailable,
)

READ_TIMEOUT = 0.3


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_503"])
def test_a_server_error_is_a_retryable_server_error_and_the_same_key_then_charges_once(pay, stripe_sandbox, kind):
    stripe_sandbox.set_faults({"kind": kind, "count": 1})
    payment_id = f"pay_{ULID()}"

    with pytest.raises(ProviderServerError) as failed:
        pay(payment_id=payment_id)
    retried = pay(payment_id=payment_id)

    assert failed.value.status == int(kind[-3:])
    assert (failed.value.retryable, failed.value.outcome_unknown) == (True, True)
    assert failed.value.request_id.startswith("req_")
    assert retried.status == "succeeded"
    assert stripe_sandbox.ledger()["totals"]["charged"] == 1


def test_a_rate_limit_carries_retry_after_in_seconds_and_did_nothing(pay, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "rate_limit", "count": 1, "retry_after": 3})

    with pytest.raises(ProviderRateLimited) as limited:
        pay()

    assert (limited.value.status, limited.value.retry_after) == (429, 3.0)
    assert limited.value.outcome_unknown is False
    assert stripe_sandbox.ledger()["totals"]["created"] == 0


def test_the_sandboxs_rps_limit_is_a_rate_limit_with_its_retry_after(gateway, pay, stripe_sandbox):
    intent = pay()
    stripe_sandbox.set_faults({"kind": "rps_limit", "rps": 3})

    outcomes = []
    for _ in range(8):
        try:
            gateway.intent_retrieve(intent_id=intent.id)
            outcomes.append("ok")
        except ProviderRateLimited as limited:
            outcomes.append(limited.retry_after)

    assert outcomes[0] == "ok"
    assert outcomes.count(1.0) >= 3


def test_timeout_after_commit_is_outcome_unknown_and_the_same_key_returns_the_same_intent_charged_once(
    make_gateway, stripe_sandbox, pay
):
    stripe_sandbox.set_faults({"kind": "timeout_after_commit", "count": 1, "ms": 1000})
    impatient = make_gateway(stripe_sandbox.url, timeout_seconds=READ_TIMEOUT)
    payment_id = f"pay_{ULID()}"

    with pytest.raises(ProviderOutcomeUnknown) as unknown:
        pay(through=impatient, payment_id=payment_id)
    found = impatient.intent_find(payment_id=payment_id)
    retried = pay(through=impatient, payment_id=payment_id)

    assert (unknown.value.outcome_unknown, unknown.value.retryable, unknown.value.status) == (True, True, None)
    assert found.status == "succeeded"  # the provider did act: this payment must never be marked failed
    assert retried.id == found.id
    ledger = stripe_sandbox.ledger()
    assert (ledger["totals"]["created"], ledger["totals"]["charged"]) == (1, 1)
    assert ledger["requests_per_idempotency_key"] == {f"{payment_id}:create": 2}


def test_a_connection_reset_after_sending_is_outcome_unknown(pay, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "connection_reset", "count": 1})
    payment_id = f"pay_{ULID()}"

    with pytest.raises(ProviderOutcomeUnknown):
        pay(payment_id=payment_id)
    retried = pay(payment_id=payment_id)

    assert retried.status == "succeeded"
    assert stripe_sandbox.ledger()["totals"]["charged"] == 1


def test_a_success_status_with_an_error_body_is_a_bad_response_never_a_success(pay, gateway, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "error_200", "count": 2})
    payment_id = f"pay_{ULID()}"

    with pytest.raises(ProviderBadResponse) as bad:
        pay(payment_id=payment_id)
    with pytest.raises(ProviderBadResponse):
        gateway.events_list()
    retried = pay(payment_id=payment_id)

    assert (bad.value.status, bad.value.outcome_unknown, bad.value.retryable) == (200, True, True)
    assert bad.value.request_id.startswith("req_")
    assert retried.status == "succeeded"


def test_latency_below_the_read_timeout_is_only_slower(make_gateway, stripe_sandbox, pay):
    stripe_sandbox.set_faults({"kind": "latency", "ms": 150, "count": 1})
    patient = make_gateway(stripe_sandbox.url, timeout_seconds=1.0)

    started = time.monotonic()
    intent = pay(through=patient)

    assert intent.status == "succeeded"
    assert time.monotonic() - started >= 0.15


def test_latency_above_the_read_timeout_is_outcome_unknown_then_in_flight_then_the_same_intent(
    make_gateway, stripe_sandbox, pay
):
    latency_ms = 1200
    stripe_sandbox.set_faults({"kind": "latency", "ms": latency_ms, "count": 1})
    impatient = make_gateway(stripe_sandbox.url, timeout_seconds=READ_TIMEOUT)
    payment_id = f"pay_{ULID()}"
    started = time.monotonic()

    with pytest.raises(ProviderOutcomeUnknown):
        pay(through=impatient, payment_id=payment_id)
    with pytest.raises(ProviderIdempotencyConflict) as in_flight:  # the provider is still working on it
        pay(through=impatient, payment_id=payment_id)
    time.sleep(max(0.0, latency_ms / 1000 + 0.2 - (time.monotonic() - started)))
    settled = pay(through=impatient, payment_id=payment_id)

    assert (in_flight.value.in_flight, in_flight.value.retryable, in_flight.value.status) == (True, True, 409)
    assert settled.status == "succeeded"
    assert stripe_sandbox.ledger()["totals"]["charged"] == 1


def test_reusing_a_key_with_other_parameters_is_a_conflict_that_is_not_retried(pay, stripe_sandbox):
    pay(payment_id="pay_01REUSED", amount=1000)

    with pytest.raises(ProviderIdempotencyConflict) as reused:
        pay(payment_id="pay_01REUSED", amount=2000)

    assert (reused.value.in_flight, reused.value.retryable, reused.value.status) == (False, False, 400)
    assert stripe_sandbox.ledger()["totals"]["charged"] == 1


def test_a_refused_connection_is_unavailable_nothing_was_sent(make_gateway, pay, closed_port):
    unreachable = make_gateway(f"http://127.0.0.1:{closed_port}")

    with pytest.raises(ProviderUnavailable) as unavailable:
        pay(through=unreachable)

    assert (unavailable.value.retryable, unavailable.value.outcome_unknown) == (True, False)
    assert str(closed_port) not in unavailable.value.message  # our own words, not the transport's URL


def test_a_connect_timeout_is_unavailable_nothing_was_sent(make_gateway, pay, unanswered_port):
    unreachable = make_gateway(f"http://127.0.0.1:{unanswered_port}", connect_timeout_seconds=0.2)

    with pytest.raises(ProviderUnavailable, match="ConnectTimeout"):
        pay(through=unreachable)


def test_a_key_stripe_does_not_accept_is_an_auth_error_that_stops_the_line(make_gateway, stripe_sandbox, pay):
    misconfigured = make_gateway(stripe_sandbox.url, api_key="sk_live_not_for_the_sandbox")

    with pytest.raises(ProviderAuthError) as refused:
        pay(through=misconfigured)

    assert (refused.value.status, refused.value.retryable) == (401, False)


def test_an_api_base_that_is_not_a_url_is_a_configuration_error(make_gateway, pay):
    misconfigured = make_gateway("localhost:12111")

    with pytest.raises(ProviderAuthError, match="STRIPE_API_BASE"):
        pay(through=misconfigured)


def test_a_gateway_without_a_key_cannot_be_built(make_gateway):
    with pytest.raises(ProviderAuthError, match="STRIPE_SECRET_KEY"):
        make_gateway("http://127.0.0.1:1", api_key="")
