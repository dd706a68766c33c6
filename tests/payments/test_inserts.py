"""rows_insert: new rows in one statement, written exactly as save() writes them, all or none."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict

from outbox.models import OutboxMessage
from outbox.services import outbox_message_build
from payments.models import Payment, PaymentEvent
from payments.services.events import payment_event_build
from payments.services.inserts import rows_insert
from tests.factories import ApiClientFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def new_rows(client, *, amount: int = 2000, metadata: dict | None = None):
    payment = Payment(
        client=client, amount=amount, currency="eur", payment_method="pm_card_visa", metadata=metadata or {}
    )
    event = payment_event_build(
        payment=payment,
        type="payment.created",
        source="api",
        actor="api_key:abc",
        idempotency_key="created",
        now=NOW,
        data={"amount": amount, "currency": "eur"},
    )
    message = outbox_message_build(topic="payments.payment.create_requested", payload={"payment_id": payment.public_id})
    return payment, event, message


def test_a_payment_its_event_and_an_outbox_message_go_in_with_one_statement(django_assert_num_queries):
    payment, event, message = new_rows(ApiClientFactory(), metadata={"order": "42"})

    with django_assert_num_queries(1):
        rows_insert(payment, event, message)

    assert Payment.objects.get(pk=payment.pk).metadata == {"order": "42"}
    assert PaymentEvent.objects.get(pk=event.pk).payment_id == payment.pk == event.payment_id
    assert OutboxMessage.objects.get(pk=message.pk).payload == {"payment_id": payment.public_id}
    assert not any(row._state.adding for row in (payment, event, message))
    assert payment.created_at is not None and payment.updated_at is not None  # auto_now(_add), as save() sets


def test_rows_are_stored_exactly_as_save_stores_them():
    client = ApiClientFactory()
    inserted = new_rows(client, metadata={"order": "42", "note": "é\u2028"})
    saved = new_rows(client, metadata={"order": "42", "note": "é\u2028"})
    rows_insert(*inserted)
    for row in saved:
        row.save()
    differ = {"id", "public_id", "payment", "payload", "created_at", "updated_at", "available_at"}

    for mine, theirs in zip(inserted, saved, strict=True):
        reread_mine = model_to_dict(type(mine).objects.get(pk=mine.pk))
        reread_theirs = model_to_dict(type(theirs).objects.get(pk=theirs.pk))
        assert {k: v for k, v in reread_mine.items() if k not in differ} == {
            k: v for k, v in reread_theirs.items() if k not in differ
        }


def test_a_row_the_database_refuses_leaves_none_of_them():
    payment, event, message = new_rows(ApiClientFactory(), amount=0)  # payment_amount_bounded refuses it

    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(payment, event, message)

    assert not Payment.objects.exists()
    assert not PaymentEvent.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_a_failure_in_the_create_rolls_back_the_idempotency_key_so_the_retry_runs(api, monkeypatch):
    from payments.services import payments as services

    def refused(*rows):
        raise IntegrityError("refused by the database")

    monkeypatch.setattr(services, "rows_insert", refused)
    body = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa"}
    api.raise_request_exception = False
    failed = api.post("/api/v1/payments", body, format="json", HTTP_IDEMPOTENCY_KEY="order-7")
    monkeypatch.undo()

    retried = api.post("/api/v1/payments", body, format="json", HTTP_IDEMPOTENCY_KEY="order-7")

    assert failed.status_code == 500
    assert retried.status_code == 202
    assert "Idempotent-Replayed" not in retried.headers
    assert Payment.objects.count() == OutboxMessage.objects.count() == 1
