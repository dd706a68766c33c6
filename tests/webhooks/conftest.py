"""Signed provider events for the webhook tests: built as Stripe sends them, signed with the SDK's scheme."""

from __future__ import annotations

import itertools
import json
import time

import pytest
import stripe
from django.conf import settings
from django.utils import timezone

from outbox.models import OutboxMessage
from outbox.services import outbox_message_process
from tests.pii import PLANTED
from webhooks import topics
from webhooks.services import webhook_event_process

URL = "/webhooks/stripe"
_ids = itertools.count(1)


def event(type: str, obj: dict, *, id: str | None = None, api_version: str | None = "pinned", **fields) -> dict:
    """A Stripe event around `obj`, in our pinned API version unless told otherwise (None: no version)."""
    return {
        "id": id or f"evt_test_{next(_ids)}_{time.time_ns()}",
        "object": "event",
        "api_version": settings.STRIPE_API_VERSION if api_version == "pinned" else api_version,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
        **fields,
    }


def intent_object(intent_id: str, status: str, *, payment_id: str | None, amount: int = 2000, **fields) -> dict:
    received = amount if status == "succeeded" else 0
    capturable = amount if status == "requires_capture" else 0
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": capturable,
        "amount_received": received,
        "currency": "eur",
        "status": status,
        "metadata": {"payment_id": payment_id} if payment_id else {},
        "last_payment_error": None,
        "next_action": None,
        # What a real intent carries about the customer, planted for the suite's log scan (tests/pii.py).
        "description": PLANTED["description"],
        "receipt_email": PLANTED["email"],
        "shipping": {"name": PLANTED["name"], "phone": None, "address": {"line1": PLANTED["customer_reference"]}},
        **fields,
    }


def body_of(evt: dict) -> bytes:
    return json.dumps(evt, indent=2).encode()  # as Stripe (and the sandbox) lay it out


def signature(body: bytes, secret: str | None = None, at: int | None = None) -> str:
    secret = secret or settings.STRIPE_WEBHOOK_SECRET.split(",")[0]
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=at)


def post(client, body: bytes, header: str | None = "sign", **extra):
    headers = {} if header is None else {"HTTP_STRIPE_SIGNATURE": signature(body) if header == "sign" else header}
    return client.post(URL, data=body, content_type="application/json", **headers, **extra)


def deliver(client, evt: dict):
    """Post an event signed with our secret, as the provider would; assert it was accepted."""
    response = post(client, body_of(evt))
    assert response.status_code == 200, response.content
    return response


def process_pending(*, gateway=None, guards=None, now=None) -> list[str]:
    """Run every due webhook outbox message once, as the worker would; return what each came to."""
    outcomes = []
    messages = OutboxMessage.objects.filter(
        topic=topics.WEBHOOK_EVENT_RECEIVED, status=OutboxMessage.Status.DUE
    ).order_by("id")
    for message in messages:
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=OutboxMessage.Status.HANDED_OUT, attempts=message.attempts + 1
        )
        outcomes.append(
            outbox_message_process(
                message_id=message.pk,
                work=lambda m=message: webhook_event_process(
                    webhook_event_id=m.payload["webhook_event_id"],
                    now=now or timezone.now(),
                    gateway=gateway,
                    guards=guards,
                ),
            )
        )
    return outcomes


@pytest.fixture
def no_consumer_raises(settings):
    """Let a failing consumer be recorded and retried as in production, instead of failing the test."""
    settings.OUTBOX_CONSUMER_RAISES = False
