from __future__ import annotations

import functools
from datetime import datetime

from payments.models import Payment, PaymentEvent, Refund


def payment_event_create(
    *,
    payment: Payment,
    type: str,
    source: str,
    actor: str,
    idempotency_key: str,
    now: datetime,
    from_status: str = "",
    refund: Refund | None = None,
    data: dict | None = None,
    reason: str = "",
) -> PaymentEvent:
    """Append one line to the payment's timeline, in the caller's transaction (amounts and ids only in
    `data`; an operator's `reason` in their own words)."""
    event = payment_event_build(
        payment=payment,
        type=type,
        source=source,
        actor=actor,
        idempotency_key=idempotency_key,
        now=now,
        from_status=from_status,
        refund=refund,
        data=data,
        reason=reason,
    )
    event.save(force_insert=True)
    return event


def payment_event_build(
    *,
    payment: Payment,
    type: str,
    source: str,
    actor: str,
    idempotency_key: str,
    now: datetime,
    from_status: str = "",
    refund: Refund | None = None,
    data: dict | None = None,
    reason: str = "",
) -> PaymentEvent:
    """The timeline line `payment_event_create` appends, unsaved: for a service that writes it together
    with its payment in one statement (`payments.services.inserts.rows_insert`), in its transaction."""
    return PaymentEvent(
        payment=payment,
        refund=refund,
        type=type,
        from_status=from_status,
        to_status=payment.status if refund is None else refund.status,
        source=source,
        actor=actor,
        reason=reason,
        idempotency_key=idempotency_key,
        data=data or {},
        created_at=now,
    )


def payment_transition_key(*, payment: Payment, to_status: str) -> str:
    """The timeline key of the payment's next arrival in `to_status`: `status:X`, then `status:X:2`, …

    Forward moves reach a status once, but a refused capture goes back to REQUIRES_CAPTURE and may be
    asked for again, so a status can be visited more than once. The state machine stops a transition
    being applied twice (it is already there); this key, counted under the payment's row lock, only
    keeps each visit's entry unique. A status no transition leaves (a final one) is reached once:
    its key needs no count (one round trip less on every payment that settles).
    """
    if to_status not in _statuses_left():
        return f"status:{to_status}"
    visits = payment.events.filter(refund__isnull=True, to_status=to_status).count()
    return f"status:{to_status}" if visits == 0 else f"status:{to_status}:{visits + 1}"


def payment_capture_number(*, payment: Payment) -> int:
    """Which capture request of the payment this is (1 for the first): each is its own provider request."""
    return payment.events.filter(type="payment.capture_requested").count()


@functools.cache
def _statuses_left() -> frozenset[str]:
    """The statuses some transition of the payment's state machine leaves, read from the machine itself."""
    field = Payment._meta.get_field("status")
    return frozenset(transition.source for transition in field.get_all_transitions(Payment))
