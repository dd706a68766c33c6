"""Applying the provider's word (workers, webhooks, the janitor): forward only, with conflicts reported, not applied."""

import pytest
from django.utils import timezone

from payments.gateway.base import RefundResult
from payments.models import Payment, Refund
from payments.services.payments import Actor
from payments.services.sync import (
    payment_intent_already_applied,
    payment_reconcile_intent,
    refund_apply_result,
    refund_reconcile_result,
)
from tests.factories import RefundFactory, payment_with_status
from tests.fixtures.gateway import intent

pytestmark = pytest.mark.django_db
S = Payment.Status
WEBHOOK = Actor(source="webhook", name="stripe")


def bound(status: str, **kwargs) -> Payment:
    payment = payment_with_status(status, amount=2000, **kwargs)
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id="pi_fake")
    return Payment.objects.get(pk=payment.pk)


def reconcile(payment: Payment, snapshot, **kwargs):
    return payment_reconcile_intent(
        payment_id=payment.public_id, intent=snapshot, actor=WEBHOOK, now=timezone.now(), **kwargs
    )


def test_a_move_forward_is_reported_as_a_change_and_carries_the_event_id_on_the_timeline():
    payment = bound(S.PROCESSING)

    result = reconcile(payment, intent("succeeded"), cause="payment_intent.succeeded", event_id="evt_1")

    assert (result.changed, result.conflict, result.payment.status) == (True, False, S.SUCCEEDED)
    entry = payment.events.get()
    assert (entry.source, entry.actor, entry.to_status) == ("webhook", "stripe", S.SUCCEEDED)
    assert entry.data["event_id"] == "evt_1" and entry.data["cause"] == "payment_intent.succeeded"


def test_an_older_snapshot_is_no_change_and_no_conflict():
    payment = bound(S.SUCCEEDED)

    results = [reconcile(payment, intent(status)) for status in ("processing", "requires_capture", "requires_action")]

    assert [(r.changed, r.conflict) for r in results] == [(False, False)] * 3
    assert payment.events.count() == 0


@pytest.mark.parametrize(
    ("held", "snapshot"),
    [
        (S.CANCELED, intent("succeeded")),
        (S.SUCCEEDED, intent("canceled")),
        (S.FAILED, intent("succeeded")),
        (S.SUCCEEDED, intent("requires_payment_method", failure_code="card_declined")),
    ],
    ids=["canceled-but-succeeded", "succeeded-but-canceled", "failed-but-succeeded", "succeeded-but-declined"],
)
def test_a_final_outcome_other_than_ours_is_a_conflict_and_changes_nothing(held, snapshot):
    payment = bound(held)

    result = reconcile(payment, snapshot)

    assert (result.changed, result.conflict, result.payment.status) == (False, True, held)
    assert payment.events.count() == 0


def test_a_snapshot_of_another_intent_is_a_conflict():
    payment = bound(S.PROCESSING)

    result = reconcile(payment, intent("succeeded", id="pi_other"))

    assert (result.changed, result.conflict) == (False, True)
    assert Payment.objects.get(pk=payment.pk).provider_payment_id == "pi_fake"


def refund_of(status: str = Refund.Status.PENDING, provider_refund_id: str | None = "re_p") -> Refund:
    payment = bound(S.SUCCEEDED)
    Payment.objects.filter(pk=payment.pk).update(amount_refunded=500)
    refund = RefundFactory(payment=payment, amount=500)
    Refund.objects.filter(pk=refund.pk).update(status=status, provider_refund_id=provider_refund_id)
    return Refund.objects.get(pk=refund.pk)


def provider_refund(status: str, id: str = "re_p") -> RefundResult:
    return RefundResult(id=id, status=status, amount=500, payment_intent="pi_fake", failure_reason="")


def test_a_refund_that_fails_after_it_succeeded_fails_and_gives_its_amount_back():
    refund = refund_of(Refund.Status.SUCCEEDED)

    result = refund_reconcile_result(
        refund_id=refund.public_id, result=provider_refund("failed"), actor=WEBHOOK, now=timezone.now(), event_id="e"
    )

    assert (result.changed, result.refund.status) == (True, Refund.Status.FAILED)
    assert Payment.objects.get(pk=refund.payment_id).amount_refunded == 0
    assert refund.payment.events.get().data["event_id"] == "e"


def test_a_failed_refund_reported_succeeded_is_a_conflict():
    refund = refund_of(Refund.Status.FAILED)

    result = refund_reconcile_result(
        refund_id=refund.public_id, result=provider_refund("succeeded"), actor=WEBHOOK, now=timezone.now()
    )

    assert (result.changed, result.conflict, result.refund.status) == (False, True, Refund.Status.FAILED)


def test_a_result_for_another_provider_refund_is_a_conflict():
    refund = refund_of()

    result = refund_reconcile_result(
        refund_id=refund.public_id, result=provider_refund("succeeded", id="re_x"), actor=WEBHOOK, now=timezone.now()
    )

    assert (result.conflict, Refund.objects.get(pk=refund.pk).provider_refund_id) == (True, "re_p")


def test_a_refusal_without_a_provider_refund_never_fails_a_refund_that_succeeded():
    refund = refund_of(Refund.Status.SUCCEEDED)

    refund = refund_apply_result(
        refund_id=refund.public_id, result=None, failure_reason="declined", actor=WEBHOOK, now=timezone.now()
    )

    assert refund.status == Refund.Status.SUCCEEDED
    assert Payment.objects.get(pk=refund.payment_id).amount_refunded == 500


@pytest.mark.parametrize(
    ("held", "snapshot", "intent_id", "already"),
    [
        (S.SUCCEEDED, intent("succeeded"), "pi_fake", True),
        (S.CANCELED, intent("canceled"), "pi_fake", True),
        (S.FAILED, intent("requires_payment_method", failure_code="card_declined"), "pi_fake", True),
        (S.SUCCEEDED, intent("succeeded", id="pi_other"), "pi_fake", False),  # another intent: a conflict
        (S.CANCELED, intent("succeeded"), "pi_fake", False),  # another final outcome: a conflict
        (S.PROCESSING, intent("processing"), "pi_fake", False),  # not final: may still move
        (S.REQUIRES_CAPTURE, intent("requires_capture"), "pi_fake", False),  # amounts may move
    ],
)
def test_only_a_final_payment_bound_to_the_intent_and_told_the_same_outcome_is_already_applied(
    held, snapshot, intent_id, already
):
    payment = bound(held)

    assert payment_intent_already_applied(payment=payment, intent=snapshot) is already
    if already:  # what applying it under the lock would say
        assert reconcile(payment, snapshot).changed is False
