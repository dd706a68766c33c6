"""StripeGateway through the real SDK against the sandbox: payments, 3-D Secure, captures, cancels, refunds, events."""

import inspect
import time

import pytest
from ulid import ULID

from payments.gateway.base import PaymentGateway, ProviderDeclined, ProviderInvalidRequest
from payments.gateway.stripe import StripeGateway


def wait_until(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return result


def test_stripe_gateway_has_exactly_the_interfaces_methods_and_signatures():
    methods = [name for name, _ in inspect.getmembers(PaymentGateway, inspect.isfunction) if not name.startswith("_")]

    for name in methods:
        assert inspect.signature(getattr(StripeGateway, name)) == inspect.signature(getattr(PaymentGateway, name))
    assert StripeGateway.name == "stripe"


def test_create_and_confirm_returns_the_succeeded_intent_tagged_with_our_payment_id(pay, stripe_sandbox):
    intent = pay(payment_id="pay_01TAGGED", amount=2500)

    assert intent.id.startswith("pi_")
    assert (intent.status, intent.amount, intent.amount_received, intent.currency) == ("succeeded", 2500, 2500, "eur")
    assert intent.metadata == {"payment_id": "pay_01TAGGED"}
    assert intent.request_id.startswith("req_")
    assert stripe_sandbox.ledger()["payment_intents"][intent.id]["metadata"] == {"payment_id": "pay_01TAGGED"}


def test_manual_capture_authorizes_then_captures_in_full(gateway, pay, stripe_sandbox):
    authorized = pay(capture_method="manual", payment_id="pay_01MANUAL")

    captured = gateway.intent_capture(intent_id=authorized.id, amount=None, idempotency_key="pay_01MANUAL:capture")

    assert (authorized.status, authorized.amount_capturable) == ("requires_capture", 2000)
    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", 2000, 0)
    assert stripe_sandbox.ledger()["payment_intents"][authorized.id]["amount_captured"] == 2000


def test_partial_capture_receives_only_the_amount_captured(gateway, pay):
    authorized = pay(capture_method="manual")

    captured = gateway.intent_capture(intent_id=authorized.id, amount=1200, idempotency_key="partial:capture")

    assert (captured.status, captured.amount_received) == ("succeeded", 1200)


def test_cancel_releases_an_authorized_payment(gateway, pay, stripe_sandbox):
    authorized = pay(capture_method="manual")

    canceled = gateway.intent_cancel(intent_id=authorized.id, idempotency_key="c:cancel")

    assert (canceled.status, canceled.amount_capturable) == ("canceled", 0)
    assert stripe_sandbox.ledger()["payment_intents"][authorized.id]["canceled"] == 1


def test_capturing_a_canceled_intent_is_an_invalid_request_with_stripes_code(gateway, pay):
    authorized = pay(capture_method="manual")
    gateway.intent_cancel(intent_id=authorized.id, idempotency_key="x:cancel")

    with pytest.raises(ProviderInvalidRequest) as refused:
        gateway.intent_capture(intent_id=authorized.id, amount=None, idempotency_key="x:capture")

    assert refused.value.code == "payment_intent_unexpected_state"
    assert (refused.value.status, refused.value.retryable) == (400, False)
    assert refused.value.request_id.startswith("req_")


def test_retrieving_an_unknown_intent_is_an_invalid_request_resource_missing(gateway):
    with pytest.raises(ProviderInvalidRequest) as missing:
        gateway.intent_retrieve(intent_id="pi_nope")

    assert (missing.value.status, missing.value.code) == (404, "resource_missing")


@pytest.mark.parametrize(
    ("payment_method", "code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
    ],
)
def test_a_declined_card_is_a_terminal_decline_with_the_code_and_the_intent(pay, stripe_sandbox, payment_method, code):
    with pytest.raises(ProviderDeclined) as declined:
        pay(payment_method=payment_method, payment_id="pay_01DECLINED")

    error = declined.value
    assert (error.code, error.status, error.retryable, error.outcome_unknown) == (code, 402, False, False)
    assert error.message
    assert error.intent.status == "requires_payment_method"
    assert error.intent.failure_code == code
    assert error.intent.metadata == {"payment_id": "pay_01DECLINED"}
    assert stripe_sandbox.ledger()["totals"]["charged"] == 0


@pytest.mark.parametrize(("capture_method", "settled"), [("automatic", "succeeded"), ("manual", "requires_capture")])
def test_three_d_secure_requires_action_then_settles_once_the_customer_authenticated(
    gateway, pay, stripe_sandbox, capture_method, settled
):
    pending = pay(payment_method="pm_card_authenticationRequired", capture_method=capture_method)
    stripe_sandbox.authenticate(pending.id)

    after = gateway.intent_retrieve(intent_id=pending.id)

    assert pending.status == "requires_action"
    assert pending.next_action["type"] == "redirect_to_url"
    assert after.status == settled
    assert after.next_action is None
    assert stripe_sandbox.ledger()["payment_intents"][pending.id]["charged"] == 1


def test_intent_find_finds_the_intent_by_our_payment_id_and_none_for_an_unknown_one(gateway, pay):
    pay(payment_id="pay_01OTHER")
    intent = pay(payment_id="pay_01FINDME")

    found = gateway.intent_find(payment_id="pay_01FINDME")

    assert found == intent
    assert gateway.intent_find(payment_id="pay_01NEVERSENT") is None


def test_intent_find_refuses_a_payment_id_that_would_need_quoting(gateway):
    with pytest.raises(ValueError, match="payment id"):
        gateway.intent_find(payment_id="x' OR status:'succeeded")


def test_refunds_full_and_partial_carry_our_ids_and_are_retrievable(gateway, pay, stripe_sandbox):
    full_intent = pay(payment_id="pay_01FULL")
    partial_intent = pay(payment_id="pay_01PART")

    full = gateway.refund_create(
        intent_id=full_intent.id,
        refund_id="re_01FULL",
        payment_id="pay_01FULL",
        amount=2000,
        reason="requested_by_customer",
        idempotency_key="re_01FULL:create",
    )
    partial = gateway.refund_create(
        intent_id=partial_intent.id,
        refund_id="re_01PART",
        payment_id="pay_01PART",
        amount=500,
        reason="",
        idempotency_key="re_01PART:create",
    )

    assert (full.status, full.amount, full.payment_intent) == ("succeeded", 2000, full_intent.id)
    assert full.metadata == {"refund_id": "re_01FULL", "payment_id": "pay_01FULL"}
    assert (partial.status, partial.amount) == ("succeeded", 500)
    assert gateway.refund_retrieve(refund_id=partial.id) == partial
    ledger = stripe_sandbox.ledger()["payment_intents"]
    assert ledger[partial_intent.id]["amount_refunded"] == 500


def test_a_refund_beyond_what_was_captured_is_an_invalid_request_and_refunds_nothing(gateway, pay, stripe_sandbox):
    intent = pay(amount=1000)
    gateway.refund_create(
        intent_id=intent.id, refund_id="re_1", payment_id="p", amount=600, reason="", idempotency_key="re_1:create"
    )

    with pytest.raises(ProviderInvalidRequest) as refused:
        gateway.refund_create(
            intent_id=intent.id, refund_id="re_2", payment_id="p", amount=600, reason="", idempotency_key="re_2:create"
        )

    assert refused.value.code == "amount_too_large"
    entry = stripe_sandbox.ledger()["payment_intents"][intent.id]
    assert (entry["amount_refunded"], entry["amount_captured"]) == (600, 1000)


def test_events_list_pages_newest_first(gateway, pay):
    pay()  # payment_intent.created, charge.succeeded, payment_intent.succeeded

    first = gateway.events_list(limit=2)
    rest = gateway.events_list(starting_after=first.events[-1]["id"], limit=2)

    assert [e["type"] for e in first.events] == ["payment_intent.succeeded", "charge.succeeded"]
    assert first.has_more is True
    assert [e["type"] for e in rest.events] == ["payment_intent.created"]
    assert rest.has_more is False
    assert isinstance(first.events[0]["data"]["object"], dict)


def test_events_list_asks_only_for_the_given_types(gateway, pay):
    pay()  # payment_intent.created, charge.succeeded, payment_intent.succeeded

    page = gateway.events_list(types=["payment_intent.succeeded", "charge.refunded"])

    assert [e["type"] for e in page.events] == ["payment_intent.succeeded"]


def test_events_list_refuses_more_types_than_the_provider_filters_on(gateway):
    with pytest.raises(ValueError, match="at most 20 types"):
        gateway.events_list(types=[f"type.{n}" for n in range(21)])


def test_events_list_filters_on_delivery_success(gateway, pay, stripe_sandbox, webhook_receiver):
    stripe_sandbox.register_webhook(webhook_receiver.url)
    webhook_receiver.fail_next = 1_000  # every delivery fails, retries included
    intent = pay()

    undelivered = wait_until(lambda: len(gateway.events_list(delivery_success=False).events) == 3 or None)

    assert undelivered
    failed = gateway.events_list(delivery_success=False).events
    assert {e["data"]["object"]["id"] for e in failed} >= {intent.id}
    assert gateway.events_list(delivery_success=True).events == []


def test_every_post_carries_the_idempotency_key_we_derived_and_nothing_else(gateway, pay, stripe_sandbox):
    payment_id = f"pay_{ULID()}"
    intent = pay(payment_id=payment_id, capture_method="manual")
    gateway.intent_capture(intent_id=intent.id, amount=1500, idempotency_key=f"{payment_id}:capture")
    gateway.refund_create(
        intent_id=intent.id,
        refund_id="re_01K",
        payment_id=payment_id,
        amount=100,
        reason="",
        idempotency_key="re_01K:create",
    )
    gateway.intent_retrieve(intent_id=intent.id)  # GETs carry none
    gateway.intent_find(payment_id=payment_id)

    keys = stripe_sandbox.ledger()["requests_per_idempotency_key"]

    assert keys == {f"{payment_id}:create": 1, f"{payment_id}:capture": 1, "re_01K:create": 1}


def test_an_empty_idempotency_key_is_refused_before_anything_is_sent(gateway, stripe_sandbox):
    with pytest.raises(ValueError, match="idempotency key"):
        gateway.intent_cancel(intent_id="pi_x", idempotency_key="")

    assert stripe_sandbox.ledger()["requests_per_idempotency_key"] == {}


def test_intents_and_refunds_are_listed_by_created_range_a_page_at_a_time(gateway, pay):
    paid = [pay(amount=amount) for amount in (1000, 2000, 3000)]
    refund = gateway.refund_create(
        intent_id=paid[0].id, refund_id="re_x", payment_id="pay_x", amount=100, reason="", idempotency_key="k"
    )
    now = int(time.time())

    first = gateway.intents_list_created(gte=now - 60, lt=now + 60, limit=2)
    rest = gateway.intents_list_created(gte=now - 60, lt=now + 60, starting_after=first.intents[-1].id, limit=2)
    later = gateway.intents_list_created(gte=now + 60, lt=now + 120)
    refunds = gateway.refunds_list_created(gte=now - 60, lt=now + 60)

    assert [i.id for i in first.intents + rest.intents] == [p.id for p in reversed(paid)]
    assert (first.has_more, rest.has_more, later.intents) == (True, False, [])
    assert first.intents[0].metadata["payment_id"].startswith("pay_")
    (listed,) = refunds.refunds
    assert (listed.id, listed.amount, listed.currency, listed.metadata["refund_id"]) == (refund.id, 100, "eur", "re_x")
    assert listed.created >= now - 60
