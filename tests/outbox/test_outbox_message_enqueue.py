import pytest
from django.db import transaction

from outbox.errors import OutboxOutsideTransaction
from outbox.models import OutboxMessage
from outbox.services import outbox_message_enqueue

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
