"""Ops' services against the fake gateway: retry now, re-sync from the provider, resolve by hand."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from outbox.models import OutboxMessage
from outbox.services import outbox_message_enqueue
from payments import topics
from payments.errors import (
    NothingToRetry,
    PaymentResolveRefused,
    ProviderCallInTransaction,
    ProviderTruthUnknown,
    ReasonRequired,
)
from payments.gateway.base import ProviderUnavailable
from payments.models import Payment, PaymentEvent
from payments.services.ops import payment_resolve, payment_resolve_choices, payment_resync, payment_retry_now
from payments.services.payments import Actor
from tests.factories import RefundFactory, payment_with_status
from tests.fixtures.gateway import intent

pytestmark = pytest.mark.django_db
S = Payment.Status
OPERATOR = Actor(source=PaymentEvent.Source.ADMIN, name="admin:alice", reason="customer called: charged twice?")
LATER = timedelta(hours=1)  # resolving happens long after the payment was made


def outbox_row(topic: str, payload: dict, status: str, **fields) -> OutboxMessage:
    with transaction.atomic():
        message = outbox_message_enqueue(topic=topic, payload=payload)
    OutboxMessage.objects.filter(pk=message.pk).update(status=status, **fields)
    return OutboxMessage.objects.get(pk=message.pk)


def timeline(payment) -> list[tuple[str, str, str, str, str]]:
    return list(payment.events.order_by("id").values_list("type", "to_status", "source", "actor", "reason"))


def resync(payment, gateway, guards, **kwargs):
    return payment_resync(
        payment_id=payment.public_id, actor=OPERATOR, now=timezone.now(), gateway=gateway, guards=guards, **kwargs
    )


def resolve(payment, status, gateway, guards, *, actor=OPERATOR):
    return payment_resolve(
        payment_id=payment.public_id,
        status=status,
        actor=actor,
        now=timezone.now() + LATER,
        gateway=gateway,
        guards=guards,
    )


def test_retry_now_makes_the_payments_and_its_refunds_waiting_or_dead_calls_due_now():
    payment = payment_with_status(S.SUCCEEDED)
    refund = RefundFactory(payment=payment)
    later = timezone.now() + timedelta(hours=1)
    dead = outbox_row(topics.PAYMENT_CREATE_REQUESTED, {"payment_id": payment.public_id}, "DEAD", attempts=12)
    waiting = outbox_row(topics.REFUND_CREATE_REQUESTED, {"refund_id": refund.public_id}, "DUE", available_at=later)
    handed_out = outbox_row(topics.PAYMENT_SYNC_REQUESTED, {"payment_id": payment.public_id}, "HANDED_OUT")
    other = outbox_row(topics.PAYMENT_CREATE_REQUESTED, {"payment_id": "pay_other"}, "DEAD")
    now = timezone.now()

    message_ids = payment_retry_now(payment_id=payment.public_id, actor=OPERATOR, now=now)

    assert message_ids == [dead.pk, waiting.pk]
    for message in (dead, waiting):
        message.refresh_from_db()
        assert (message.status, message.attempts, message.available_at) == ("DUE", 0, now)
    assert OutboxMessage.objects.get(pk=handed_out.pk).status == "HANDED_OUT"  # a worker has it
    assert OutboxMessage.objects.get(pk=other.pk).status == "DEAD"
    assert timeline(payment) == [("payment.retry_requested", S.SUCCEEDED, "admin", "admin:alice", OPERATOR.reason)]
    assert payment.events.get().data == {"outbox_message_ids": [dead.pk, waiting.pk]}


def test_retry_now_with_nothing_waiting_says_so_and_records_nothing():
    payment = payment_with_status(S.SUCCEEDED)
    outbox_row(topics.PAYMENT_CREATE_REQUESTED, {"payment_id": payment.public_id}, "DONE", done_at=timezone.now())

    with pytest.raises(NothingToRetry):
        payment_retry_now(payment_id=payment.public_id, actor=OPERATOR, now=timezone.now())

    assert not payment.events.exists()


def test_resync_applies_the_providers_truth_with_the_operator_and_reason(gateway, guards):
    payment = payment_with_status(S.PROCESSING, amount=2000, provider_payment_id="pi_1")
    gateway.script("intent_retrieve", intent("succeeded", id="pi_1"))

    payment, found = resync(payment, gateway, guards)

    assert payment.status == S.SUCCEEDED
    assert payment.amount_received == 2000
    assert found.status == "succeeded"
    assert gateway.called("intent_retrieve") == [{"intent_id": "pi_1"}]
    assert timeline(payment) == [
        ("payment.succeeded", S.SUCCEEDED, "admin", "admin:alice", OPERATOR.reason),
        ("payment.resynced", S.SUCCEEDED, "admin", "admin:alice", OPERATOR.reason),
    ]
    assert payment.events.last().data == {"provider_status": "succeeded", "provider_payment_id": "pi_1"}


def test_resync_of_a_payment_whose_answer_was_lost_finds_its_intent_by_our_id(gateway, guards):
    payment = payment_with_status(S.PROCESSING, amount=2000)
    gateway.script("intent_find", intent("requires_capture", id="pi_found"))

    payment, _ = resync(payment, gateway, guards)

    assert gateway.called("intent_find") == [{"payment_id": payment.public_id}]
    assert (payment.status, payment.provider_payment_id) == (S.REQUIRES_CAPTURE, "pi_found")


def test_resync_never_moves_a_payment_backwards(gateway, guards):
    payment = payment_with_status(S.SUCCEEDED, provider_payment_id="pi_1")
    gateway.script("intent_retrieve", intent("processing", id="pi_1"))

    payment, _ = resync(payment, gateway, guards)

    assert payment.status == S.SUCCEEDED
    assert [event[0] for event in timeline(payment)] == ["payment.resynced"]


def test_resync_refuses_to_run_inside_a_transaction(gateway, guards):
    payment = payment_with_status(S.PROCESSING, provider_payment_id="pi_1")

    with transaction.atomic(), pytest.raises(ProviderCallInTransaction):
        resync(payment, gateway, guards)

    assert gateway.calls == []


def test_resync_when_the_provider_cannot_be_reached_changes_and_records_nothing(gateway, guards):
    payment = payment_with_status(S.PROCESSING, provider_payment_id="pi_1")
    gateway.script("intent_retrieve", ProviderUnavailable("connection refused"))

    with pytest.raises(ProviderTruthUnknown):
        resync(payment, gateway, guards)

    payment.refresh_from_db()
    assert payment.status == S.PROCESSING
    assert not payment.events.exists()


def test_resolve_without_a_reason_is_refused_before_the_provider_is_asked(gateway, guards):
    payment = payment_with_status(S.PROCESSING, provider_payment_id="pi_1")

    with pytest.raises(ReasonRequired):
        resolve(payment, S.FAILED, gateway, guards, actor=Actor(source="admin", name="admin:alice", reason="  "))

    assert gateway.calls == []
    assert Payment.objects.get(pk=payment.pk).status == S.PROCESSING


def test_resolve_never_fails_a_payment_the_provider_says_succeeded(gateway, guards):
    payment = payment_with_status(S.PROCESSING, amount=2000, provider_payment_id="pi_1")
    gateway.script("intent_retrieve", intent("succeeded", id="pi_1"))

    with pytest.raises(PaymentResolveRefused, match="succeeded"):
        resolve(payment, S.FAILED, gateway, guards)

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED  # the re-sync applied the provider's truth
    assert "payment.resolved_by_hand" not in [event[0] for event in timeline(payment)]


def test_resolve_of_a_payment_the_provider_cannot_settle_sets_the_status_chosen(gateway, guards):
    payment = payment_with_status(S.PROCESSING, provider_payment_id="pi_1")
    gateway.script("intent_retrieve", intent("processing", id="pi_1"))

    payment = resolve(payment, S.FAILED, gateway, guards)

    assert (payment.status, payment.failure_code) == (S.FAILED, "resolved_by_hand")
    assert timeline(payment) == [
        ("payment.resynced", S.PROCESSING, "admin", "admin:alice", OPERATOR.reason),
        ("payment.resolved_by_hand", S.FAILED, "admin", "admin:alice", OPERATOR.reason),
    ]
    assert payment.events.last().data == {"provider_status": "processing", "provider_payment_id": "pi_1"}


def test_resolve_of_a_payment_the_provider_never_saw_may_cancel_it_but_not_call_it_paid(gateway, guards):
    payment = payment_with_status(S.PROCESSING)
    gateway.script("intent_find", None)

    with pytest.raises(PaymentResolveRefused, match="not_found"):
        resolve(payment, S.SUCCEEDED, gateway, guards)
    payment = resolve(payment, S.CANCELED, gateway, guards)

    assert payment.status == S.CANCELED


def test_resolve_refuses_while_the_provider_holds_an_authorization(gateway, guards):
    payment = payment_with_status(S.CANCEL_REQUESTED, provider_payment_id="pi_1")
    gateway.script("intent_retrieve", intent("requires_capture", id="pi_1"))

    with pytest.raises(PaymentResolveRefused, match="capture or cancel it instead"):
        resolve(payment, S.CANCELED, gateway, guards)

    assert Payment.objects.get(pk=payment.pk).status == S.CANCEL_REQUESTED


def test_resolve_refuses_while_a_worker_is_calling_the_provider_for_the_payment(gateway, guards):
    payment = payment_with_status(S.PROCESSING, provider_payment_id="pi_1")
    outbox_row(topics.PAYMENT_SYNC_REQUESTED, {"payment_id": payment.public_id}, "HANDED_OUT")
    gateway.script("intent_retrieve", intent("processing", id="pi_1"))

    with pytest.raises(PaymentResolveRefused, match="A worker is calling the provider"):
        resolve(payment, S.FAILED, gateway, guards)

    assert Payment.objects.get(pk=payment.pk).status == S.PROCESSING


def test_resolve_is_refused_when_the_provider_cannot_be_asked(gateway, guards):
    payment = payment_with_status(S.PROCESSING, provider_payment_id="pi_1")
    gateway.script("intent_retrieve", ProviderUnavailable("connection refused"))

    with pytest.raises(ProviderTruthUnknown):
        resolve(payment, S.FAILED, gateway, guards)

    assert Payment.objects.get(pk=payment.pk).status == S.PROCESSING


@pytest.mark.parametrize(
    ("status", "choices"),
    [
        (S.PROCESSING, [S.SUCCEEDED, S.FAILED, S.CANCELED]),
        (S.CAPTURE_REQUESTED, [S.SUCCEEDED, S.CANCELED]),  # the state machine never fails a capture
        (S.SUCCEEDED, []),
    ],
)
def test_resolve_offers_only_the_final_statuses_the_state_machine_allows(status, choices):
    assert payment_resolve_choices(payment=payment_with_status(status)) == choices
