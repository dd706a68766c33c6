"""What is stored of an event: what handlers read, and no personal data or metadata values."""

import json
from dataclasses import replace

import pytest
from django.conf import settings

from payments.gateway.stripe import intent_result_from_object, refund_result_from_object
from tests.webhooks.conftest import deliver, event
from webhooks.models import WebhookEvent
from webhooks.redaction import REDACTED, webhook_payload_redact

pytestmark = pytest.mark.django_db
PERSONAL = [
    "Jane Doe",
    "jane.doe@example.com",
    "+44 7700 900123",
    "221B Baker Street",
    "NW1 6XE",
    "Birthday gift for Jane",
    "cus_JaneDoe",
    "4242",
    "secret-order-note",
    "Gift wrap, ring the bell",
]
BILLING = {
    "name": "Jane Doe",
    "email": "jane.doe@example.com",
    "phone": "+44 7700 900123",
    "address": {"line1": "221B Baker Street", "postal_code": "NW1 6XE", "city": "London", "country": "GB"},
}


def full_intent() -> dict:
    """A PaymentIntent as Stripe may send it, with every place personal data can hide."""
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 2000,
        "amount_capturable": 0,
        "amount_received": 0,
        "currency": "eur",
        "status": "requires_payment_method",
        "capture_method": "automatic",
        "created": 1_790_000_000,
        "customer": "cus_JaneDoe",
        "description": "Birthday gift for Jane",
        "receipt_email": "jane.doe@example.com",
        "shipping": {"name": "Jane Doe", "phone": "+44 7700 900123", "address": BILLING["address"]},
        "metadata": {"payment_id": "pay_01J0000000000000000000000A", "note": "secret-order-note"},
        "next_action": None,
        "last_payment_error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_method": {
                "id": "pm_1",
                "billing_details": BILLING,
                "card": {"last4": "4242", "exp_month": 12, "exp_year": 2030},
            },
        },
        "payment_method": {"id": "pm_1", "billing_details": BILLING},
        "latest_charge": {"id": "ch_1", "billing_details": BILLING, "receipt_email": "jane.doe@example.com"},
    }


def test_no_personal_data_or_metadata_value_survives_and_our_ids_do():
    evt = event("payment_intent.payment_failed", full_intent())
    evt["data"]["previous_attributes"] = {"status": "requires_confirmation", "shipping": {"name": "Jane Doe"}}
    evt["customer_details"] = {"email": "jane.doe@example.com"}

    kept = webhook_payload_redact(evt)

    text = json.dumps(kept)
    assert [value for value in PERSONAL if value in text] == []
    obj = kept["data"]["object"]
    assert obj["metadata"] == {"payment_id": "pay_01J0000000000000000000000A", "note": REDACTED}
    assert obj["last_payment_error"]["payment_method"] == {"id": "pm_1"}
    assert kept["data"]["previous_attributes"] == {"status": "requires_confirmation"}
    assert (kept["id"], kept["type"], kept["api_version"]) == (evt["id"], evt["type"], settings.STRIPE_API_VERSION)


def test_the_handlers_read_the_same_intent_from_the_stored_payload_as_from_the_original():
    original = full_intent()
    original["latest_charge"] = "ch_1"

    kept = webhook_payload_redact(event("payment_intent.payment_failed", original))["data"]["object"]

    read, expected = intent_result_from_object(kept), intent_result_from_object(original)
    assert replace(read, metadata={}) == replace(expected, metadata={})
    assert read.metadata["payment_id"] == expected.metadata["payment_id"]


def test_a_refund_keeps_what_its_handler_reads():
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 500,
        "currency": "eur",
        "payment_intent": "pi_1",
        "status": "failed",
        "failure_reason": "lost_or_stolen_card",
        "metadata": {"refund_id": "re_01J0000000000000000000000A", "payment_id": "pay_x", "reason": "Jane moved"},
        "description": "Birthday gift for Jane",
    }

    kept = webhook_payload_redact(event("refund.failed", refund))["data"]["object"]

    read, expected = refund_result_from_object(kept), refund_result_from_object(refund)
    assert replace(read, metadata={}) == replace(expected, metadata={})
    assert kept["metadata"] == {
        "refund_id": "re_01J0000000000000000000000A",
        "payment_id": REDACTED,
        "reason": REDACTED,
    }
    assert "description" not in kept


def test_an_object_of_a_type_we_do_not_handle_keeps_only_what_says_what_it_was():
    customer = {"id": "cus_1", "object": "customer", "email": "jane.doe@example.com", "name": "Jane Doe", "address": {}}

    kept = webhook_payload_redact(event("customer.updated", customer))["data"]["object"]

    assert kept == {"id": "cus_1", "object": "customer"}


def test_the_stored_row_holds_the_redacted_payload(client):
    deliver(client, event("payment_intent.payment_failed", full_intent()))

    stored = json.dumps(WebhookEvent.objects.get().payload)

    assert [value for value in PERSONAL if value in stored] == []


def test_a_value_under_our_metadata_keys_is_kept_only_when_it_is_one_of_our_ids():
    obj = full_intent()
    obj["metadata"] = {"payment_id": "jane.doe@example.com", "refund_id": "Gift wrap, ring the bell"}

    kept = webhook_payload_redact(event("payment_intent.succeeded", obj))["data"]["object"]

    assert kept["metadata"] == {"payment_id": REDACTED, "refund_id": REDACTED}
