"""
Money moving through the running system: the API writes, the real relay hands rows to a real Celery
worker in another process, the worker calls the sandbox through the real SDK. For every fault the
sandbox injects, the payment ends in the right state and the provider's own ledger shows exactly
one charge per payment.
"""

import time
from uuid import uuid4

import pytest

from outbox.models import OutboxMessage
from payments.models import Payment
from tests.fixtures.live import FINAL, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
INTENTS = "/v1/payment_intents"


def create(api, *, amount: int = 2000, payment_method: str = "pm_card_visa", capture_method: str = "automatic") -> str:
    response = api.post(
        "/api/v1/payments",
        {"amount": amount, "currency": "eur", "payment_method": payment_method, "capture_method": capture_method},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid4()),
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def settled(payment_id: str, *, statuses=FINAL, timeout: float = 30) -> Payment:
    return wait_until(
        lambda: (p := Payment.objects.get(public_id=payment_id)).status in statuses and p,
        timeout=timeout,
        what=f"{payment_id} to reach {sorted(statuses)}",
    )


def charges_for(sandbox, payment_id: str) -> list[dict]:
    intents = sandbox.ledger()["payment_intents"].values()
    return [entry for entry in intents if entry["metadata"].get("payment_id") == payment_id]


def assert_charged_once(sandbox, payment: Payment) -> None:
    (entry,) = charges_for(sandbox, payment.public_id)
    assert entry["charged"] == 1, entry
    assert payment.provider_payment_id


def test_a_payment_created_through_the_api_is_charged_once_and_succeeds(api, live_stack, stripe_sandbox):
    payment = settled(create(api))

    assert payment.status == Payment.Status.SUCCEEDED and payment.amount_received == 2000
    assert_charged_once(stripe_sandbox, payment)
    assert OutboxMessage.objects.get().status == OutboxMessage.Status.DONE
    assert [e.type for e in payment.events.order_by("id")] == [
        "payment.created",
        "payment.submitted",
        "payment.succeeded",
    ]


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http_500", "count": 2},
        {"kind": "http_502", "count": 1},
        {"kind": "http_503", "count": 2},
        {"kind": "connection_reset", "count": 1},
        {"kind": "error_200", "count": 1},
        {"kind": "timeout_after_commit", "count": 1, "ms": 2500},
        {"kind": "latency", "ms": 300},
    ],
    ids=lambda fault: fault["kind"],
)
def test_each_provider_fault_ends_in_success_with_exactly_one_charge(api, live_stack, stripe_sandbox, fault):
    stripe_sandbox.set_faults({**fault, "path": INTENTS, "method": "POST"})

    payment = settled(create(api))

    assert payment.status == Payment.Status.SUCCEEDED
    assert_charged_once(stripe_sandbox, payment)
    fired = stripe_sandbox.control("GET", "faults")
    assert sum(f.get("fired", 0) for f in fired.get("faults", [])) >= 1, fired


def test_a_rate_limited_call_is_retried_no_sooner_than_retry_after(api, live_stack, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "rate_limit", "count": 1, "retry_after": 2, "path": INTENTS, "method": "POST"})
    started = time.monotonic()

    payment = settled(create(api))

    assert payment.status == Payment.Status.SUCCEEDED
    assert time.monotonic() - started >= 2
    assert_charged_once(stripe_sandbox, payment)


def test_many_payments_under_the_providers_rps_limit_all_succeed_once(api, live_stack, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "rps_limit", "rps": 5})

    ids = [create(api) for _ in range(15)]

    for payment_id in ids:
        payment = settled(payment_id, timeout=60)
        assert payment.status == Payment.Status.SUCCEEDED
        assert_charged_once(stripe_sandbox, payment)


@pytest.mark.parametrize(
    ("payment_method", "code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
    ],
)
def test_a_declined_card_fails_the_payment_with_the_providers_code_and_charges_nothing(
    api, live_stack, stripe_sandbox, payment_method, code
):
    payment = settled(create(api, payment_method=payment_method))

    assert (payment.status, payment.failure_code) == (Payment.Status.FAILED, code)
    assert all(entry["charged"] == 0 for entry in charges_for(stripe_sandbox, payment.public_id))
    assert OutboxMessage.objects.get().status == OutboxMessage.Status.DONE  # a decline is not retried


def test_3ds_waits_for_the_customer_then_succeeds_once(api, live_stack, stripe_sandbox):
    payment_id = create(api, payment_method="pm_card_authenticationRequired")
    payment = settled(payment_id, statuses={"REQUIRES_ACTION"})
    assert payment.next_action["type"] == "redirect_to_url"

    stripe_sandbox.authenticate(payment.provider_payment_id, "succeed")
    payment = settled(payment_id)

    assert payment.status == Payment.Status.SUCCEEDED
    assert_charged_once(stripe_sandbox, payment)


def test_a_failed_3ds_fails_the_payment(api, live_stack, stripe_sandbox):
    payment_id = create(api, payment_method="pm_card_threeDSecure2Required")
    payment = settled(payment_id, statuses={"REQUIRES_ACTION"})

    stripe_sandbox.authenticate(payment.provider_payment_id, "fail")

    assert settled(payment_id).status == Payment.Status.FAILED


def test_manual_capture_partial_capture_and_a_partial_refund_go_through_once(api, live_stack, stripe_sandbox):
    payment_id = create(api, capture_method="manual")
    settled(payment_id, statuses={"REQUIRES_CAPTURE"})

    response = api.post(f"/api/v1/payments/{payment_id}/capture", {"amount": 1500}, format="json")
    assert response.status_code == 202, response.content
    payment = settled(payment_id)
    refund = api.post(
        f"/api/v1/payments/{payment_id}/refunds", {"amount": 500}, format="json", HTTP_IDEMPOTENCY_KEY=str(uuid4())
    )
    assert refund.status_code == 202, refund.content
    refund_id = refund.json()["id"]
    wait_until(
        lambda: api.get(f"/api/v1/refunds/{refund_id}").json()["status"] == "succeeded", timeout=30, what="refund"
    )

    assert (payment.status, payment.amount_received) == (Payment.Status.SUCCEEDED, 1500)
    (entry,) = charges_for(stripe_sandbox, payment_id)
    assert (entry["charged"], entry["captured"], entry["amount_captured"]) == (1, 1, 1500)
    assert (entry["refunded"], entry["amount_refunded"]) == (1, 500)


def test_cancel_of_an_authorization_cancels_it_at_the_provider(api, live_stack, stripe_sandbox):
    payment_id = create(api, capture_method="manual")
    settled(payment_id, statuses={"REQUIRES_CAPTURE"})

    assert api.post(f"/api/v1/payments/{payment_id}/cancel", {}, format="json").status_code == 202

    assert settled(payment_id).status == Payment.Status.CANCELED
    (entry,) = charges_for(stripe_sandbox, payment_id)
    assert (entry["canceled"], entry["captured"]) == (1, 0)


def test_a_worker_killed_in_the_middle_of_a_provider_call_still_completes_the_payment_once(
    api, live_stack, stripe_sandbox
):
    stripe_sandbox.set_faults({"kind": "latency", "ms": 2000, "count": 1, "path": INTENTS, "method": "POST"})
    payment_id = create(api)
    wait_until(
        lambda: stripe_sandbox.control("GET", "faults")["faults"][0].get("fired", 0) == 1,
        timeout=15,
        what="the provider call to be in flight",
    )

    live_stack.worker.kill()
    assert Payment.objects.get(public_id=payment_id).status == Payment.Status.PROCESSING
    live_stack.worker.start()
    payment = settled(payment_id, timeout=45)  # the lease (6 s here) hands the row out again

    assert payment.status == Payment.Status.SUCCEEDED
    assert_charged_once(stripe_sandbox, payment)


def test_payments_accepted_while_the_broker_is_down_are_sent_when_it_returns(api, live_stack, stripe_sandbox):
    live_stack.broker.stop()
    ids = [create(api) for _ in range(3)]
    time.sleep(1.5)  # the relay tries, fails, gives the rows back
    assert set(Payment.objects.filter(public_id__in=ids).values_list("status", flat=True)) == {"PENDING"}

    live_stack.broker.start()

    for payment_id in ids:
        payment = settled(payment_id, timeout=60)
        assert payment.status == Payment.Status.SUCCEEDED
        assert_charged_once(stripe_sandbox, payment)


def test_the_relay_and_worker_logs_carry_no_personal_data_or_card_details(api, live_stack, stripe_sandbox):
    planted = ["jane.doe@example.com", "Jane Doe's birthday gift", "4242424242424242", "meta-secret-value"]
    response = api.post(
        "/api/v1/payments",
        {
            "amount": 2000,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "description": planted[1],
            "customer_reference": planted[0],
            "metadata": {"card": planted[2], "note": planted[3]},
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid4()),
    )
    payment = settled(response.json()["id"])

    logs = live_stack.worker.log() + live_stack.relay.log()
    assert payment.status == Payment.Status.SUCCEEDED
    assert '"provider_call"' in logs and payment.public_id in logs  # the call was logged, with our id
    assert [value for value in planted if value in logs] == []
