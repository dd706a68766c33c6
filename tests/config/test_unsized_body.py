"""A body sent without Content-Length (Transfer-Encoding: chunked) is refused, never read as no body at all.

Django and DRF read a request's body only up to its Content-Length, and gunicorn hands a chunked request
on without one: the body was dropped unread, so a chunked refund of 100 refunded everything that was left.
"""

import pytest

from payments.models import Payment, Refund
from tests.factories import payment_with_status

pytestmark = pytest.mark.django_db
# What gunicorn's environ holds for a chunked request: the header, and no CONTENT_LENGTH.
CHUNKED = {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": ""}


def test_a_chunked_refund_is_refused_not_taken_for_a_full_refund(api, merchant):
    payment = payment_with_status(Payment.Status.SUCCEEDED, client=merchant, amount=3000)

    response = api.post(
        f"/api/v1/payments/{payment.public_id}/refunds",
        {"amount": 100},
        format="json",
        HTTP_IDEMPOTENCY_KEY="chunked-1",
        **CHUNKED,
    )

    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"
    assert not Refund.objects.exists()
    payment.refresh_from_db()
    assert payment.amount_refunded == 0


@pytest.mark.parametrize("path", ["/api/v1/payments", "/webhooks/stripe"])
def test_every_api_and_webhook_post_without_a_length_is_411_in_the_error_shape(api, path):
    response = api.post(path, {"amount": 2000}, format="json", HTTP_IDEMPOTENCY_KEY="chunked-2", **CHUNKED)

    assert response.status_code == 411
    assert response.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "length_required",
            "message": "A request body needs a Content-Length header; chunked transfer encoding is not accepted.",
            "param": None,
        }
    }
    assert not Payment.objects.exists()


def test_a_request_with_a_content_length_is_served_as_before(api):
    response = api.post(
        "/api/v1/payments",
        {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="sized",
    )

    assert response.status_code == 202
