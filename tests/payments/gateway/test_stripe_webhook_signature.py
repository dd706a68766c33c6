"""Webhook signatures, verified by the SDK under each of our secrets; a reason for every refusal."""

import json
import time

import pytest
import stripe

from payments.gateway.base import (
    NO_SECRET_CONFIGURED,
    PAYLOAD_NOT_UTF8,
    SIGNATURE_MALFORMED,
    SIGNATURE_MISMATCH,
    SIGNATURE_MISSING,
    TIMESTAMP_OUTSIDE_TOLERANCE,
    WebhookSignatureInvalid,
)
from payments.gateway.stripe import intent_result_from_object, refund_result_from_object, webhook_signature_verify

SECRET = "whsec_current"
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}, indent=2).encode()


def signed(body: bytes = BODY, secret: str = SECRET, at: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=at)


def verify(body: bytes, header: str | None, secrets=(SECRET,), tolerance: int = 300) -> None:
    webhook_signature_verify(payload=body, header=header, secrets=list(secrets), tolerance_seconds=tolerance)


def reason(body: bytes, header: str | None, **kwargs) -> str:
    with pytest.raises(WebhookSignatureInvalid) as caught:
        verify(body, header, **kwargs)
    return caught.value.reason


def test_a_body_signed_with_our_secret_verifies():
    verify(BODY, signed())


def test_every_listed_secret_verifies_while_it_is_listed():
    old, new = "whsec_old", "whsec_new"

    verify(BODY, signed(secret=old), secrets=[new, old])
    verify(BODY, signed(secret=new), secrets=[new, old])

    assert reason(BODY, signed(secret=old), secrets=[new]) == SIGNATURE_MISMATCH


def test_a_header_with_a_signature_per_secret_verifies_under_either():
    # Stripe signs with both secrets during a rotation: one header, two v1 signatures.
    both = f"{signed(secret='whsec_a')},v1={signed(secret='whsec_b').split('v1=')[1]}"

    verify(BODY, both, secrets=["whsec_b"])


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        (BODY, None, SIGNATURE_MISSING),
        (BODY, "", SIGNATURE_MISSING),
        (BODY, "v1=abc", SIGNATURE_MALFORMED),
        (BODY, "t=123", SIGNATURE_MALFORMED),
        (BODY, "t=abc,v1=abc", SIGNATURE_MALFORMED),
        (BODY, "garbage", SIGNATURE_MALFORMED),
        # Headers signed when the test runs, not when it is collected: a long suite outlasts the tolerance.
        (BODY.replace(b"succeeded", b"canceled"), lambda: signed(), SIGNATURE_MISMATCH),
        (json.dumps(json.loads(BODY)).encode(), lambda: signed(), SIGNATURE_MISMATCH),  # same JSON, other bytes
        (BODY, lambda: signed(secret="whsec_someone_else"), SIGNATURE_MISMATCH),
        (BODY, lambda: signed(at=int(time.time()) - 301), TIMESTAMP_OUTSIDE_TOLERANCE),
        (b"\xff\xfe not text", "t=1,v1=abc", PAYLOAD_NOT_UTF8),
    ],
    ids=[
        "unsigned",
        "empty-header",
        "no-timestamp",
        "no-signature",
        "bad-timestamp",
        "garbage",
        "tampered",
        "re-serialised",
        "wrong-secret",
        "expired",
        "not-utf8",
    ],
)
def test_each_unverifiable_delivery_is_refused_with_its_reason(body, header, expected):
    assert reason(body, header() if callable(header) else header) == expected


def test_no_configured_secret_refuses_everything_and_says_it_is_ours_to_fix():
    assert reason(BODY, signed(), secrets=["", " "]) == NO_SECRET_CONFIGURED


def test_a_payment_intent_snapshot_reads_like_a_fetched_intent():
    obj = {
        "id": "pi_1",
        "object": "payment_intent",
        "status": "requires_payment_method",
        "amount": 2000,
        "currency": "eur",
        "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds", "message": "No."},
        "metadata": {"payment_id": "pay_1"},
    }

    result = intent_result_from_object(obj)

    assert (result.id, result.failure_code, result.metadata) == ("pi_1", "insufficient_funds", {"payment_id": "pay_1"})


@pytest.mark.parametrize(
    "obj", [{"object": "refund", "id": "re_1"}, {"object": "payment_intent", "id": "pi_1"}, "pi_1", None]
)
def test_a_snapshot_that_is_not_a_whole_payment_intent_is_refused(obj):
    with pytest.raises(ValueError):  # noqa: PT011 - the reader's one error
        intent_result_from_object(obj)


def test_a_refund_snapshot_reads_like_a_fetched_refund():
    obj = {"id": "re_1", "object": "refund", "status": "failed", "amount": 500, "failure_reason": "lost_or_stolen_card"}

    result = refund_result_from_object(obj)

    assert (result.id, result.status, result.failure_reason) == ("re_1", "failed", "lost_or_stolen_card")
