"""Commands on payments that clients (and ops) issue. None calls the provider: each writes its rows
and an outbox row in one transaction, and a worker makes the provider call later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import django_fsm as fsm
from django.db import transaction

from outbox.services import outbox_message_build, outbox_message_enqueue
from payments import topics
from payments.currencies import charge_amount_validate
from payments.errors import CaptureAmountTooLarge, PaymentNotCancelable, PaymentNotCapturable
from payments.models import ApiClient, Payment
from payments.selectors import payment_get_for_update
from payments.services.events import payment_capture_number, payment_event_build, payment_event_create
from payments.services.inserts import rows_insert


@dataclass(frozen=True)
class Actor:
    """Who asked, and why, for the timeline: a source (api, admin, worker…), a name (key prefix,
    username) and, for an operator's action, the reason they gave."""

    source: str
    name: str
    reason: str = ""


def payment_create(
    *,
    client: ApiClient,
    amount: int,
    currency: str,
    payment_method: str,
    capture_method: str = Payment.CaptureMethod.AUTOMATIC,
    description: str = "",
    customer_reference: str = "",
    metadata: dict[str, str] | None = None,
    actor: Actor,
    now: datetime,
) -> Payment:
    """
    Store a pending payment and the outbox row that will send it to the provider.

    The provider-side idempotency key is derived from the stored row (`payment.provider_idempotency_key`),
    so every retry of the provider call is the same request to the provider.

    :raises AmountTooSmall: if `amount` is below the provider's minimum charge for the currency
    :raises AmountInvalidForCurrency: if the provider cannot charge `amount` in the currency
    """
    charge_amount_validate(amount=amount, currency=currency)
    payment = Payment(
        client=client,
        amount=amount,
        currency=currency,
        payment_method=payment_method,
        capture_method=capture_method,
        description=description,
        customer_reference=customer_reference,
        metadata=metadata or {},
    )
    event = payment_event_build(
        payment=payment,
        type="payment.created",
        source=actor.source,
        actor=actor.name,
        idempotency_key="created",
        now=now,
        data={"amount": amount, "currency": currency},
    )
    message = outbox_message_build(topic=topics.PAYMENT_CREATE_REQUESTED, payload={"payment_id": payment.public_id})
    # The three rows in one statement, a round trip instead of three (issue 11). No savepoint: nothing
    # here is an answer to store, so any failure rolls back the caller's whole transaction (a client's
    # idempotency key with it), which is what a savepoint would have led to anyway.
    with transaction.atomic(savepoint=False):
        rows_insert(payment, event, message)
    return payment


def payment_capture_request(
    *, client: ApiClient | None, payment_id: str, amount: int | None, actor: Actor, now: datetime
) -> Payment:
    """
    Ask for an authorized payment to be captured (all of it, or `amount` of it) by a worker.

    :raises PaymentNotFound: if the client has no such payment
    :raises PaymentNotCapturable: unless the payment is authorized and awaiting capture
    :raises CaptureAmountTooLarge: if `amount` exceeds what is capturable
    :raises AmountTooSmall: if a partial capture is below the provider's minimum charge
    :raises AmountInvalidForCurrency: if the provider cannot capture `amount` in the currency
    """
    with transaction.atomic():
        payment = payment_get_for_update(client=client, payment_id=payment_id)
        from_status = payment.status
        if from_status != Payment.Status.REQUIRES_CAPTURE:
            raise PaymentNotCapturable(
                f"Payment {payment.public_id} is {payment.public_status}; "
                "only a payment in requires_capture can be captured"
            )
        amount = payment.amount_capturable if amount is None else amount
        if amount > payment.amount_capturable:
            raise CaptureAmountTooLarge(
                f"amount {amount} exceeds the capturable amount {payment.amount_capturable}", param="amount"
            )
        if amount < payment.amount_capturable:  # Stripe holds a partial capture to the minimum charge too
            charge_amount_validate(amount=amount, currency=payment.currency)
        payment.request_capture(amount=amount)
        payment.save()
        number = payment_capture_number(payment=payment) + 1  # a capture refused before may be asked for again
        payment_event_create(
            payment=payment,
            type="payment.capture_requested",
            source=actor.source,
            actor=actor.name,
            reason=actor.reason,
            idempotency_key="capture_requested" if number == 1 else f"capture_requested:{number}",
            now=now,
            from_status=from_status,
            data={"amount": amount},
        )
        outbox_message_enqueue(topic=topics.PAYMENT_CAPTURE_REQUESTED, payload={"payment_id": payment.public_id})
    return payment


def payment_cancel_request(*, client: ApiClient | None, payment_id: str, actor: Actor, now: datetime) -> Payment:
    """
    Cancel a payment: at once if it never left (pending), else through a worker at the provider.

    :raises PaymentNotFound: if the client has no such payment
    :raises PaymentNotCancelable: if it already succeeded, failed, was canceled or is being captured
    """
    with transaction.atomic():
        payment = payment_get_for_update(client=client, payment_id=payment_id)
        from_status = payment.status
        try:
            if from_status == Payment.Status.PENDING:
                # A worker claims PENDING under this same row lock before it calls the provider,
                # so a payment still PENDING here has not left: nothing to undo at the provider.
                payment.mark_canceled(now=now)
                event_type = "payment.canceled"
            else:
                payment.request_cancel()
                event_type = "payment.cancel_requested"
        except fsm.TransitionNotAllowed:
            raise PaymentNotCancelable(
                f"Payment {payment.public_id} is {payment.public_status} and can no longer be canceled"
            ) from None
        payment.save()
        payment_event_create(
            payment=payment,
            type=event_type,
            source=actor.source,
            actor=actor.name,
            reason=actor.reason,
            idempotency_key=event_type.removeprefix("payment."),
            now=now,
            from_status=from_status,
        )
        if event_type == "payment.cancel_requested":
            outbox_message_enqueue(topic=topics.PAYMENT_CANCEL_REQUESTED, payload={"payment_id": payment.public_id})
    return payment
