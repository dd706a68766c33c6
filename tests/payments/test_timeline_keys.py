"""Timeline keys of status changes: unique per visit of a status, counted only where a status can be visited again."""

import pytest
from django.utils import timezone

from payments.models import Payment
from payments.services.events import payment_event_create, payment_transition_key
from tests.factories import payment_with_status

pytestmark = pytest.mark.django_db
S = Payment.Status


def arrive(payment: Payment, status: str) -> None:
    payment_event_create(
        payment=payment,
        type=f"payment.{status.lower()}",
        source="worker",
        actor="worker",
        idempotency_key=payment_transition_key(payment=payment, to_status=status),
        now=timezone.now(),
    )


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.FAILED, S.CANCELED])
def test_the_key_of_a_final_status_is_taken_without_a_query(status, django_assert_num_queries):
    payment = payment_with_status(S.PROCESSING)

    with django_assert_num_queries(0):
        key = payment_transition_key(payment=payment, to_status=status)

    assert key == f"status:{status}"


def test_a_status_visited_again_gets_a_numbered_key():
    payment = payment_with_status(S.REQUIRES_CAPTURE)
    arrive(payment, S.REQUIRES_CAPTURE)  # then a capture was asked for, and refused: back again

    key = payment_transition_key(payment=payment, to_status=S.REQUIRES_CAPTURE)

    assert key == f"status:{S.REQUIRES_CAPTURE}:2"


def test_every_status_a_transition_leaves_is_counted_and_no_final_one_is():
    from payments.services.events import _statuses_left

    assert _statuses_left() == {
        S.PENDING,
        S.PROCESSING,
        S.REQUIRES_ACTION,
        S.REQUIRES_CAPTURE,
        S.CAPTURE_REQUESTED,
        S.CANCEL_REQUESTED,
    }
