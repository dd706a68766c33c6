import pytest
from django.db import transaction
from django.utils import timezone

from outbox.errors import OutboxOutsideTransaction
from outbox.models import OutboxMessage
from outbox.services import outbox_message_enqueue, outbox_message_insert

pytestmark = pytest.mark.django_db(transaction=True)


def test_enqueue_refuses_to_run_outside_a_transaction():
    with pytest.raises(OutboxOutsideTransaction):
        outbox_message_enqueue(topic="payments.payment.create_requested", payload={"payment_id": "pay_1"})

    assert not OutboxMessage.objects.exists()


def test_enqueue_writes_an_unsent_due_message_inside_a_transaction():
    with transaction.atomic():
        message = outbox_message_enqueue(topic="payments.payment.create_requested", payload={"payment_id": "pay_1"})

    stored = OutboxMessage.objects.get()
    assert stored.pk == message.pk
    assert stored.status == OutboxMessage.Status.DUE and stored.attempts == 0
    assert stored.available_at is not None


def test_a_rolled_back_transaction_takes_its_outbox_message_with_it():
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_message_enqueue(topic="payments.payment.create_requested", payload={"payment_id": "pay_1"})
        raise RuntimeError("the change failed")

    assert not OutboxMessage.objects.exists()


def test_insert_refuses_to_run_outside_a_transaction():
    with pytest.raises(OutboxOutsideTransaction):
        outbox_message_insert(topic="webhooks.event.received", payload={"webhook_event_id": 1}, now=timezone.now())

    assert not OutboxMessage.objects.exists()


def test_insert_writes_the_same_due_message_as_enqueue_and_returns_its_id():
    now = timezone.now()

    with transaction.atomic():
        message_id = outbox_message_insert(topic="webhooks.event.received", payload={"webhook_event_id": 7}, now=now)
        enqueued = outbox_message_enqueue(topic="webhooks.event.received", payload={"webhook_event_id": 7})

    inserted = OutboxMessage.objects.get(pk=message_id)
    assert (inserted.topic, inserted.payload, inserted.created_at, inserted.available_at) == (
        "webhooks.event.received",
        {"webhook_event_id": 7},
        now,
        now,
    )
    same = ["status", "attempts", "handed_out_at", "started_at", "done_at", "last_error_type", "last_error"]
    enqueued.refresh_from_db()
    assert {name: getattr(inserted, name) for name in same} == {name: getattr(enqueued, name) for name in same}


def test_a_rolled_back_transaction_takes_its_inserted_outbox_message_with_it():
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_message_insert(topic="webhooks.event.received", payload={"webhook_event_id": 1}, now=timezone.now())
        raise RuntimeError("the change failed")

    assert not OutboxMessage.objects.exists()
