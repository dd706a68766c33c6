"""The payment object clients get is exactly what PaymentOutputSerializer's declared fields describe (and the
schema publishes): its hand-written to_representation must never drift from them."""

import json

import pytest

from payments.api.serializers import PaymentOutputSerializer
from payments.models import Payment
from tests.factories import PaymentFactory, payment_with_status

pytestmark = pytest.mark.django_db


def both(payment: Payment) -> tuple[list, list]:
    serializer = PaymentOutputSerializer()
    fast = serializer.to_representation(payment)
    return list(fast.items()), list(serializer.declared_representation(payment).items())


@pytest.mark.parametrize("status", Payment.Status.values)
def test_every_status_renders_as_the_declared_fields_do(status):
    fast, declared = both(payment_with_status(status, amount=1234))

    assert fast == declared


def test_a_payment_with_every_optional_field_set_renders_as_the_declared_fields_do():
    payment = PaymentFactory(
        description="Order 42",
        customer_reference="cust-7",
        metadata={"order": "42", "empty": "", "unicode": "é\u2028"},
        capture_method=Payment.CaptureMethod.MANUAL,
    )
    Payment.objects.filter(pk=payment.pk).update(
        provider_payment_id="pi_123",
        next_action={"type": "redirect_to_url", "redirect_to_url": {"url": "https://example.com"}},
        failure_code="card_declined",
        failure_message="Your card was declined.",
    )
    payment.refresh_from_db()

    fast, declared = both(payment)

    assert fast == declared


def test_a_payment_fresh_from_the_create_service_renders_as_the_declared_fields_do(api):
    response = api.post(
        "/api/v1/payments",
        {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="fresh",
    )
    stored = Payment.objects.get(public_id=response.json()["id"])

    assert list(json.loads(response.content).items()) == both(stored)[1]
