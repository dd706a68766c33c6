"""Worker saves of a locked payment write the columns that moved, and every one of them."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import Payment
from payments.selectors import payment_get_for_update
from payments.services.payments import Actor
from payments.services.sync import payment_apply_intent
from tests.factories import payment_with_status
from tests.fixtures.gateway import intent

pytestmark = pytest.mark.django_db
S = Payment.Status


def payment_updates(queries) -> list[str]:
    return [query["sql"] for query in queries if query["sql"].startswith('UPDATE "payments_payment"')]


def test_a_payment_settled_by_the_worker_writes_only_what_moved_and_all_of_it():
    payment = payment_with_status(S.PROCESSING, amount=2000, description="order 42")
    before = Payment.objects.get(pk=payment.pk)

    with CaptureQueriesContext(connection) as captured:
        payment_apply_intent(
            payment_id=payment.public_id,
            intent=intent("succeeded", id="pi_1", amount_received=2000),
            actor=Actor(source="worker", name="worker"),
            now=timezone.now(),
        )

    (update,) = payment_updates(captured.captured_queries)
    assert "description" not in update and "metadata" not in update
    after = Payment.objects.get(pk=payment.pk)
    assert (after.status, after.provider_payment_id, after.amount_received) == (S.SUCCEEDED, "pi_1", 2000)
    assert after.succeeded_at is not None and after.updated_at > before.updated_at
    assert (after.description, after.metadata) == (before.description, before.metadata)


def test_a_json_field_changed_in_place_is_saved():
    payment = payment_with_status(S.PROCESSING, metadata={"order": "42"})

    with transaction.atomic():
        held = payment_get_for_update(client=None, payment_id=payment.public_id)
        since = held.field_values()
        held.metadata["order"] = "43"
        held.save_changed(since=since)

    assert Payment.objects.get(pk=payment.pk).metadata == {"order": "43"}
