"""
Webhooks through the running system: the sandbox signs and posts its events, through its faults,
to our endpoint served by a live server; the real relay and Celery worker process them.
"""

import itertools

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from payments.gateway.stripe import StripeGateway
from payments.models import Payment
from payments.services.dispatch import WORKER
from payments.services.sync import payment_apply_intent
from tests.factories import PaymentFactory
from tests.fixtures.live import wait_until
from tests.integration.test_money_moves import INTENTS, assert_charged_once, create, settled
from tests.webhooks.conftest import URL, process_pending
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)
SETTLED = {WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED}


@pytest.fixture
def webhooks_to_us(live_server, stripe_sandbox):
    """The sandbox posts every event to our endpoint on the live server, signed with our secret."""
    return stripe_sandbox.register_webhook(f"{live_server.url}{URL}", secret=settings.STRIPE_WEBHOOK_SECRET)


def events_of(payment: Payment, *, count: int, timeout: float = 30) -> list[WebhookEvent]:
    """Wait until `count` events of the payment's intent are settled; return them, oldest first."""

    def settled_events():
        rows = list(WebhookEvent.objects.filter(payment_public_id=payment.public_id).order_by("id"))
        return rows if len(rows) >= count and all(row.status in SETTLED for row in rows) else None

    return wait_until(settled_events, timeout=timeout, what=f"{count} settled webhook events of {payment.public_id}")


def by_type(rows: list[WebhookEvent]) -> dict[str, WebhookEvent]:
    return {row.type: row for row in rows}


def duplicates() -> float:
    labels = {"provider": "stripe", "outcome": "duplicate", "reason": ""}
    return REGISTRY.get_sample_value("webhook_intake_total", labels) or 0


def test_a_checkouts_webhooks_are_verified_stored_and_processed_after_the_worker_applied_them(
    api, live_stack, stripe_sandbox, webhooks_to_us
):
    payment = settled(create(api))

    rows = by_type(events_of(payment, count=3))

    assert set(rows) == {"payment_intent.created", "charge.succeeded", "payment_intent.succeeded"}
    assert (rows["payment_intent.succeeded"].status, rows["payment_intent.succeeded"].outcome) == (
        "PROCESSED",
        "no_change",
    )
    assert rows["charge.succeeded"].outcome == "unhandled_type"
    assert payment.events.filter(type="payment.succeeded").count() == 1


def test_an_async_payment_is_settled_by_its_webhook_with_source_webhook_and_the_event_id(
    api, live_stack, stripe_sandbox, webhooks_to_us
):
    # Only the webhook can settle it: the worker's own follow-up reads of the intent all fail.
    stripe_sandbox.set_faults({"kind": "http_503", "path": r"^/v1/payment_intents/pi_\w+$", "method": "GET"})

    payment = settled(create(api, payment_method="pm_sandbox_async"))

    rows = by_type(events_of(payment, count=4))
    assert payment.status == Payment.Status.SUCCEEDED
    entry = payment.events.get(type="payment.succeeded")
    succeeded = rows["payment_intent.succeeded"]
    assert (entry.source, entry.actor, entry.data["event_id"]) == ("webhook", "stripe", succeeded.provider_event_id)
    assert succeeded.outcome == "applied"
    assert_charged_once(stripe_sandbox, payment)


def test_webhook_duplicate_each_event_twice_is_stored_and_applied_once(api, live_stack, stripe_sandbox, webhooks_to_us):
    stripe_sandbox.set_faults({"kind": "webhook_duplicate", "path": INTENTS, "method": "POST"})
    before = duplicates()

    payment = settled(create(api, payment_method="pm_sandbox_async"))
    rows = events_of(payment, count=2)

    wait_until(lambda: duplicates() - before >= 2, timeout=15, what="the second copies to arrive")
    assert len({row.provider_event_id for row in rows}) == len(rows)
    assert payment.events.filter(type="payment.succeeded").count() == 1
    assert_charged_once(stripe_sandbox, payment)


def test_webhook_reorder_a_late_older_event_never_moves_the_payment_back(
    api, live_stack, stripe_sandbox, webhooks_to_us
):
    # The create's events (created, processing) are held back until the async settlement's overtake them.
    stripe_sandbox.set_faults({"kind": "webhook_reorder", "ms": 1500, "path": INTENTS, "method": "POST"})

    payment = settled(create(api, payment_method="pm_sandbox_async"))
    rows = by_type(events_of(payment, count=4))

    assert rows["payment_intent.processing"].received_at > rows["payment_intent.succeeded"].received_at
    assert rows["payment_intent.processing"].outcome == "no_change"
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUCCEEDED
    statuses = list(payment.events.order_by("id").values_list("to_status", flat=True))
    assert statuses == ["PENDING", "PROCESSING", "SUCCEEDED"]


def test_webhook_delay_late_events_are_still_stored_and_processed(api, live_stack, stripe_sandbox, webhooks_to_us):
    stripe_sandbox.set_faults({"kind": "webhook_delay", "ms": 1500})

    payment = settled(create(api))
    rows = events_of(payment, count=3)

    assert all((row.received_at - row.provider_created_at).total_seconds() >= 1 for row in rows)
    assert by_type(rows)["payment_intent.succeeded"].outcome == "no_change"


def test_webhook_before_response_a_webhook_before_our_commit_is_retried_then_applied(
    api, live_stack, stripe_sandbox, webhooks_to_us
):
    # The events are delivered before the create's answer, and the answer is lost: our worker commits
    # the intent only after its retry, so the webhook finds the payment not yet bound to it.
    stripe_sandbox.set_faults(
        {"kind": "webhook_before_response", "count": 1, "path": INTENTS, "method": "POST"},
        {"kind": "timeout_after_commit", "count": 1, "ms": 1500, "path": INTENTS, "method": "POST"},
    )

    payment = settled(create(api))
    succeeded = by_type(events_of(payment, count=3))["payment_intent.succeeded"]

    assert succeeded.status == "PROCESSED" and succeeded.attempts >= 2
    assert "not bound to intent" in succeeded.last_error
    assert payment.status == Payment.Status.SUCCEEDED
    assert_charged_once(stripe_sandbox, payment)


# --- every order of three events -----------------------------------------------------------------------
@pytest.fixture
def recorded_flow(stripe_sandbox, webhook_receiver, transactional_db):
    """A manual-capture async payment at the sandbox: its processing, authorized and succeeded events,
    as the sandbox signed and delivered them (with our secret), and our payment bound to the intent."""
    stripe_sandbox.register_webhook(webhook_receiver.url, secret=settings.STRIPE_WEBHOOK_SECRET)
    gateway = StripeGateway(
        api_key="sk_test_webhooks",
        api_base=stripe_sandbox.url,
        api_version=settings.STRIPE_API_VERSION,
        timeout_seconds=2.0,
    )
    payment = PaymentFactory(amount=2000, capture_method="manual")
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.PROCESSING)
    created = gateway.intent_create_and_confirm(
        payment_id=payment.public_id,
        amount=2000,
        currency="eur",
        payment_method="pm_sandbox_async",
        capture_method="manual",
        description="",
        idempotency_key=f"{payment.public_id}:create",
    )
    payment_apply_intent(payment_id=payment.public_id, intent=created, actor=WORKER, now=timezone.now())  # binds it
    wait_until(lambda: gateway.intent_retrieve(intent_id=created.id).status == "requires_capture", timeout=10)
    gateway.intent_capture(intent_id=created.id, amount=None, idempotency_key=f"{payment.public_id}:capture")
    wanted = ["payment_intent.processing", "payment_intent.amount_capturable_updated", "payment_intent.succeeded"]
    wait_until(lambda: set(wanted) <= set(webhook_receiver.types()), timeout=10, what="the three events")
    deliveries = {d.event["type"]: d for d in webhook_receiver.deliveries if d.event["type"] in wanted}
    return payment, [deliveries[t] for t in wanted]


CANONICAL = [Payment.Status.REQUIRES_CAPTURE, Payment.Status.SUCCEEDED]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=lambda o: "-".join(map(str, o)))
def test_every_order_of_three_events_ends_in_the_same_right_state_and_never_moves_back(recorded_flow, order):
    payment, deliveries = recorded_flow
    client = Client()

    for index in order:  # each posted with the sandbox's own bytes and signature, then processed
        delivery = deliveries[index]
        response = client.post(
            URL,
            data=delivery.body.encode(),
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=delivery.headers["Stripe-Signature"],
        )
        assert response.status_code == 200
        process_pending()

    payment.refresh_from_db()
    assert (payment.status, payment.amount_received, payment.amount_capturable) == (Payment.Status.SUCCEEDED, 2000, 0)
    moved_to = list(payment.events.filter(source="webhook").order_by("id").values_list("to_status", flat=True))
    assert moved_to == [status for status in CANONICAL if status in moved_to]  # forward only, in order
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"PROCESSED"}
