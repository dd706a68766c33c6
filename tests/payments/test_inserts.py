"""rows_insert: new rows in one statement, written exactly as save() writes them, all or none."""

import enum
import json
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.functional import lazy
from psycopg.types.json import Jsonb

from outbox.models import OutboxMessage
from outbox.services import outbox_message_build
from payments.models import Payment, PaymentEvent
from payments.services.events import payment_event_build
from payments.services.inserts import _DJANGO, _insert_fields, _plan, _row_params, rows_insert
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


class Level(enum.IntEnum):
    HIGH = 3


def django_params(row, link=None) -> list:
    """What Django's own path sends for the row: each field's pre_save, then get_db_prep_save."""
    return [
        field.get_db_prep_save(field.pre_save(row, add=True), connection)
        for field in _insert_fields(type(row))
        if field is not link
    ]


def comparable(params: list) -> list:
    """Each parameter as psycopg sends it: its exact type (Int8, not int) and value; JSON as its text."""
    return [
        (Jsonb, (param.dumps or json.dumps)(param.obj)) if isinstance(param, Jsonb) else (type(param), param)
        for param in params
    ]


def assert_params_as_django_sends_them(row, link=None) -> None:
    mine = _row_params(row, _plan(type(row), connection), link, connection)

    assert comparable(mine) == comparable(django_params(row, link))


@pytest.fixture
def frozen_now(monkeypatch):
    """auto_now and auto_now_add read the clock in pre_save: the same instant for both paths."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


def test_the_create_rows_are_sent_as_django_sends_them(frozen_now):
    payment, event, message = new_rows(ApiClientFactory(), metadata={"order": "42", "note": "é\u2028"})

    for row in (payment, event, message):
        assert_params_as_django_sends_them(row)
    assert_params_as_django_sends_them(event, link=PaymentEvent._meta.get_field("payment"))


def test_values_of_every_kind_and_unexpected_types_are_sent_as_django_sends_them(frozen_now):
    client = ApiClientFactory()
    payment = Payment(
        client_id=client.pk,
        amount=Decimal("2000"),  # int() of it, through Django
        amount_capturable=True,  # a bool in an integer column is 1, through Django
        amount_to_capture=None,
        checks=Level.HIGH,  # an IntEnum is sent as a plain int, through Django
        currency=Payment.CaptureMethod.MANUAL,  # a str subclass is itself
        payment_method=lazy(lambda: "pm_lazy", str)(),  # a lazy string is cast, through Django
        customer_reference=42,  # str() of it, through Django
        metadata=[1, "a", {"b": None}],
        next_action="redirect",  # a JSON string, through Django
        succeeded_at=datetime(2026, 11, 25, 13, 0, tzinfo=ZoneInfo("Europe/Paris")),
        canceled_at=datetime(2026, 11, 25, 13, 0),  # naive: made aware (with a warning), through Django
        flagged_at=None,
    )
    saved_payment = Payment.objects.create(client=client, amount=100, currency="eur", payment_method="pm")
    event = payment_event_build(
        payment=saved_payment, type="payment.created", source="api", actor="", idempotency_key="k", now=NOW
    )
    message = OutboxMessage(topic="t", payload=[{"x": 1.5}], available_at=NOW, attempts=0)
    unsaved_parent_event = payment_event_build(
        payment=payment, type="payment.created", source="api", actor="", idempotency_key="k", now=NOW
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for row in (payment, event, message, unsaved_parent_event):
            assert_params_as_django_sends_them(row)


@pytest.mark.parametrize(
    "model",
    [model for model in apps.get_models() if not model._meta.parents and not model._meta.proxy],
    ids=lambda model: model._meta.label,
)
def test_every_model_with_its_defaults_is_sent_as_django_sends_it(model, frozen_now):
    assert_params_as_django_sends_them(model())


def test_the_create_path_values_take_the_fast_path_and_other_fields_django_s():
    kinds = {
        model: {column.attname: column.kind for column in _plan(model, connection).columns}
        for model in (Payment, PaymentEvent, OutboxMessage)
    }

    assert _DJANGO not in kinds[Payment].values()
    assert _DJANGO not in kinds[PaymentEvent].values()
    assert _DJANGO not in kinds[OutboxMessage].values()


def test_rows_read_back_equal_rows_save_wrote_with_every_column(frozen_now):
    client = ApiClientFactory()
    values = {
        "client": client,
        "amount": 2000,
        "amount_to_capture": 1500,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "description": "",
        "metadata": {"order": "42", "nested": [1, None, True, "é"]},
        "next_action": {"type": "redirect_to_url"},
        "succeeded_at": datetime(2026, 11, 25, 13, 0, tzinfo=ZoneInfo("Europe/Paris")),
        "provider_payment_id": None,
    }
    inserted = Payment(**values)
    event = payment_event_build(
        payment=inserted, type="payment.created", source="api", actor="a", idempotency_key="k", now=NOW, data=None
    )
    message = outbox_message_build(topic="t", payload={"ids": [1, 2]})
    rows_insert(inserted, event, message)
    saved = Payment(**values)
    saved.save()
    saved_event = payment_event_build(
        payment=saved, type="payment.created", source="api", actor="a", idempotency_key="k", now=NOW, data=None
    )
    saved_event.save()
    saved_message = outbox_message_build(topic="t", payload={"ids": [1, 2]})
    saved_message.save()
    differ = {"id", "public_id", "payment_id"}

    for mine, theirs in ((inserted, saved), (event, saved_event), (message, saved_message)):
        reread_mine = type(mine).objects.filter(pk=mine.pk).values().get()
        reread_theirs = type(theirs).objects.filter(pk=theirs.pk).values().get()
        assert {k: v for k, v in reread_mine.items() if k not in differ} == {
            k: v for k, v in reread_theirs.items() if k not in differ
        }
