"""Refunds: reserved on the payment under its row lock, and checked by PostgreSQL as well."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F

from outbox.services import outbox_message_enqueue
from payments import topics
from payments.currencies import refund_amount_validate
from payments.errors import PaymentNotRefundable, RefundExceedsReceived
from payments.models import ApiClient, Payment, Refund
from payments.selectors import payment_get_for_update
from payments.services.events import payment_event_create
from payments.services.payments import Actor


def refund_create(
    *,
    client: ApiClient | None,
    payment_id: str,
    amount: int | None,
    reason: str = "",
    actor: Actor,
    now: datetime,
) -> Refund:
    """
    Refund a succeeded payment, all that is left of it or `amount`; a worker sends it to the provider.

    The amount is added to the payment's `amount_refunded` at once (as Stripe does), under the
    payment's row lock, and the CHECK constraint `payment_refunds_within_received` refuses any
    total above what was received, so concurrent refunds can never over-refund.

    :raises PaymentNotFound: if the client has no such payment
    :raises PaymentNotRefundable: unless the payment succeeded
    :raises RefundExceedsReceived: if the refund would take refunds past the amount received
    :raises AmountInvalidForCurrency: if the provider cannot refund `amount` in the payment's currency
    """
    with transaction.atomic():
        payment = payment_get_for_update(client=client, payment_id=payment_id)
        if payment.status != Payment.Status.SUCCEEDED:
            raise PaymentNotRefundable(
                f"Payment {payment.public_id} is {payment.public_status}; only a succeeded payment can be refunded"
            )
        refundable = payment.amount_refundable
        amount = refundable if amount is None else amount
        if refundable == 0:
            raise RefundExceedsReceived(f"Payment {payment.public_id} has already been fully refunded")
        if amount > refundable:
            raise RefundExceedsReceived(
                f"amount {amount} exceeds what is left to refund ({refundable})", param="amount"
            )
        refund_amount_validate(amount=amount, currency=payment.currency)
        try:
            with transaction.atomic():
                Payment.objects.filter(pk=payment.pk).update(amount_refunded=F("amount_refunded") + amount)
        except IntegrityError as exc:  # the database's word is final, whatever the check above said
            raise RefundExceedsReceived(f"amount {amount} exceeds what is left to refund", param="amount") from exc
        # Read back the one field, not refresh_from_db: django-fsm lifts and restores the status field's
        # protection for the whole class around a reload, which makes a concurrent reload in another
        # thread of the process raise.
        payment.amount_refunded = Payment.objects.values_list("amount_refunded", flat=True).get(pk=payment.pk)
        refund = Refund.objects.create(payment=payment, amount=amount, reason=reason)
        payment_event_create(
            payment=payment,
            refund=refund,
            type="refund.created",
            source=actor.source,
            actor=actor.name,
            reason=actor.reason,
            idempotency_key=f"{refund.public_id}:created",
            now=now,
            data={"amount": amount},
        )
        outbox_message_enqueue(topic=topics.REFUND_CREATE_REQUESTED, payload={"refund_id": refund.public_id})
    return refund
