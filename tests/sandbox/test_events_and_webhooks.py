"""Events, and webhooks signed exactly as Stripe signs them, verified with the SDK's own code."""

import argparse
import json
import time

import pytest
import stripe
from django.conf import settings

from sandbox import cli
from tests.fixtures.sandbox import make_stripe_client

SECRET = "whsec_test_sandbox_secret"
VISA = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}


def wait_until(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return result


def test_every_state_change_creates_an_event_listed_newest_first(stripe_client):
    intent = stripe_client.v1.payment_intents.create(params=VISA, options={"idempotency_key": "ev-1"})

    events = stripe_client.v1.events.list(params={"limit": 10})

    assert [e.type for e in events.data] == ["payment_intent.succeeded", "charge.succeeded", "payment_intent.created"]
    latest = events.data[0]
    assert latest.data.object.id == intent.id
    assert latest.data.object.status == "succeeded"
    assert latest.api_version == settings.STRIPE_API_VERSION
    assert latest.request.idempotency_key == "ev-1"
    assert stripe_client.v1.events.retrieve(latest.id).id == latest.id


def test_events_filter_by_type_types_and_created(stripe_client):
    stripe_client.v1.payment_intents.create(params=VISA)
    now = int(time.time())

    succeeded = stripe_client.v1.events.list(params={"type": "payment_intent.succeeded"})
    wildcard = stripe_client.v1.events.list(params={"type": "charge.*"})
    several = stripe_client.v1.events.list(params={"types": ["charge.succeeded", "payment_intent.created"]})
    future = stripe_client.v1.events.list(params={"created": {"gt": now + 60}})

    assert [e.type for e in succeeded.data] == ["payment_intent.succeeded"]
    assert [e.type for e in wildcard.data] == ["charge.succeeded"]
    assert {e.type for e in several.data} == {"charge.succeeded", "payment_intent.created"}
    assert future.data == []


def test_a_filtered_list_pages_on_from_an_event_the_filter_leaves_out(stripe_client):
    first = stripe_client.v1.payment_intents.create(params=VISA)
    second = stripe_client.v1.payment_intents.create(params=VISA)
    newest_first = stripe_client.v1.events.list(params={"limit": 100}).data
    (cursor,) = [e for e in newest_first if e.type == "payment_intent.created" and e.data.object.id == second.id]

    page = stripe_client.v1.events.list(params={"types": ["payment_intent.succeeded"], "starting_after": cursor.id})

    assert [e.data.object.id for e in page.data] == [first.id]  # older than the cursor only, as Stripe pages


def test_webhooks_are_signed_so_the_sdk_verifies_them(stripe_client, stripe_sandbox, webhook_receiver):
    stripe_sandbox.register_webhook(webhook_receiver.url, secret=SECRET)

    intent = stripe_client.v1.payment_intents.create(params=VISA)

    deliveries = webhook_receiver.wait_for(3)
    for delivery in deliveries:
        event = stripe.Webhook.construct_event(delivery.body, delivery.headers["Stripe-Signature"], SECRET)
        assert event.data.object.id in (intent.id, intent.latest_charge)
    assert sorted(webhook_receiver.types()) == [
        "charge.succeeded",
        "payment_intent.created",
        "payment_intent.succeeded",
    ]


def test_a_tampered_webhook_fails_verification(stripe_client, stripe_sandbox, webhook_receiver):
    stripe_sandbox.register_webhook(webhook_receiver.url, secret=SECRET)
    stripe_client.v1.payment_intents.create(params={"amount": 100, "currency": "eur"})
    delivery = webhook_receiver.wait_for(1)[0]
    tampered = delivery.body.replace('"amount": 100', '"amount": 1')

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, delivery.headers["Stripe-Signature"], SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, delivery.headers["Stripe-Signature"], "whsec_wrong")


def test_failed_deliveries_are_retried_and_delivery_success_is_recorded(
    stripe_client, stripe_sandbox, webhook_receiver
):
    stripe_sandbox.register_webhook(webhook_receiver.url, secret=SECRET)
    webhook_receiver.fail_next = 2

    stripe_client.v1.payment_intents.create(params={"amount": 100, "currency": "eur"})

    wait_until(lambda: stripe_client.v1.events.list(params={"delivery_success": False}).data)
    webhook_receiver.wait_for(1)
    delivered = wait_until(lambda: stripe_client.v1.events.list(params={"delivery_success": True}).data)
    assert delivered[0].type == "payment_intent.created"
    assert delivered[0].pending_webhooks == 0
    assert stripe_client.v1.events.list(params={"delivery_success": False}).data == []


def test_webhook_endpoints_can_be_created_through_the_api_with_a_secret(stripe_client, webhook_receiver):
    endpoint = stripe_client.v1.webhook_endpoints.create(
        params={"url": webhook_receiver.url, "enabled_events": ["payment_intent.succeeded"]}
    )

    stripe_client.v1.payment_intents.create(params=VISA)

    assert endpoint.secret.startswith("whsec_")
    delivery = webhook_receiver.wait_for(1)[0]
    assert stripe.Webhook.construct_event(delivery.body, delivery.headers["Stripe-Signature"], endpoint.secret)
    time.sleep(0.2)
    assert webhook_receiver.types() == ["payment_intent.succeeded"]
    assert json.loads(delivery.body)["object"] == "event"


def test_an_endpoint_registered_with_webhook_events_receives_only_those_types(webhook_receiver):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser, api_version=settings.STRIPE_API_VERSION)
    options = parser.parse_args(
        ["--port", "0", "--webhook-url", webhook_receiver.url, "--webhook-secret", SECRET,
         "--webhook-events", "payment_intent.succeeded, charge.refunded"]
    )  # fmt: skip
    server = cli.build(options).start()
    try:
        client = make_stripe_client(server.url)
        intent = client.v1.payment_intents.create(params=VISA)
        client.v1.refunds.create(params={"payment_intent": intent.id})
        webhook_receiver.wait_for(2)
        time.sleep(0.2)  # room for a delivery of another type to arrive, were one sent
        listed = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
        (endpoint,) = client.v1.webhook_endpoints.list().data
    finally:
        server.stop()

    assert sorted(webhook_receiver.types()) == ["charge.refunded", "payment_intent.succeeded"]
    assert {"payment_intent.created", "charge.succeeded", "refund.created"} <= set(listed)  # made, never sent
    assert endpoint.enabled_events == ["payment_intent.succeeded", "charge.refunded"]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, ["*"]),
        (["--webhook-events", "a.b,c.d"], {}, ["a.b", "c.d"]),
        ([], {"SANDBOX_WEBHOOK_EVENTS": "a.b , c.d"}, ["a.b", "c.d"]),
        (["--webhook-events", ","], {}, ["*"]),
    ],
    ids=["default-every-type", "flag", "environment", "empty"],
)
def test_webhook_events_come_from_the_flag_or_the_environment_and_default_to_every_type(
    monkeypatch, args, env, expected
):
    monkeypatch.delenv("SANDBOX_WEBHOOK_EVENTS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser, api_version="2020-08-27")

    assert parser.parse_args(args).webhook_events == expected
