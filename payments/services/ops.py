"""
Commands only operations staff issue, from the admin: make a payment's queued provider calls due now,
re-sync a payment from the provider, and resolve by hand a payment the provider cannot settle.

Each writes a timeline entry with the operator (`admin:<username>`) and the reason they gave. The
provider is asked with no transaction open, like every worker call (STYLE §1.2).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import django_fsm as fsm
from django.db import transaction
from ulid import ULID

from outbox.errors import GiveUp, RetryLater
from outbox.selectors import outbox_messages_handed_out
from outbox.services import outbox_messages_retry_now
from payments.errors import (
    NothingToRetry,
    PaymentNotFound,
    PaymentResolveRefused,
    ProviderCallInTransaction,
    ProviderTruthUnknown,
    ReasonRequired,
)
from payments.gateway.base import IntentResult, PaymentGateway, ProviderError
from payments.models import Payment
from payments.selectors import payment_get_for_update
from payments.services.dispatch import _gateway, provider_call
from payments.services.events import payment_event_create, payment_transition_key
from payments.services.payments import Actor
from payments.services.sync import payment_apply_intent

S = Payment.Status
FINAL = (S.SUCCEEDED, S.FAILED, S.CANCELED)
NOT_FOUND = "not_found"  # what the timeline records when the provider has no intent for the payment
# What the provider says of the intent → the final statuses a person may set without contradicting it.
# Money held or still claimable at the provider (requires_capture, requires_action) is never papered
# over: capture or cancel it instead, so the provider lets go of it too.
CONSISTENT_WITH_PROVIDER = {
    NOT_FOUND: (S.FAILED, S.CANCELED),  # nothing was created, so nothing was charged
    "requires_payment_method": (S.FAILED, S.CANCELED),  # the attempt failed; nothing charged
    "processing": (S.SUCCEEDED, S.FAILED, S.CANCELED),  # the provider cannot tell: the operator decides
    "succeeded": (S.SUCCEEDED,),
    "canceled": (S.CANCELED,),
}
# Stripe's search index lags writes by up to a minute (https://docs.stripe.com/search#data-freshness):
# "not found" only means "never created" for a payment older than this.
SEARCH_FRESHNESS = timedelta(minutes=2)
RESOLVED_FAILURE_CODE = "resolved_by_hand"
RESOLVED_FAILURE_MESSAGE = "The payment could not be completed and was closed by operations staff."


def _payment_get(payment_id: str) -> Payment:
    payment = Payment.objects.filter(public_id=payment_id).first()
    if payment is None:
        raise PaymentNotFound(f"No such payment: '{payment_id[:40]}'", param="id")
    return payment


def _outbox_payloads(payment: Payment) -> list[dict]:
    """The outbox payloads that carry work for the payment: its own and its refunds' (payments/topics.py)."""
    refund_ids = payment.refunds.values_list("public_id", flat=True)
    return [{"payment_id": payment.public_id}, *({"refund_id": refund_id} for refund_id in refund_ids)]


def _outside_transaction_ensure(service: str) -> None:
    """:raises ProviderCallInTransaction: if a transaction is open (a test's own does not count)"""
    try:
        # Django's durability check, which tells a caller's transaction from the one a test runs in.
        with transaction.atomic(durable=True):
            pass
    except RuntimeError as exc:
        raise ProviderCallInTransaction(f"{service} calls the provider: call it outside transaction.atomic()") from exc


def _admin_key(action: str) -> str:
    # An operator may repeat an action on purpose; each is its own line, so nothing derives its key.
    return f"admin:{action}:{ULID()}"


def payment_retry_now(*, payment_id: str, actor: Actor, now: datetime) -> list[int]:
    """
    Make the payment's (and its refunds') waiting or dead provider calls due now, with fresh attempts;
    return the outbox message ids.

    :raises PaymentNotFound: if there is no such payment
    :raises NothingToRetry: if nothing is waiting or dead for it (settled, or a worker holds it now)
    """
    with transaction.atomic(durable=True):
        payment = payment_get_for_update(client=None, payment_id=payment_id)
        message_ids = outbox_messages_retry_now(payloads=_outbox_payloads(payment), now=now)
        if not message_ids:
            raise NothingToRetry(f"Payment {payment.public_id} has no provider call waiting or dead to retry")
        payment_event_create(
            payment=payment,
            type="payment.retry_requested",
            source=actor.source,
            actor=actor.name,
            reason=actor.reason,
            idempotency_key=_admin_key("retry_now"),
            now=now,
            from_status=payment.status,
            data={"outbox_message_ids": message_ids},
        )
    return message_ids


def payment_resync(
    *, payment_id: str, actor: Actor, now: datetime, gateway: PaymentGateway | None = None, guards=None
) -> tuple[Payment, IntentResult | None]:
    """
    Ask the provider where the payment stands and apply its answer (only ever forward), recording who
    asked. Return the payment and the provider's intent (None: the provider has none for it).

    :raises ProviderCallInTransaction: if called inside a transaction (it would hold locks across HTTP)
    :raises PaymentNotFound: if there is no such payment
    :raises ProviderTruthUnknown: if the provider could not be asked (unreachable, rate limit, breaker open)
        or refused to answer
    """
    _outside_transaction_ensure("payment_resync")
    payment = _payment_get(payment_id)
    gateway = _gateway(gateway)
    try:
        if payment.provider_payment_id:
            intent_id = payment.provider_payment_id
            intent = provider_call(
                "intent_retrieve", lambda: gateway.intent_retrieve(intent_id=intent_id), guards=guards
            )
        else:
            intent = provider_call(
                "intent_find", lambda: gateway.intent_find(payment_id=payment.public_id), guards=guards
            )
    except (RetryLater, GiveUp, ProviderError) as exc:
        raise ProviderTruthUnknown(
            f"Could not read payment {payment.public_id} at the provider: {exc.message}"
        ) from exc
    with transaction.atomic(durable=True):
        from_status = payment.status
        if intent is not None:
            payment_apply_intent(payment_id=payment.public_id, intent=intent, actor=actor, now=now, cause="resync")
        payment = payment_get_for_update(client=None, payment_id=payment.public_id)
        payment_event_create(
            payment=payment,
            type="payment.resynced",
            source=actor.source,
            actor=actor.name,
            reason=actor.reason,
            idempotency_key=_admin_key("resync"),
            now=now,
            from_status=from_status,
            data={
                "provider_status": intent.status if intent else NOT_FOUND,
                "provider_payment_id": intent.id if intent else "",
            },
        )
    return payment, intent


def payment_resolve_choices(*, payment: Payment) -> list[str]:
    """Return the final statuses the state machine lets this payment be resolved into (none once final)."""
    if payment.status in FINAL:
        return []
    targets = {transition.target for transition in payment.get_available_status_transitions()}
    return [status for status in FINAL if status in targets]


def _resolve(payment: Payment, status: str, now: datetime) -> None:
    if status == S.SUCCEEDED:
        payment.mark_succeeded(amount_received=payment.amount_to_capture or payment.amount, now=now)
    elif status == S.FAILED:
        payment.mark_failed(failure_code=RESOLVED_FAILURE_CODE, failure_message=RESOLVED_FAILURE_MESSAGE)
    else:
        payment.mark_canceled(now=now)


def payment_resolve(
    *, payment_id: str, status: str, actor: Actor, now: datetime, gateway: PaymentGateway | None = None, guards=None
) -> Payment:
    """
    Settle by hand a payment the provider cannot settle: give it the final `status` the operator chose.

    Re-syncs from the provider first, and refuses whatever the provider's answer contradicts (see
    CONSISTENT_WITH_PROVIDER: a payment the provider says succeeded is never resolved as failed), a
    status the state machine does not allow, and a payment a worker is calling the provider for now.

    :raises ReasonRequired: if the operator gave no reason
    :raises ProviderCallInTransaction: if called inside a transaction
    :raises PaymentNotFound: if there is no such payment
    :raises ProviderTruthUnknown: if the provider could not be asked: nothing is resolved blind
    :raises PaymentResolveRefused: if the status would contradict the provider or the state machine,
        the provider settled the payment meanwhile, or a worker holds work for it
    """
    if not actor.reason.strip():
        raise ReasonRequired("Resolving a payment by hand needs a reason, for the timeline", param="reason")
    if status not in FINAL:
        raise PaymentResolveRefused(f"A payment is resolved into a final status, not {status}", param="status")
    payment, intent = payment_resync(payment_id=payment_id, actor=actor, now=now, gateway=gateway, guards=guards)
    if payment.status in FINAL:
        raise PaymentResolveRefused(
            f"The provider has settled payment {payment.public_id}: it is {payment.public_status} now"
        )
    provider_status = intent.status if intent is not None else NOT_FOUND
    if status not in CONSISTENT_WITH_PROVIDER.get(provider_status, ()):
        raise PaymentResolveRefused(
            f"The provider says payment {payment.public_id} is {provider_status}; resolving it as "
            f"{S(status).label.lower()} would contradict it"
            + ("" if provider_status in CONSISTENT_WITH_PROVIDER else ": capture or cancel it instead")
        )
    if intent is None and now - payment.created_at < SEARCH_FRESHNESS:
        raise PaymentResolveRefused(
            f"Payment {payment.public_id} is too recent to conclude the provider has no intent for it; try again"
        )
    resynced_status = payment.status
    with transaction.atomic(durable=True):
        payment = payment_get_for_update(client=None, payment_id=payment.public_id)
        if payment.status != resynced_status:
            raise PaymentResolveRefused(f"Payment {payment.public_id} changed while being resolved; look again")
        # Under the payment's lock: a worker that claims work after this sees the final status and stops.
        in_hand = outbox_messages_handed_out(payloads=_outbox_payloads(payment))
        if in_hand:
            raise PaymentResolveRefused(
                f"A worker is calling the provider for payment {payment.public_id} (outbox message "
                f"{', '.join(f'#{message.pk}' for message in in_hand)}); try again once it reports"
            )
        from_status = payment.status
        try:
            _resolve(payment, status, now)
        except fsm.TransitionNotAllowed:
            raise PaymentResolveRefused(
                f"Payment {payment.public_id} is {payment.public_status}: it cannot become {S(status).label.lower()}"
            ) from None
        payment.save()
        payment_event_create(
            payment=payment,
            type="payment.resolved_by_hand",
            source=actor.source,
            actor=actor.name,
            reason=actor.reason,
            idempotency_key=payment_transition_key(payment=payment, to_status=payment.status),
            now=now,
            from_status=from_status,
            data={"provider_status": provider_status, "provider_payment_id": payment.provider_payment_id or ""},
        )
    return payment
