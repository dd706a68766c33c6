"""PaymentIntent lifecycles through the real stripe SDK, as Stripe documents them."""

import time

import pytest
import stripe

from sandbox import cards

CARD = {"amount": 2000, "currency": "eur"}


def create(client, **params):
    return client.v1.payment_intents.create(params={**CARD, **params})


def wait_for_status(client, intent_id: str, status: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while (intent := client.v1.payment_intents.retrieve(intent_id)).status != status:
        assert time.monotonic() < deadline, f"{intent_id} stayed {intent.status}"
        time.sleep(0.05)
    return intent


def test_create_without_a_payment_method_requires_one(stripe_client):
    intent = create(stripe_client)

    assert intent.object == "payment_intent"
    assert intent.id.startswith("pi_")
    assert intent.status == "requires_payment_method"
    assert intent.client_secret.startswith(intent.id + "_secret_")
    assert intent.livemode is False


def test_create_with_a_payment_method_requires_confirmation_then_confirm_succeeds(stripe_client):
    intent = create(stripe_client, payment_method="pm_card_visa")

    confirmed = stripe_client.v1.payment_intents.confirm(intent.id)

    assert intent.status == "requires_confirmation"
    assert confirmed.status == "succeeded"
    assert confirmed.amount_received == 2000
    assert confirmed.latest_charge.startswith("ch_")
    assert stripe_client.v1.charges.retrieve(confirmed.latest_charge).captured is True


def test_automatic_capture_succeeds_in_one_call(stripe_client):
    intent = create(stripe_client, payment_method="pm_card_visa", confirm=True, metadata={"order": "42"})

    assert intent.status == "succeeded"
    assert intent.amount_received == 2000
    assert intent.amount_capturable == 0
    assert intent.metadata["order"] == "42"


def test_manual_capture_waits_in_requires_capture_then_captures_in_full(stripe_client):
    intent = create(stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual")

    captured = stripe_client.v1.payment_intents.capture(intent.id)

    assert intent.status == "requires_capture"
    assert intent.amount_capturable == 2000
    assert captured.status == "succeeded"
    assert captured.amount_received == 2000
    assert captured.amount_capturable == 0


def test_manual_capture_can_capture_part_of_the_amount(stripe_client):
    intent = create(stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual")

    captured = stripe_client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 1500})

    assert captured.amount_received == 1500


def test_capturing_more_than_capturable_is_refused(stripe_client):
    intent = create(stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual")

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 2001})

    assert refused.value.code == "amount_too_large"


def test_cancel_of_an_authorized_payment_releases_it(stripe_client):
    intent = create(stripe_client, payment_method="pm_card_visa", confirm=True, capture_method="manual")

    canceled = stripe_client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "abandoned"})

    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "abandoned"
    assert canceled.amount_capturable == 0


@pytest.mark.parametrize(
    ("action", "params"), [("capture", {}), ("cancel", {}), ("confirm", {"payment_method": "pm_card_visa"})]
)
def test_commands_on_a_succeeded_payment_are_refused_with_unexpected_state(stripe_client, action, params):
    intent = create(stripe_client, payment_method="pm_card_visa", confirm=True)

    with pytest.raises(stripe.InvalidRequestError) as refused:
        getattr(stripe_client.v1.payment_intents, action)(intent.id, params=params)

    assert refused.value.http_status == 400
    assert refused.value.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(
    ("payment_method", "code", "decline_code"),
    [
        (name, outcome.code, outcome.decline_code)
        for name, outcome in cards.METHODS.items()
        if outcome.kind == cards.DECLINE
    ],
)
def test_a_declined_card_is_a_402_card_error_and_the_intent_needs_a_new_method(
    stripe_client, payment_method, code, decline_code
):
    with pytest.raises(stripe.CardError) as declined:
        create(stripe_client, payment_method=payment_method, confirm=True)

    error = declined.value
    assert error.http_status == 402
    assert error.code == code
    assert error.error.decline_code == decline_code
    intent = stripe_client.v1.payment_intents.retrieve(error.error.payment_intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == code


@pytest.mark.parametrize(
    "payment_method", [name for name, outcome in cards.METHODS.items() if outcome.kind == cards.SUCCEED]
)
def test_each_succeeding_test_card_succeeds(stripe_client, payment_method):
    assert create(stripe_client, payment_method=payment_method, confirm=True).status == "succeeded"


def test_3ds_card_requires_action_and_completing_it_succeeds(stripe_client, stripe_sandbox):
    intent = create(
        stripe_client,
        payment_method="pm_card_authenticationRequired",
        confirm=True,
        return_url="https://shop.example/return",
    )

    stripe_sandbox.authenticate(intent.id, "succeed")

    assert intent.status == "requires_action"
    assert intent.next_action.type == "redirect_to_url"
    assert intent.next_action.redirect_to_url.return_url == "https://shop.example/return"
    assert stripe_client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_3ds_card_with_manual_capture_completes_to_requires_capture(stripe_client, stripe_sandbox):
    intent = create(
        stripe_client, payment_method="pm_card_threeDSecure2Required", confirm=True, capture_method="manual"
    )

    stripe_sandbox.authenticate(intent.id, "succeed")

    assert stripe_client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"


def test_3ds_card_whose_authentication_fails_needs_a_new_method(stripe_client, stripe_sandbox):
    intent = create(stripe_client, payment_method="pm_card_authenticationRequired", confirm=True)

    stripe_sandbox.authenticate(intent.id, "fail")

    failed = stripe_client.v1.payment_intents.retrieve(intent.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"


def test_an_async_method_stays_processing_then_succeeds(stripe_client):
    intent = create(stripe_client, payment_method="pm_sandbox_async", confirm=True)

    settled = wait_for_status(stripe_client, intent.id, "succeeded")

    assert intent.status == "processing"
    assert settled.amount_received == 2000


def test_an_async_method_can_settle_as_failed(stripe_client):
    intent = create(stripe_client, payment_method="pm_sandbox_async_fail", confirm=True)

    settled = wait_for_status(stripe_client, intent.id, "requires_payment_method")

    assert intent.status == "processing"
    assert settled.last_payment_error.code == "payment_method_failed"


def test_missing_amount_is_parameter_missing(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.payment_intents.create(params={"currency": "eur"})

    assert refused.value.code == "parameter_missing"
    assert refused.value.param == "amount"


def test_an_unknown_intent_is_404_resource_missing(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.payment_intents.retrieve("pi_nope")

    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


def test_a_bad_api_key_is_an_authentication_error(stripe_sandbox):
    client = stripe.StripeClient("sk_live_nope", base_addresses={"api": stripe_sandbox.url}, max_network_retries=0)

    with pytest.raises(stripe.AuthenticationError):
        client.v1.payment_intents.list()


def test_list_is_newest_first_and_pages_with_starting_after(stripe_client):
    first, second, third = (create(stripe_client) for _ in range(3))

    page = stripe_client.v1.payment_intents.list(params={"limit": 2})
    rest = stripe_client.v1.payment_intents.list(params={"limit": 2, "starting_after": page.data[-1].id})

    assert [i.id for i in page.data] == [third.id, second.id]
    assert page.has_more is True
    assert [i.id for i in rest.data] == [first.id]
    assert rest.has_more is False


def test_search_finds_intents_by_metadata_and_status(stripe_client):
    ours = create(stripe_client, payment_method="pm_card_visa", confirm=True, metadata={"payment_id": "pay_1"})
    create(stripe_client, metadata={"payment_id": "pay_2"})

    by_metadata = stripe_client.v1.payment_intents.search(params={"query": "metadata['payment_id']:'pay_1'"})
    by_both = stripe_client.v1.payment_intents.search(
        params={"query": "metadata['payment_id']:'pay_1' AND status:'succeeded'"}
    )

    assert [i.id for i in by_metadata.data] == [ours.id]
    assert [i.id for i in by_both.data] == [ours.id]
