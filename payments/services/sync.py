"""
Apply the provider's truth to our rows, only ever forward along the state machine.

Workers (after a call), webhooks (an event's snapshot or a fresh retrieve) and the janitor all land
here, so a result is applied the same way whoever brings it. A snapshot older than what we know, or
one the state machine does not allow from where we are, changes nothing: the state machine has no
cycles, so "not allowed" means "already past it".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import django_fsm as fsm
from django.db import transaction
from django.db.models import F

from outbox.services import outbox_message_enqueue
from payments import topics
from payments.gateway.base import IntentResult, RefundResult
from payments.models import Payment, Refund
from payments.selectors import payment_get_for_update
from payments.services.events import payment_event_create, payment_transition_key
from payments.services.payments import Actor

logger = logging.getLogger(__name__)
S = Payment.Status
FINAL = (S.SUCCEEDED, S.FAILED, S.CANCELED)
# States in which the outcome is the provider's (or the customer's) to decide, not ours to send.
WAITING_ON_PROVIDER = (S.REQUIRES_ACTION, S.PROCESSING)
FIRST_FOLLOW_UP = timedelta(seconds=2)
# The `cause` the capture service passes when the provider refused a capture. Only that refusal may
# take a payment from CAPTURE_REQUESTED back to REQUIRES_CAPTURE: any other requires_capture snapshot
# (a follow-up or webhook that read the intent before the client asked to capture) is older news.
CAPTURE_REFUSED = "capture_refused"


def _target(payment: Payment, intent: IntentResult) -> str | None:
    """The status the provider's intent means for us, or None when it says nothing new."""
    return payment_status_for_intent(intent=intent, current=payment.status)


def payment_status_for_intent(*, intent: IntentResult, current: str) -> str | None:
    """
    Map the provider's intent status to ours (`current` is our payment's status), or None when it
    says nothing of ours. The one mapping: applying a snapshot and the reconciliation report use it.
    """
    if intent.status == "succeeded":
        return S.SUCCEEDED
    if intent.status == "canceled":
        return S.CANCELED
    if intent.status == "requires_capture":
        return S.REQUIRES_CAPTURE
    if intent.status == "requires_action":
        return S.REQUIRES_ACTION
    if intent.status == "processing":
        return S.PROCESSING
    if intent.status == "requires_payment_method" and (intent.failure_code or current != S.PENDING):
        # We always confirm at creation: back to requires_payment_method is a failed attempt
        # (a decline, failed 3-D Secure, a failed async debit). We never re-confirm with another method.
        return S.FAILED
    return None


def _transition(payment: Payment, target: str, intent: IntentResult, now: datetime, cause: str = "") -> bool:
    """Move `payment` to `target` if the state machine allows it from where it is; True if it moved."""
    if target == S.REQUIRES_CAPTURE and payment.status == S.CAPTURE_REQUESTED and cause != CAPTURE_REFUSED:
        return False  # a snapshot from before the capture request, not a refusal of it
    try:
        if target == S.SUCCEEDED:
            payment.mark_succeeded(amount_received=intent.amount_received or intent.amount, now=now)
        elif target == S.CANCELED:
            payment.mark_canceled(now=now)
        elif target == S.REQUIRES_CAPTURE and payment.status == S.CAPTURE_REQUESTED:
            payment.mark_capture_refused(amount_capturable=intent.amount_capturable)
        elif target == S.REQUIRES_CAPTURE:
            payment.mark_requires_capture(amount_capturable=intent.amount_capturable or intent.amount)
        elif target == S.REQUIRES_ACTION:
            payment.mark_requires_action(next_action=intent.next_action or {})
        elif target == S.PROCESSING:
            payment.mark_processing()
        elif target == S.FAILED:
            payment.mark_failed(
                failure_code=intent.failure_code or "payment_failed",
                failure_message=intent.failure_message or "The provider did not accept the payment.",
            )
        else:  # pragma: no cover - _target returns only the statuses above
            raise ValueError(target)
    except fsm.TransitionNotAllowed:
        return False
    return True


@dataclass(frozen=True)
class IntentReconciled:
    """What applying a provider snapshot did to our payment."""

    payment: Payment
    changed: bool  # a status or an amount moved (a status change also wrote a timeline entry)
    # The snapshot contradicts what we hold and forward-only cannot explain it: another intent for
    # this payment, a final outcome other than ours (e.g. succeeded at the provider, canceled here),
    # or more money received or held than our amount.
    # Nothing was applied; the caller asks the provider for its current truth, then flags it for ops.
    conflict: bool = False


def _final_outcome(intent: IntentResult) -> str | None:
    """The final status a snapshot states outright, or None when it states none."""
    if intent.status == "succeeded":
        return S.SUCCEEDED
    if intent.status == "canceled":
        return S.CANCELED
    if intent.status == "requires_payment_method" and intent.failure_code:
        return S.FAILED
    return None


def payment_intent_already_applied(*, payment: Payment, intent: IntentResult) -> bool:
    """
    Whether applying `intent` to `payment` could change nothing: the payment is final, bound to this
    intent, and the intent states that same final outcome (`payment_reconcile_intent` would return
    no change). A final status is never left and a bound intent never changes, so a payment read
    without its lock answers this as well as a locked one: a webhook that only confirms what the
    worker already recorded (the usual case) settles without a transaction.
    """
    return (
        payment.status in FINAL
        and payment.provider_payment_id == intent.id
        and _final_outcome(intent) == payment.status
    )


def payment_apply_intent(
    *, payment_id: str, intent: IntentResult, actor: Actor, now: datetime, cause: str = "", event_id: str = ""
) -> Payment:
    """
    Record what the provider says of our payment's intent: its id, and the status it implies if
    that is a move forward. Safe to repeat with the same or an older snapshot.

    :raises PaymentNotFound: if there is no such payment
    """
    return payment_reconcile_intent(
        payment_id=payment_id, intent=intent, actor=actor, now=now, cause=cause, event_id=event_id
    ).payment


def payment_reconcile_intent(
    *, payment_id: str, intent: IntentResult, actor: Actor, now: datetime, cause: str = "", event_id: str = ""
) -> IntentReconciled:
    """
    Apply a provider snapshot as `payment_apply_intent` does, and say whether it changed anything
    and whether it contradicts what we hold (a conflict, which changes nothing).

    `event_id` (the provider's event that brought the snapshot) goes on the timeline entry.

    :raises PaymentNotFound: if there is no such payment
    """
    with transaction.atomic():
        payment = payment_get_for_update(client=None, payment_id=payment_id)
        held = payment.field_values()
        changed = []
        if not payment.provider_payment_id:
            payment.provider_payment_id = intent.id
            changed.append("provider_payment_id")
        elif payment.provider_payment_id != intent.id:
            # A second intent for one payment would be a second charge: never merge it silently.
            logger.error(
                "payment %s is bound to intent %s; ignoring a result for intent %s",
                payment.public_id,
                payment.provider_payment_id,
                intent.id,
            )
            return IntentReconciled(payment=payment, changed=False, conflict=True)
        from_status = payment.status
        outcome = _final_outcome(intent)
        if from_status in FINAL and outcome is not None and outcome != from_status:
            return IntentReconciled(payment=payment, changed=False, conflict=True)
        target = _target(payment, intent)
        moved = target is not None and target != from_status and _transition(payment, target, intent, now, cause)
        if (
            not moved
            and from_status == S.REQUIRES_CAPTURE == _target(payment, intent)
            and payment.amount_capturable != intent.amount_capturable
        ):
            previous_capturable = payment.amount_capturable
            payment.amount_capturable = intent.amount_capturable
            changed.append("amount_capturable")
        if not moved and not changed:
            return IntentReconciled(payment=payment, changed=False)
        if payment.amount_received > payment.amount or payment.amount_capturable > payment.amount:
            # The provider took or holds more than our amount: the intent was changed outside the
            # system (its amount updated, an incremental authorization, an overcapture). Saving would
            # break our CHECK constraints, on every retry, with the whole row (description, customer
            # reference, metadata) in PostgreSQL's error; it is a contradiction for ops instead.
            logger.error(
                "payment %s: intent %s reports %s received and %s capturable, more than its amount %s",
                payment.public_id,
                intent.id,
                intent.amount_received,
                intent.amount_capturable,
                payment.amount,
            )
            return IntentReconciled(payment=Payment.objects.get(pk=payment.pk), changed=False, conflict=True)
        payment.save_changed(since=held)
        if moved:
            payment_event_create(
                payment=payment,
                type=_event_type(from_status, payment.status),
                source=actor.source,
                actor=actor.name,
                reason=actor.reason,
                idempotency_key=payment_transition_key(payment=payment, to_status=payment.status),
                now=now,
                from_status=from_status,
                data=_event_data(intent, cause, event_id),
            )
        elif "amount_capturable" in changed:
            # The authorization was changed at the provider (lowered, or released in part): no status
            # moves, but what may be captured did, so the timeline says so, numbered per change.
            changes = payment.events.filter(type="payment.amount_capturable_updated").count()
            payment_event_create(
                payment=payment,
                type="payment.amount_capturable_updated",
                source=actor.source,
                actor=actor.name,
                reason=actor.reason,
                idempotency_key=f"amount_capturable:{changes + 1}",
                now=now,
                from_status=from_status,
                data={
                    **_event_data(intent, cause, event_id),
                    "amount_capturable": intent.amount_capturable,
                    "previous_amount_capturable": previous_capturable,
                },
            )
        if payment.status in WAITING_ON_PROVIDER and intent.status in ("requires_action", "processing"):
            # Nothing will call the provider again for this payment: follow it until it settles
            # (webhooks usually get there first; this makes us not depend on them).
            outbox_message_enqueue(
                topic=topics.PAYMENT_SYNC_REQUESTED,
                payload={"payment_id": payment.public_id},
                available_at=now + FIRST_FOLLOW_UP,
            )
    return IntentReconciled(payment=payment, changed=True)


def _event_type(from_status: str, to_status: str) -> str:
    if from_status == S.CAPTURE_REQUESTED and to_status == S.REQUIRES_CAPTURE:
        return "payment.capture_refused"
    return f"payment.{to_status.lower()}"


def _event_data(intent: IntentResult, cause: str, event_id: str = "") -> dict:
    """Amounts, ids and codes only: never the snapshot itself (it may carry personal data)."""
    data = {"provider_status": intent.status, "provider_payment_id": intent.id}
    if event_id:
        data["event_id"] = event_id
    if intent.amount_received:
        data["amount_received"] = intent.amount_received
    if intent.amount_capturable:
        data["amount_capturable"] = intent.amount_capturable
    if intent.failure_code:
        data["failure_code"] = intent.failure_code
    if cause:
        data["cause"] = cause
    return data


def payment_apply_failure(
    *, payment_id: str, failure_code: str, failure_message: str, actor: Actor, now: datetime
) -> Payment:
    """
    Fail a payment the provider definitively refused without giving us an intent (nothing was created).

    Only from states where nothing can have been charged; otherwise a no-op.
    """
    intent = IntentResult(
        id="",
        status="requires_payment_method",
        amount=0,
        currency="",
        failure_code=failure_code,
        failure_message=failure_message,
    )
    with transaction.atomic():
        payment = payment_get_for_update(client=None, payment_id=payment_id)
        from_status = payment.status
        if payment.provider_payment_id or not _transition(payment, S.FAILED, intent, now):
            return payment
        payment.save()
        payment_event_create(
            payment=payment,
            type="payment.failed",
            source=actor.source,
            actor=actor.name,
            idempotency_key=payment_transition_key(payment=payment, to_status=payment.status),
            now=now,
            from_status=from_status,
            data={"failure_code": failure_code},
        )
    return payment


@dataclass(frozen=True)
class RefundReconciled:
    """What applying the provider's word on a refund did to ours."""

    refund: Refund
    changed: bool
    # Another provider refund than the one bound to ours, or "succeeded" for a refund we hold as
    # failed (a failed refund never succeeds later): nothing was applied; ask the provider, then flag.
    conflict: bool = False


# The provider's refund statuses, ours: a canceled refund gave nothing back, as a failed one.
REFUND_STATUSES = {
    "succeeded": Refund.Status.SUCCEEDED,
    "failed": Refund.Status.FAILED,
    "canceled": Refund.Status.FAILED,
    "pending": Refund.Status.PENDING,
    "requires_action": Refund.Status.PENDING,
}


def refund_apply_result(
    *,
    refund_id: str,
    result: RefundResult | None,
    failure_reason: str = "",
    actor: Actor,
    now: datetime,
    event_id: str = "",
) -> Refund:
    """
    Record the provider's word on a refund: its id, and success or failure. A failed refund gives
    its amount back to the payment's refundable balance (it was reserved when the refund was asked for).

    `result=None` with a `failure_reason` records a definitive refusal that created nothing.
    """
    return refund_reconcile_result(
        refund_id=refund_id, result=result, failure_reason=failure_reason, actor=actor, now=now, event_id=event_id
    ).refund


def refund_reconcile_result(
    *,
    refund_id: str,
    result: RefundResult | None,
    failure_reason: str = "",
    actor: Actor,
    now: datetime,
    event_id: str = "",
) -> RefundReconciled:
    """
    Apply the provider's word on a refund as `refund_apply_result` does, and say whether it changed
    anything and whether it contradicts what we hold (a conflict, which changes nothing).

    A refund the provider reports failed after it succeeded (a bank can return it days later,
    https://docs.stripe.com/refunds#failed-refunds) fails here too and gives its amount back.

    :raises Refund.DoesNotExist: if there is no such refund
    """
    with transaction.atomic():
        refund = Refund.objects.select_related("payment").get(public_id=refund_id)
        payment = payment_get_for_update(client=None, payment_id=refund.payment.public_id)  # lock order
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        bound = False
        if result is not None and not refund.provider_refund_id:
            refund.provider_refund_id = result.id
            bound = True
        elif result is not None and refund.provider_refund_id != result.id:
            logger.error(
                "refund %s is bound to %s; ignoring a result for %s",
                refund.public_id,
                refund.provider_refund_id,
                result.id,
            )
            return RefundReconciled(refund=refund, changed=False, conflict=True)
        if result is None and refund.status != Refund.Status.PENDING:
            return RefundReconciled(refund=refund, changed=False)  # a refusal only ever settles a pending refund
        status = result.status if result is not None else "failed"
        if status == "succeeded" and refund.status == Refund.Status.FAILED:
            return RefundReconciled(refund=refund, changed=False, conflict=True)
        from_status = refund.status
        moved = False
        try:
            if status == "succeeded":
                refund.mark_succeeded()
                moved = True
            elif status in ("failed", "canceled"):
                refund.mark_failed(failure_reason=(result.failure_reason if result else failure_reason) or status)
                moved = True
        except fsm.TransitionNotAllowed:
            moved = False
        if not moved and not bound:
            return RefundReconciled(refund=refund, changed=False)
        refund.save()
        if moved and refund.status == Refund.Status.FAILED:
            Payment.objects.filter(pk=payment.pk).update(amount_refunded=F("amount_refunded") - refund.amount)
        if moved:
            data = {"amount": refund.amount, "provider_refund_id": refund.provider_refund_id or ""}
            if event_id:
                data["event_id"] = event_id
            payment_event_create(
                payment=payment,
                refund=refund,
                type=f"refund.{refund.status.lower()}",
                source=actor.source,
                actor=actor.name,
                idempotency_key=f"{refund.public_id}:{refund.status}",
                now=now,
                from_status=from_status,
                data=data,
            )
    return RefundReconciled(refund=refund, changed=True)
