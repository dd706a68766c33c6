from __future__ import annotations

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
    return PaymentEvent.objects.create(
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
