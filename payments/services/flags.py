"""Flag a payment for ops: a job found something it must not settle alone (the provider cannot tell)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from payments.models import Payment
from payments.models.payment import FLAG_REASON_MAX_LENGTH
from payments.selectors import payment_get_for_update
from payments.services.events import payment_event_create
from payments.services.payments import Actor


def payment_flag(*, payment_id: str, reason: str, actor: Actor, now: datetime) -> Payment:
    """
    Flag the payment for ops with `reason` and a `payment.flagged` timeline entry; a payment already
    flagged is left as it is (one entry, the first reason), so a job may flag on every run.

    The payment's status is not touched: flagging never settles anything.

    :raises PaymentNotFound: if there is no such payment
    """
    with transaction.atomic():
        payment = payment_get_for_update(client=None, payment_id=payment_id)
        if payment.flagged_at is not None:
            return payment
        reason = reason[:FLAG_REASON_MAX_LENGTH]
        # A queryset update: the flag is not a change of the payment's state, so `updated_at` (what
        # the dashboard's "at risk" and the janitor's thresholds read) stays as it was.
        Payment.objects.filter(pk=payment.pk).update(flagged_at=now, flag_reason=reason)
        payment.flagged_at, payment.flag_reason = now, reason
        flags = payment.events.filter(type="payment.flagged").count()
        payment_event_create(
            payment=payment,
            type="payment.flagged",
            source=actor.source,
            actor=actor.name,
            idempotency_key="flagged" if flags == 0 else f"flagged:{flags + 1}",
            now=now,
            from_status=payment.status,
            data={"flag_reason": reason},
        )
    return payment
