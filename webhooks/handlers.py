"""
What each provider event does: one handler per event type, through the one table `HANDLERS`.

Handlers read our rows through payments selectors and change them only through payments services
(`payment_reconcile_intent`, `refund_reconcile_result`, `payment_flag`), which move a payment only
forward. Each returns an outcome for the event row, or raises:

- `WebhookEventNotYetKnown`: our payment (or refund) is not in the database yet, or not yet bound
  to the provider's object (its worker has not committed); retried with backoff, then parked;
- `WebhookEventNotOurs`: no id of ours on the object and none of our rows bound to it: ignored.

The snapshot in the event is trusted only when it speaks our pinned API version and agrees with
what we hold. Otherwise (another version or none, a contradiction, an object we do not know yet)
the handler asks the provider for the object's current state and applies that instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings

from payments.gateway import stripe as provider
from payments.gateway.base import IntentResult, PaymentGateway, RefundResult
from payments.models import Payment, PaymentEvent, Refund
from payments.models.base import public_id_well_formed
from payments.selectors import payment_find, refund_find, refund_ids_pending_at_provider
from payments.services.dispatch import provider_call
from payments.services.flags import payment_flag
from payments.services.payments import Actor
from payments.services.sync import (
    FINAL,
    payment_intent_already_applied,
    payment_reconcile_intent,
    refund_reconcile_result,
)
from webhooks.errors import WebhookEventNotOurs, WebhookEventNotYetKnown
from webhooks.models import WebhookEvent

# What processing came to (WebhookEvent.outcome).
APPLIED = "applied"  # a status or an amount moved; the timeline says what
NO_CHANGE = "no_change"  # we knew it already, or the snapshot was older than what we hold
FLAGGED = "flagged"  # a dispute, a contradiction or a refund made elsewhere: the payment is flagged for ops
UNHANDLED_TYPE = "unhandled_type"  # not in HANDLERS: stored, never acted on
NOT_OURS = "not_ours"  # the object carries none of our ids

# Flag reasons (Payment.flag_reason): ops filter on them.
FLAG_DISPUTE = "dispute"
FLAG_PROVIDER_CONFLICT = "provider_conflict"  # the provider's current state contradicts ours
FLAG_REFUND_OUTSIDE_SYSTEM = "refund_outside_system"  # a refund we did not ask for (the dashboard)
PROVIDER = provider.PROVIDER


@dataclass
class HandlerContext:
    """One event being processed: the row, the time, the provider seam, and the payment it turned out to concern."""

    event: WebhookEvent
    now: datetime
    gateway: PaymentGateway | None = None
    guards: Any = None
    payment_id: str = ""  # set by the handler once it knows; stored on the event row
    fetched: list[str] = field(default_factory=list)  # objects read from the provider, for the log

    @property
    def actor(self) -> Actor:
        if self.event.source == WebhookEvent.Source.BACKFILL:
            return Actor(source=PaymentEvent.Source.RECONCILIATION, name=PROVIDER)
        return Actor(source=PaymentEvent.Source.WEBHOOK, name=PROVIDER)

    @property
    def object(self) -> dict:
        data = self.event.payload.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        return obj if isinstance(obj, dict) else {}

    @property
    def metadata(self) -> dict:
        metadata = self.object.get("metadata")
        return metadata if isinstance(metadata, dict) else {}

    @property
    def snapshot_trusted(self) -> bool:
        """Whether the event's object has the shape we read: written in our pinned API version."""
        return self.event.api_version == settings.STRIPE_API_VERSION

    def _gateway(self) -> PaymentGateway:
        if self.gateway is None:
            self.gateway = provider.get_gateway()
        return self.gateway

    def fetch_intent(self, intent_id: str) -> IntentResult:
        """The intent as the provider has it now (under the shared rate limit and breaker).

        :raises RetryLater: if the provider cannot answer now
        """
        self.fetched.append(intent_id)
        gateway = self._gateway()
        return provider_call(
            "intent_retrieve", lambda: gateway.intent_retrieve(intent_id=intent_id), guards=self.guards
        )

    def fetch_refund(self, refund_id: str) -> RefundResult:
        """The refund as the provider has it now. :raises RetryLater: if the provider cannot answer now"""
        self.fetched.append(refund_id)
        gateway = self._gateway()
        return provider_call(
            "refund_retrieve", lambda: gateway.refund_retrieve(refund_id=refund_id), guards=self.guards
        )


# --- payment intents ------------------------------------------------------------------------------
def handle_payment_intent(context: HandlerContext) -> str:
    """Any payment_intent.* event we handle: apply the intent's state to our payment, forward only."""
    intent_id = context.event.object_id
    payment, bound = _payment_for_intent(context, intent_id=intent_id, metadata=context.metadata)
    snapshot = _snapshot(context, provider.intent_result_from_object) if bound else None
    return _reconcile_intent(context, payment=payment, intent_id=intent_id, snapshot=snapshot)


def _payment_for_intent(context: HandlerContext, *, intent_id: str, metadata: dict) -> tuple[Payment, bool]:
    """Our payment for the intent, and whether it is already bound to it.

    :raises WebhookEventNotYetKnown: if it is not in the database yet, or its worker has not yet
        bound it to the intent (the webhook beat our commit)
    :raises WebhookEventNotOurs: if the intent is bound to none of ours and names no payment of ours
    """
    payment = payment_find(provider=PROVIDER, provider_payment_id=intent_id) if intent_id else None
    if payment is not None:
        context.payment_id = payment.public_id
        return payment, True
    payment_id = metadata.get("payment_id")
    if not public_id_well_formed(payment_id, prefix="pay"):
        # Absent, or another integration's id under the same common key: never one of ours, so
        # neither retried nor parked (and its value, maybe personal, goes in no error or log line).
        raise WebhookEventNotOurs(f"intent {intent_id or '(none)'} carries no payment_id of ours")
    payment = payment_find(payment_id=payment_id)
    if payment is None:
        raise WebhookEventNotYetKnown(f"payment {payment_id[:40]} (intent {intent_id}) is not in our database yet")
    context.payment_id = payment.public_id
    if not payment.provider_payment_id and payment.status not in FINAL:
        # Its worker made the call and will bind the intent when it commits: let that happen first.
        raise WebhookEventNotYetKnown(
            f"payment {payment.public_id} is not bound to intent {intent_id} yet (found by metadata only)"
        )
    # Settled without this intent, or bound to another: an object we do not know; ask the provider.
    return payment, False


def _reconcile_intent(
    context: HandlerContext, *, payment: Payment, intent_id: str, snapshot: IntentResult | None
) -> str:
    event = context.event
    if snapshot is not None and payment_intent_already_applied(payment=payment, intent=snapshot):
        return NO_CHANGE
    intent = snapshot or context.fetch_intent(intent_id)
    cause = event.type if snapshot else f"{event.type}:fetched"
    result = payment_reconcile_intent(
        payment_id=payment.public_id,
        intent=intent,
        actor=context.actor,
        now=context.now,
        cause=cause,
        event_id=event.provider_event_id,
    )
    if result.conflict and snapshot is not None:
        # The snapshot contradicts us: it may be stale or plain wrong. The provider's current word decides.
        intent = context.fetch_intent(intent_id)
        result = payment_reconcile_intent(
            payment_id=payment.public_id,
            intent=intent,
            actor=context.actor,
            now=context.now,
            cause=f"{event.type}:fetched",
            event_id=event.provider_event_id,
        )
    if result.conflict:
        payment_flag(
            payment_id=payment.public_id,
            reason=FLAG_PROVIDER_CONFLICT,
            reference=f"{intent.id}:{intent.status}",
            actor=context.actor,
            now=context.now,
            data={"provider_payment_id": intent.id, "provider_status": intent.status, "status": result.payment.status},
            event_id=event.provider_event_id,
        )
        return FLAGGED
    return APPLIED if result.changed else NO_CHANGE


# --- refunds ----------------------------------------------------------------------------------------
def handle_refund(context: HandlerContext) -> str:
    """refund.created / .updated / .failed: apply the refund's state to ours; flag one we never asked for."""
    provider_refund_id = context.event.object_id
    refund = refund_find(provider_refund_id=provider_refund_id) if provider_refund_id else None
    bound = refund is not None
    if refund is None:
        refund_id = context.metadata.get("refund_id")
        if not public_id_well_formed(refund_id, prefix="re"):  # none, or another integration's
            return _refund_outside_system(context, provider_refund_id=provider_refund_id)
        refund = refund_find(refund_id=refund_id)
        if refund is None:
            raise WebhookEventNotYetKnown(f"refund {refund_id[:40]} ({provider_refund_id}) is not in our database yet")
        if not refund.provider_refund_id and refund.status == Refund.Status.PENDING:
            context.payment_id = refund.payment.public_id
            raise WebhookEventNotYetKnown(
                f"refund {refund.public_id} is not bound to {provider_refund_id} yet (found by metadata only)"
            )
    context.payment_id = refund.payment.public_id
    snapshot = _snapshot(context, provider.refund_result_from_object) if bound else None
    return _reconcile_refund(context, refund=refund, provider_refund_id=provider_refund_id, snapshot=snapshot)


def _refund_outside_system(context: HandlerContext, *, provider_refund_id: str) -> str:
    """A refund with none of our ids on a payment of ours (made in the dashboard?): flag it for ops.

    :raises WebhookEventNotOurs: if its intent is not one of ours either
    """
    intent_id = context.object.get("payment_intent")
    payment = payment_find(provider=PROVIDER, provider_payment_id=intent_id) if isinstance(intent_id, str) else None
    if payment is None:
        raise WebhookEventNotOurs(f"refund {provider_refund_id} is for no payment of ours")
    context.payment_id = payment.public_id
    truth = context.fetch_refund(provider_refund_id)  # an object we do not know: the provider's word, not the snapshot
    payment_flag(
        payment_id=payment.public_id,
        reason=FLAG_REFUND_OUTSIDE_SYSTEM,
        reference=truth.id,
        actor=context.actor,
        now=context.now,
        data={"provider_refund_id": truth.id, "amount": truth.amount, "provider_status": truth.status},
        event_id=context.event.provider_event_id,
    )
    return FLAGGED


def _reconcile_refund(
    context: HandlerContext, *, refund: Refund, provider_refund_id: str, snapshot: RefundResult | None
) -> str:
    event = context.event
    result_from = snapshot or context.fetch_refund(provider_refund_id)
    result = refund_reconcile_result(
        refund_id=refund.public_id,
        result=result_from,
        actor=context.actor,
        now=context.now,
        event_id=event.provider_event_id,
    )
    if result.conflict and snapshot is not None:
        result_from = context.fetch_refund(provider_refund_id)
        result = refund_reconcile_result(
            refund_id=refund.public_id,
            result=result_from,
            actor=context.actor,
            now=context.now,
            event_id=event.provider_event_id,
        )
    if result.conflict:
        payment_flag(
            payment_id=refund.payment.public_id,
            reason=FLAG_PROVIDER_CONFLICT,
            reference=f"{result_from.id}:{result_from.status}",
            actor=context.actor,
            now=context.now,
            data={
                "refund_id": refund.public_id,
                "provider_refund_id": result_from.id,
                "provider_status": result_from.status,
                "status": result.refund.status,
            },
            event_id=event.provider_event_id,
        )
        return FLAGGED
    return APPLIED if result.changed else NO_CHANGE


def handle_charge_refunded(context: HandlerContext) -> str:
    """charge.refunded: settle our refunds of that payment still pending, each from the provider's word.

    The charge says how much was refunded, not which refund settled; each refund's own state is
    read from the provider (refund.* events usually settled them already: then nothing is pending).
    """
    intent_id = context.object.get("payment_intent")
    payment, _ = _payment_for_intent(
        context, intent_id=intent_id if isinstance(intent_id, str) else "", metadata=context.metadata
    )
    changed = flagged = False
    for refund_id, provider_refund_id in refund_ids_pending_at_provider(payment_id=payment.public_id):
        refund = refund_find(refund_id=refund_id)
        outcome = _reconcile_refund(context, refund=refund, provider_refund_id=provider_refund_id, snapshot=None)
        changed |= outcome == APPLIED
        flagged |= outcome == FLAGGED
    return FLAGGED if flagged else APPLIED if changed else NO_CHANGE


# --- disputes ---------------------------------------------------------------------------------------
def handle_dispute_created(context: HandlerContext) -> str:
    """charge.dispute.created: flag the payment for ops (evidence is due within days; money is held).

    Only ids and the amount are read, so the snapshot serves whatever its API version.

    :raises WebhookEventNotYetKnown: if no payment of ours is bound to the disputed intent (parked
        for ops after the retries: a dispute must never go unseen)
    """
    obj = context.object
    intent_id = obj.get("payment_intent")
    payment = payment_find(provider=PROVIDER, provider_payment_id=intent_id) if isinstance(intent_id, str) else None
    if payment is None:
        raise WebhookEventNotYetKnown(f"dispute {context.event.object_id}: no payment of ours has intent {intent_id}")
    context.payment_id = payment.public_id
    payment_flag(
        payment_id=payment.public_id,
        reason=FLAG_DISPUTE,
        reference=context.event.object_id,
        actor=context.actor,
        now=context.now,
        data={
            "dispute_id": context.event.object_id,
            "amount": obj.get("amount"),
            "currency": obj.get("currency"),
            "dispute_reason": obj.get("reason"),
            "dispute_status": obj.get("status"),
        },
        event_id=context.event.provider_event_id,
    )
    return FLAGGED


def _snapshot(context: HandlerContext, read: Callable[[dict], Any]) -> Any:
    """The event's object as a result, or None when it must not be trusted (another API version, unreadable)."""
    if not context.snapshot_trusted:
        return None
    try:
        return read(context.object)
    except ValueError:
        return None


HANDLERS: dict[str, Callable[[HandlerContext], str]] = {
    provider.EVENT_INTENT_SUCCEEDED: handle_payment_intent,
    provider.EVENT_INTENT_PAYMENT_FAILED: handle_payment_intent,
    provider.EVENT_INTENT_CANCELED: handle_payment_intent,
    provider.EVENT_INTENT_REQUIRES_ACTION: handle_payment_intent,
    provider.EVENT_INTENT_PROCESSING: handle_payment_intent,
    provider.EVENT_INTENT_AMOUNT_CAPTURABLE_UPDATED: handle_payment_intent,
    provider.EVENT_CHARGE_REFUNDED: handle_charge_refunded,
    provider.EVENT_REFUND_CREATED: handle_refund,
    provider.EVENT_REFUND_UPDATED: handle_refund,
    provider.EVENT_REFUND_FAILED: handle_refund,
    provider.EVENT_CHARGE_DISPUTE_CREATED: handle_dispute_created,
}

# The event types a webhook endpoint should be subscribed to (its `enabled_events`) and the backfill
# asks the provider for (`types[]`): exactly those a handler acts on. Any other type that still arrives
# (an endpoint subscribed to `*` by hand) is stored as UNHANDLED_TYPE and never acted on.
WEBHOOK_EVENT_TYPES: tuple[str, ...] = tuple(sorted(HANDLERS))
