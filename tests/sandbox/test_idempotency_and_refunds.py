"""Stripe's idempotency semantics and refunds, through the real SDK."""

import threading
import time

import pytest
import stripe

from tests.fixtures.sandbox import make_stripe_client

VISA = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}


def create(client, key: str, **params):
    return client.v1.payment_intents.create(params={**VISA, **params}, options={"idempotency_key": key})


def test_same_key_and_parameters_replay_the_stored_response_with_the_replayed_header(stripe_client, stripe_sandbox):
    first = create(stripe_client, "order-1")

    again = create(stripe_client, "order-1")

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert stripe_sandbox.ledger()["totals"]["created"] == 1


def test_same_key_with_other_parameters_is_an_idempotency_error(stripe_client):
    create(stripe_client, "order-1")

    with pytest.raises(stripe.IdempotencyError) as refused:
        create(stripe_client, "order-1", amount=2001)

    assert refused.value.http_status == 400


def test_a_declined_result_is_replayed_too(stripe_client, stripe_sandbox):
    with pytest.raises(stripe.CardError):
        create(stripe_client, "declined-1", payment_method="pm_card_chargeDeclined")

    with pytest.raises(stripe.CardError) as replayed:
        create(stripe_client, "declined-1", payment_method="pm_card_chargeDeclined")

    assert replayed.value.headers["Idempotent-Replayed"] == "true"
    assert stripe_sandbox.ledger()["totals"]["confirmed"] == 1


def test_a_concurrent_request_with_a_key_in_flight_is_a_409(stripe_client, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "latency", "ms": 600, "count": 1, "path": "/v1/payment_intents"})
    slow = threading.Thread(target=create, args=(make_stripe_client(stripe_sandbox.url), "busy"))
    slow.start()
    time.sleep(0.2)

    with pytest.raises(stripe.APIError) as conflict:
        create(stripe_client, "busy")
    slow.join()

    assert conflict.value.http_status == 409
    assert conflict.value.json_body["error"]["code"] == "idempotency_key_in_use"
    assert stripe_sandbox.ledger()["totals"]["created"] == 1


def test_keys_expire_after_24_hours(stripe_client, stripe_sandbox, monkeypatch):
    first = create(stripe_client, "old-key")
    idempotency = stripe_sandbox.server.idempotency
    monkeypatch.setattr(idempotency, "clock", lambda: time.time() + 24 * 3600 + 1)

    later = create(stripe_client, "old-key")

    assert later.id != first.id
    assert "Idempotent-Replayed" not in later.last_response.headers


def test_keys_are_scoped_per_api_key(stripe_client, stripe_sandbox):
    other = stripe.StripeClient("sk_test_other", base_addresses={"api": stripe_sandbox.url}, max_network_retries=0)
    first = create(stripe_client, "shared")

    second = other.v1.payment_intents.create(params=VISA, options={"idempotency_key": "shared"})

    assert second.id != first.id


def test_a_full_refund_refunds_what_was_captured(stripe_client):
    intent = create(stripe_client, "r-1")

    refund = stripe_client.v1.refunds.create(params={"payment_intent": intent.id, "reason": "requested_by_customer"})

    assert refund.object == "refund"
    assert refund.status == "succeeded"
    assert refund.amount == 2000
    assert refund.reason == "requested_by_customer"
    assert stripe_client.v1.charges.retrieve(intent.latest_charge).refunded is True
    assert stripe_client.v1.refunds.retrieve(refund.id).id == refund.id


def test_partial_refunds_add_up_and_never_pass_the_captured_amount(stripe_client):
    intent = create(stripe_client, "r-2")
    stripe_client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1500})

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 501})
    rest = stripe_client.v1.refunds.create(params={"payment_intent": intent.id})
    with pytest.raises(stripe.InvalidRequestError) as nothing_left:
        stripe_client.v1.refunds.create(params={"payment_intent": intent.id})

    assert too_much.value.code == "amount_too_large"
    assert rest.amount == 500
    assert nothing_left.value.code == "charge_already_refunded"
    listed = stripe_client.v1.refunds.list(params={"payment_intent": intent.id})
    assert sum(r.amount for r in listed.data) == 2000


def test_a_refund_of_an_uncaptured_payment_is_refused(stripe_client):
    intent = create(stripe_client, "r-3", capture_method="manual")

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.refunds.create(params={"payment_intent": intent.id})

    assert refused.value.code == "charge_not_refundable"


def test_a_refund_by_charge_id_works_like_by_payment_intent(stripe_client):
    intent = create(stripe_client, "r-4")

    refund = stripe_client.v1.refunds.create(params={"charge": intent.latest_charge, "amount": 100})

    assert refund.payment_intent == intent.id


def test_concurrent_clients_with_shared_and_distinct_keys_are_all_served_consistently(stripe_sandbox):
    clients = [make_stripe_client(stripe_sandbox.url, timeout=10) for _ in range(8)]
    errors: list[Exception] = []

    def work(client, index: int) -> None:
        for n in range(15):
            # Every thread repeats the shared keys: each must be charged once, whoever wins the race.
            for key in (f"thread-{index}-{n}", f"shared-{n}"):
                try:
                    create(client, key)
                except stripe.APIError as exc:  # a 409 while another thread holds the shared key
                    if exc.http_status != 409:
                        errors.append(exc)

    threads = [threading.Thread(target=work, args=(client, index)) for index, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    totals = stripe_sandbox.ledger()["totals"]
    assert totals["created"] == totals["charged"] == 8 * 15 + 15
