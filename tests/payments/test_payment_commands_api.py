import pytest

from outbox.models import OutboxMessage
from payments import topics
from payments.models import Payment, PaymentEvent
from tests.factories import ApiClientFactory, PaymentFactory, payment_with_status

pytestmark = pytest.mark.django_db


def capture(api, payment, body=None):
    return api.post(f"/api/v1/payments/{payment.public_id}/capture", body or {}, format="json")


def cancel(api, payment):
    return api.post(f"/api/v1/payments/{payment.public_id}/cancel", {}, format="json")


def test_capture_of_an_authorized_payment_is_202_and_enqueues_the_capture(api, merchant):
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE, client=merchant, amount=5000)

    response = capture(api, payment)

    assert response.status_code == 202
    assert response.json()["status"] == "processing"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURE_REQUESTED
    assert payment.amount_to_capture == 5000
    assert OutboxMessage.objects.get().topic == topics.PAYMENT_CAPTURE_REQUESTED
    assert PaymentEvent.objects.get(payment=payment).type == "payment.capture_requested"


def test_partial_capture_records_the_requested_amount(api, merchant):
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE, client=merchant, amount=5000)

    capture(api, payment, {"amount": 1200})

    payment.refresh_from_db()
    assert payment.amount_to_capture == 1200


def test_capture_of_more_than_authorized_is_refused_and_changes_nothing(api, merchant):
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE, client=merchant, amount=5000)

    response = capture(api, payment, {"amount": 5001})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "amount_too_large"
    assert response.json()["error"]["param"] == "amount"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REQUIRES_CAPTURE
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize(
    "status",
    [
        Payment.Status.PENDING,
        Payment.Status.FAILED,
        Payment.Status.SUCCEEDED,
        Payment.Status.CANCELED,
        Payment.Status.CAPTURE_REQUESTED,
    ],
)
def test_capture_in_a_state_that_is_not_requires_capture_is_409_payment_not_capturable(api, merchant, status):
    payment = payment_with_status(status, client=merchant)

    response = capture(api, payment)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payment_not_capturable"
    assert not OutboxMessage.objects.exists()


def test_capture_of_another_clients_payment_is_404(api):
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE, client=ApiClientFactory(name="x"))

    response = capture(api, payment)

    assert response.status_code == 404


def test_cancel_of_a_pending_payment_cancels_at_once_without_a_provider_call(api, merchant):
    payment = PaymentFactory(client=merchant)

    response = cancel(api, payment)

    assert response.status_code == 202
    assert response.json()["status"] == "canceled"
    assert not OutboxMessage.objects.exists()
    assert PaymentEvent.objects.get(payment=payment).type == "payment.canceled"


@pytest.mark.parametrize("status", [Payment.Status.REQUIRES_ACTION, Payment.Status.REQUIRES_CAPTURE])
def test_cancel_of_a_sent_payment_is_202_and_enqueues_the_cancel(api, merchant, status):
    payment = payment_with_status(status, client=merchant)

    response = cancel(api, payment)

    assert response.status_code == 202
    assert response.json()["status"] == "processing"
    assert OutboxMessage.objects.get().topic == topics.PAYMENT_CANCEL_REQUESTED


@pytest.mark.parametrize(
    "status",
    [Payment.Status.SUCCEEDED, Payment.Status.FAILED, Payment.Status.CANCELED, Payment.Status.CAPTURE_REQUESTED],
)
def test_cancel_of_a_settled_payment_is_409_payment_not_cancelable(api, merchant, status):
    payment = payment_with_status(status, client=merchant)

    response = cancel(api, payment)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payment_not_cancelable"


def test_partial_capture_below_the_providers_minimum_is_amount_too_small_and_changes_nothing(api, merchant):
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE, client=merchant, amount=5000, currency="usd")

    response = capture(api, payment, {"amount": 49})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("amount_too_small", "amount")
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REQUIRES_CAPTURE
    assert not OutboxMessage.objects.exists()


def test_partial_capture_of_the_providers_minimum_is_accepted(api, merchant):
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE, client=merchant, amount=5000, currency="usd")

    response = capture(api, payment, {"amount": 50})

    assert response.status_code == 202
    payment.refresh_from_db()
    assert payment.amount_to_capture == 50


def test_partial_capture_in_a_three_decimal_currency_not_ending_in_0_is_refused(api, merchant):
    payment = payment_with_status(Payment.Status.REQUIRES_CAPTURE, client=merchant, amount=5000, currency="kwd")

    response = capture(api, payment, {"amount": 1234})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_charge_amount"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REQUIRES_CAPTURE
    assert not OutboxMessage.objects.exists()


def test_cancel_while_the_create_is_on_its_way_to_the_provider_is_409_and_enqueues_nothing(api, merchant):
    # Accepting it would promise what the worker cannot keep: a create retried after a 429 or a timeout
    # can still land and capture automatically after the cancel was answered 202.
    payment = payment_with_status(Payment.Status.PROCESSING, client=merchant)

    response = cancel(api, payment)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payment_not_cancelable"
    assert not OutboxMessage.objects.exists()
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PROCESSING
