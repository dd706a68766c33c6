"""The missed-webhooks backfill: the provider's event list read back to the cursor and fed through the
one intake, against the fake gateway (paging, bounds) and the sandbox (dropped deliveries, lost answers)."""

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from outbox.models import OutboxMessage
from payments.gateway.base import EventPage
from payments.gateway.stripe import StripeGateway
from payments.models import JobRun, Payment, PaymentEvent
from payments.services.dispatch import payment_submit
from payments.services.janitor import janitor_run
from tests.factories import PaymentFactory
from tests.webhooks.conftest import event, process_pending
from webhooks import topics
from webhooks.handlers import HANDLERS, WEBHOOK_EVENT_TYPES
from webhooks.models import WebhookBackfillCursor, WebhookEvent
from webhooks.reconciliation import webhook_events_backfill
from webhooks.tasks import webhook_events_backfill_task

pytestmark = pytest.mark.django_db
S = Payment.Status
INTENTS = "/v1/payment_intents"


@pytest.fixture(autouse=True)
def no_delivery_delay(settings):
    settings.WEBHOOK_BACKFILL_DELAY_SECONDS = 0


def sandbox_gateway(stripe_sandbox) -> StripeGateway:
    return StripeGateway(
        api_key="sk_test_backfill",
        api_base=stripe_sandbox.url,
        api_version=settings.STRIPE_API_VERSION,
        timeout_seconds=2.0,
        connect_timeout_seconds=1.0,
    )


def listed(*ids: str, ago: int = 120, has_more: bool = False, type: str = "charge.succeeded") -> EventPage:
    """A page of the provider's events, newest first, created `ago` seconds back and older."""
    now = int(time.time())
    return EventPage(
        events=[
            event(type, {"id": f"ch_{i}", "object": "charge"}, id=i, created=now - ago - n) for n, i in enumerate(ids)
        ],
        has_more=has_more,
    )


def backfill(gateway, guards, **kwargs):
    return webhook_events_backfill(now=timezone.now(), gateway=gateway, guards=guards, **kwargs)


def test_backfill_stores_each_listed_event_once_with_source_backfill_and_its_outbox_row(gateway, guards):
    gateway.script("events_list", listed("evt_2", "evt_1", type="charge.refunded"))  # a type a handler acts on

    counts = backfill(gateway, guards)

    rows = WebhookEvent.objects.order_by("provider_event_id")
    assert [(row.provider_event_id, row.source, row.status) for row in rows] == [
        ("evt_1", "backfill", "RECEIVED"),
        ("evt_2", "backfill", "RECEIVED"),
    ]
    assert OutboxMessage.objects.filter(topic=topics.WEBHOOK_EVENT_RECEIVED).count() == 2
    assert counts["backfilled"] == 2 and counts["pages"] == 1
    assert WebhookBackfillCursor.objects.get().last_event_id == "evt_2"


def test_an_event_the_endpoint_already_stored_is_left_as_it_was(gateway, guards):
    gateway.script("events_list", listed("evt_1", type="charge.refunded"))
    backfill(gateway, guards)
    WebhookEvent.objects.update(source=WebhookEvent.Source.WEBHOOK)
    WebhookBackfillCursor.objects.all().delete()

    counts = backfill(gateway, guards)

    assert WebhookEvent.objects.get().source == WebhookEvent.Source.WEBHOOK
    assert OutboxMessage.objects.count() == 1
    assert counts["already_stored"] == 1 and "backfilled" not in counts


def test_backfill_pages_back_only_to_the_last_event_it_saw(gateway, guards):
    gateway.script("events_list", listed("evt_2", "evt_1"))
    backfill(gateway, guards)
    gateway.scripts["events_list"] = [listed("evt_4", "evt_3", "evt_2", "evt_1", ago=60)]

    counts = backfill(gateway, guards)

    assert counts["backfilled"] == 2 and "already_stored" not in counts
    assert [call["starting_after"] for call in gateway.called("events_list")] == [None, None]
    assert WebhookBackfillCursor.objects.get().last_event_id == "evt_4"


def test_a_walk_longer_than_the_per_run_bound_resumes_where_it_stopped(gateway, guards, settings):
    settings.WEBHOOK_BACKFILL_MAX_PAGES = 1
    gateway.script("events_list", listed("evt_4", "evt_3", has_more=True), listed("evt_2", "evt_1", ago=122))

    first = backfill(gateway, guards)
    cursor = WebhookBackfillCursor.objects.get()
    second = backfill(gateway, guards)

    assert (first["backfilled"], cursor.last_event_id, cursor.walk_head_event_id, cursor.walk_after_event_id) == (
        2,
        "",
        "evt_4",
        "evt_3",
    )
    assert [call["starting_after"] for call in gateway.called("events_list")] == [None, "evt_3"]
    cursor.refresh_from_db()
    assert second["backfilled"] == 2 and (cursor.last_event_id, cursor.walk_after_event_id) == ("evt_4", "")
    assert WebhookEvent.objects.count() == 4


def test_an_event_younger_than_the_delivery_delay_is_left_for_the_next_run(gateway, guards, settings):
    settings.WEBHOOK_BACKFILL_DELAY_SECONDS = 60
    young = listed("evt_young", ago=0)
    old = listed("evt_old")
    gateway.script("events_list", EventPage(events=young.events + old.events, has_more=False))

    counts = backfill(gateway, guards)

    assert list(WebhookEvent.objects.values_list("provider_event_id", flat=True)) == ["evt_old"]
    assert counts["too_young"] == 1
    assert WebhookBackfillCursor.objects.get().last_event_id == "evt_old"


def test_the_backfill_task_records_its_run(gateway, guards, monkeypatch):
    monkeypatch.setattr("webhooks.reconciliation._gateway", lambda _: gateway)
    monkeypatch.setattr("webhooks.reconciliation.provider_call", lambda operation, call, guards=None: call())
    gateway.script("events_list", listed("evt_1"))

    webhook_events_backfill_task.apply(kwargs={}).get()

    run = JobRun.objects.get(name="webhooks.webhook_events_backfill")
    assert run.outcome == JobRun.Outcome.OK and run.counts["backfilled"] == 1


def test_backfill_asks_the_provider_only_for_the_types_a_handler_acts_on(gateway, guards):
    gateway.script("events_list", listed("evt_1", type="charge.refunded"))

    backfill(gateway, guards)

    (call,) = gateway.called("events_list")
    assert call["types"] == WEBHOOK_EVENT_TYPES


def test_an_unhandled_type_the_provider_lists_anyway_is_still_stored_ignored(gateway, guards):
    gateway.script("events_list", listed("evt_1", type="charge.succeeded"))  # a provider that ignored types[]

    backfill(gateway, guards)

    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED


def test_the_backfill_is_on_the_beat_schedule():
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} >= {"webhooks.webhook_events_backfill"}


# --- with the sandbox -----------------------------------------------------------------------------
def test_a_missed_event_is_backfilled_and_applied_once(stripe_sandbox, stripe_client, guards):
    sandbox = sandbox_gateway(stripe_sandbox)
    payment = PaymentFactory(amount=2000, capture_method=Payment.CaptureMethod.MANUAL)
    payment_submit(payment_id=payment.public_id, now=timezone.now(), gateway=sandbox, guards=guards)
    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_CAPTURE
    # Captured at the provider (e.g. in its dashboard), and every event of it dropped on the way to us.
    stripe_sandbox.set_faults({"kind": "webhook_drop", "count": 10, "path": f"{INTENTS}/.*/capture"})
    stripe_client.v1.payment_intents.capture(payment.provider_payment_id)
    dropped = stripe_client.v1.events.list(params={"delivery_success": False}).data
    assert "payment_intent.succeeded" in {e.type for e in dropped}

    counts = backfill(sandbox, guards)
    process_pending(gateway=sandbox, guards=guards)
    again = backfill(sandbox, guards)
    process_pending(gateway=sandbox, guards=guards)

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    succeeded = WebhookEvent.objects.get(type="payment_intent.succeeded")
    assert (succeeded.source, succeeded.status, succeeded.outcome) == ("backfill", "PROCESSED", "applied")
    (entry,) = payment.events.filter(type="payment.succeeded")
    assert (entry.source, entry.data.get("event_id")) == (
        PaymentEvent.Source.RECONCILIATION,  # a backfilled event says so on the timeline
        succeeded.provider_event_id,
    )
    assert counts["backfilled"] >= 1 and "backfilled" not in again
    listed = stripe_client.v1.events.list(params={"limit": 100}).data
    assert {e.type for e in listed} - set(HANDLERS)  # created, charge.succeeded: listed, never asked for
    assert sorted(WebhookEvent.objects.values_list("provider_event_id", flat=True)) == sorted(
        e.id for e in listed if e.type in HANDLERS
    )


def test_a_payment_whose_response_and_webhook_were_both_lost_settles_through_the_janitor_once(
    stripe_sandbox, webhook_receiver, guards
):
    sandbox = sandbox_gateway(stripe_sandbox)
    stripe_sandbox.register_webhook(webhook_receiver.url, secret="whsec_elsewhere")
    payment = PaymentFactory(amount=2000, payment_method="pm_card_visa")
    stripe_sandbox.set_faults(
        {"kind": "timeout_after_commit", "count": 1, "ms": 300, "path": INTENTS, "method": "POST"},
        {"kind": "webhook_drop", "count": 10, "path": INTENTS, "method": "POST"},
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 - RetryLater: the answer never came
        payment_submit(payment_id=payment.public_id, now=timezone.now(), gateway=sandbox, guards=guards)
    Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now() - timedelta(minutes=11))

    janitor_run(now=timezone.now(), gateway=sandbox, guards=guards)
    backfill(sandbox, guards)
    process_pending(gateway=sandbox, guards=guards)

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED and payment.provider_payment_id
    assert webhook_receiver.deliveries == []
    (entry,) = payment.events.filter(type="payment.succeeded")
    assert entry.source == PaymentEvent.Source.RECONCILIATION
    succeeded = WebhookEvent.objects.get(type="payment_intent.succeeded", payment_public_id=payment.public_id)
    assert (succeeded.source, succeeded.status, succeeded.outcome) == ("backfill", "PROCESSED", "no_change")
    (ledger,) = stripe_sandbox.ledger()["payment_intents"].values()
    assert ledger["charged"] == 1


def test_a_walk_left_on_an_unhandled_event_before_types_were_asked_for_resumes_past_it(
    stripe_sandbox, stripe_client, guards
):
    older, newer = (
        stripe_client.v1.payment_intents.create(
            params={"amount": amount, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
        )
        for amount in (100, 200)
    )
    listed = stripe_client.v1.events.list(params={"limit": 100}).data  # newest first, every type
    (left_on,) = [e for e in listed if e.type == "payment_intent.created" and e.data.object.id == newer.id]
    WebhookBackfillCursor.objects.create(
        provider="stripe",
        walk_head_event_id=listed[0].id,
        walk_head_created_at=timezone.now(),
        walk_after_event_id=left_on.id,  # where an unfiltered walk stopped
    )

    counts = backfill(sandbox_gateway(stripe_sandbox), guards)

    (stored,) = WebhookEvent.objects.all()
    assert (stored.type, stored.payload["data"]["object"]["id"]) == ("payment_intent.succeeded", older.id)
    assert counts["backfilled"] == 1 and counts["cursor_advanced"] == 1
    assert WebhookBackfillCursor.objects.get().walk_after_event_id == ""


@pytest.mark.django_db(transaction=True)
def test_two_backfill_runs_at_once_store_each_event_once(stripe_sandbox, stripe_client, guards):
    for amount in (100, 200, 300):  # confirmed: each also sends payment_intent.succeeded, which a handler acts on
        stripe_client.v1.payment_intents.create(
            params={"amount": amount, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
        )
    listed = stripe_client.v1.events.list(params={"limit": 100}).data
    listed_ids = {e.id for e in listed}
    handled_ids = {e.id for e in listed if e.type in HANDLERS}
    together = threading.Barrier(2)
    errors, results = [], []

    class TogetherGateway(StripeGateway):
        def events_list(self, **kwargs):
            page = super().events_list(**kwargs)
            together.wait(timeout=10)  # both runs have read the same page before either stores anything
            return page

    def beat():
        try:
            gateway = TogetherGateway(
                api_key="sk_test_backfill",
                api_base=stripe_sandbox.url,
                api_version=settings.STRIPE_API_VERSION,
                timeout_seconds=2.0,
                connect_timeout_seconds=1.0,
            )
            results.append(backfill(gateway, guards))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert set(WebhookEvent.objects.values_list("provider_event_id", flat=True)) == handled_ids
    assert len(handled_ids) == 3 and len(listed_ids) > 3  # the unhandled types are not asked for
    assert OutboxMessage.objects.filter(topic=topics.WEBHOOK_EVENT_RECEIVED).count() == len(handled_ids)
    assert sum(r.get("backfilled", 0) for r in results) == len(handled_ids)
    assert sorted(r["cursor_advanced"] for r in results) == [0, 1]
    newest = stripe_client.v1.events.list(params={"limit": 1, "types": list(WEBHOOK_EVENT_TYPES)}).data[0].id
    assert WebhookBackfillCursor.objects.get().last_event_id == newest
