import django_fsm as fsm
import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from payments.models import Payment, PaymentEvent
from tests.factories import PaymentFactory, payment_with_status

pytestmark = pytest.mark.django_db
S = Payment.Status
NOW = timezone.now()


@pytest.mark.parametrize(
    ("source", "transition", "kwargs", "target"),
    [
        (S.PENDING, "mark_processing", {}, S.PROCESSING),
        (S.PROCESSING, "mark_requires_action", {"next_action": {"type": "redirect_to_url"}}, S.REQUIRES_ACTION),
        (S.PROCESSING, "mark_requires_capture", {"amount_capturable": 10}, S.REQUIRES_CAPTURE),
        (S.REQUIRES_ACTION, "mark_requires_capture", {"amount_capturable": 10}, S.REQUIRES_CAPTURE),
        (S.REQUIRES_CAPTURE, "request_capture", {"amount": 10}, S.CAPTURE_REQUESTED),
        (S.CAPTURE_REQUESTED, "mark_succeeded", {"amount_received": 10, "now": NOW}, S.SUCCEEDED),
        (S.PROCESSING, "mark_succeeded", {"amount_received": 10, "now": NOW}, S.SUCCEEDED),
        (S.PROCESSING, "mark_failed", {"failure_code": "card_declined", "failure_message": "declined"}, S.FAILED),
        (S.REQUIRES_CAPTURE, "request_cancel", {}, S.CANCEL_REQUESTED),
        (S.CANCEL_REQUESTED, "mark_canceled", {"now": NOW}, S.CANCELED),
        (S.PENDING, "mark_canceled", {"now": NOW}, S.CANCELED),
    ],
)
def test_each_allowed_transition_moves_forward(source, transition, kwargs, target):
    payment = payment_with_status(source, amount=10)

    getattr(payment, transition)(**kwargs)
    payment.save()

    payment.refresh_from_db()
    assert payment.status == target


@pytest.mark.parametrize(
    ("source", "transition", "kwargs"),
    [
        (S.SUCCEEDED, "mark_processing", {}),
        (S.SUCCEEDED, "mark_failed", {"failure_code": "x", "failure_message": "x"}),
        (S.FAILED, "mark_succeeded", {"amount_received": 10, "now": NOW}),
        (S.CANCELED, "mark_requires_capture", {"amount_capturable": 10}),
        (S.CAPTURE_REQUESTED, "mark_requires_capture", {"amount_capturable": 10}),
        (S.PROCESSING, "mark_processing", {}),
        (S.SUCCEEDED, "mark_canceled", {"now": NOW}),
        (S.PROCESSING, "request_cancel", {}),  # the create may still land and capture: no promise to cancel
    ],
)
def test_a_state_never_moves_backwards_or_out_of_a_final_state(source, transition, kwargs):
    payment = payment_with_status(source, amount=10)

    with pytest.raises(fsm.TransitionNotAllowed):
        getattr(payment, transition)(**kwargs)


def test_status_cannot_be_assigned_directly():
    payment = PaymentFactory()

    with pytest.raises(AttributeError):
        payment.status = S.SUCCEEDED


def test_the_timeline_is_append_only_in_postgres():
    payment = PaymentFactory()
    event = PaymentEvent.objects.create(
        payment=payment, type="payment.created", source="api", idempotency_key="created", created_at=NOW
    )

    with pytest.raises(DatabaseError), transaction.atomic():
        PaymentEvent.objects.filter(pk=event.pk).update(type="payment.tampered")
    with pytest.raises(DatabaseError), transaction.atomic():
        PaymentEvent.objects.filter(pk=event.pk).delete()


def test_the_same_timeline_step_is_recorded_once():
    payment = PaymentFactory()
    PaymentEvent.objects.create(payment=payment, type="t", source="worker", idempotency_key="k", created_at=NOW)

    with pytest.raises(DatabaseError), transaction.atomic():
        PaymentEvent.objects.create(payment=payment, type="t", source="worker", idempotency_key="k", created_at=NOW)


def test_provider_idempotency_keys_derive_from_our_rows_not_from_the_client_or_the_attempt():
    payment = PaymentFactory()

    assert payment.provider_idempotency_key("create") == f"{payment.public_id}:create"
    assert payment.provider_idempotency_key("capture") == payment.provider_idempotency_key("capture")
    assert PaymentFactory().provider_idempotency_key("create") != payment.provider_idempotency_key("create")
