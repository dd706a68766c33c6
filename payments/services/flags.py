"""Flags: a payment that needs a person's eyes. Webhooks raise them (a dispute, a provider state that
contradicts ours) and so does the janitor (an outcome the provider cannot tell); never a settlement."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from payments.models import Payment
from payments.models.payment import FLAG_REASON_MAX_LENGTH
from payments.selectors import payment_get_for_update
from payments.services.events import payment_event_create
from payments.services.payments import Actor


def payment_flag(
    *,
    payment_id: str,
    reason: str,
    reference: str = "",
    actor: Actor,
    now: datetime,
    data: dict | None = None,
    event_id: str = "",
) -> bool:
    """
    Flag a payment for ops with a `reason` (e.g. "dispute") and write a `payment.flagged` timeline entry.

    Once per (reason, reference): the same dispute or conflict reported twice, or a job finding the same
    thing on every run, flags once. `reference` names what was found (a dispute id, an intent id); `data`
    holds ids and amounts only. The payment's status is left alone. Returns True if this call flagged it.

    :raises PaymentNotFound: if there is no such payment
    """
    if not reason:
        raise ValueError("a flag needs a reason")
    reason = reason[:FLAG_REASON_MAX_LENGTH]
    with transaction.atomic():
        payment = payment_get_for_update(client=None, payment_id=payment_id)
        details = {"reason": reason, **({"reference": reference} if reference else {}), **(data or {})}
        if event_id:
            details["event_id"] = event_id
        try:
            with transaction.atomic():  # the timeline's unique key says whether this was reported before
                payment_event_create(
                    payment=payment,
                    type="payment.flagged",
                    source=actor.source,
                    actor=actor.name,
                    idempotency_key=f"flag:{reason}:{reference}"[:255],  # a payment's flags, each once
                    now=now,
                    from_status=payment.status,
                    data=details,
                )
        except IntegrityError:
            return False
        Payment.objects.filter(pk=payment.pk).update(flagged_at=now, flag_reason=reason)
    return True
