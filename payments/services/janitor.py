"""
The janitor: payments and refunds left waiting on the provider longer than a threshold per state are
looked up there and settled to the provider's truth through the services webhooks and workers use
(`payment_apply_intent`, `refund_apply_result`), with the timeline source `reconciliation`.

Safe with two beats at once: candidates are claimed in one short transaction (`FOR UPDATE SKIP
LOCKED`) that pushes each one's next look-up time along its back-off (JANITOR_BACKOFF_SECONDS), and
the provider is asked after that commit, with no transaction open (STYLE §1.2). A second run skips
the rows being claimed and finds the claimed ones not due. Bounded by JANITOR_BATCH_SIZE per run.

What the provider cannot settle is never failed here: a payment processing with no intent at the
provider past the idempotency window, a command owed to the provider for as long, or a provider that
refuses to answer, stays as it is and is flagged for ops (`payment_flag`).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When

from outbox.errors import GiveUp, RetryLater
from payments.gateway.base import IntentResult, PaymentGateway, ProviderError
from payments.models import Payment, PaymentEvent, Refund
from payments.services.dispatch import IDEMPOTENCY_KEY_SAFE_AGE, _gateway, provider_call
from payments.services.flags import payment_flag
from payments.services.payments import Actor
from payments.services.sync import payment_apply_intent, refund_apply_result

logger = logging.getLogger(__name__)
S = Payment.Status
JANITOR = Actor(source=PaymentEvent.Source.RECONCILIATION, name="janitor")
# A command we asked for that the provider's intent shows not done yet: the worker still owes it (its
# outbox row is waiting or dead). Applying the intent would undo the request, so the janitor never does.
OWED = {
    S.CAPTURE_REQUESTED: ("requires_capture",),
    S.CANCEL_REQUESTED: ("requires_capture", "requires_action", "processing", "requires_payment_method"),
}


def _backoff_case(now: datetime) -> Case:
    """The next look-up time for a row by how many look-ups it had: 5 min, 1 h, then daily (the last repeats)."""
    schedule = [timedelta(seconds=seconds) for seconds in settings.JANITOR_BACKOFF_SECONDS]
    return Case(
        *(When(checks=index, then=Value(now + wait)) for index, wait in enumerate(schedule)),
        default=Value(now + schedule[-1]),
    )


def _due(now: datetime) -> Q:
    return Q(next_check_at__isnull=True) | Q(next_check_at__lte=now)


def _claim(queryset, *, now: datetime, batch_size: int) -> list[str]:
    """Lock up to `batch_size` due rows no one else holds, push their next look-up, commit; return their ids."""
    with transaction.atomic(durable=True):
        rows = list(
            queryset.filter(_due(now))
            .select_for_update(skip_locked=True)
            .order_by(F("next_check_at").asc(nulls_first=True), "id")
            .values_list("pk", "public_id")[:batch_size]
        )
        if rows:
            queryset.model.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                next_check_at=_backoff_case(now), checks=F("checks") + 1
            )
    return [public_id for _, public_id in rows]


def payments_claim_for_check(*, now: datetime, batch_size: int) -> list[str]:
    """Claim the payments waiting on the provider longer than their state's threshold; return their public ids."""
    stuck = Q(pk__in=[])
    for status, seconds in settings.JANITOR_PAYMENT_AFTER_SECONDS.items():
        stuck |= Q(status=status, updated_at__lt=now - timedelta(seconds=seconds))
    return _claim(Payment.objects.filter(stuck), now=now, batch_size=batch_size)


def refunds_claim_for_check(*, now: datetime, batch_size: int) -> list[str]:
    """Claim the refunds pending longer than JANITOR_REFUND_AFTER_SECONDS; return their public ids."""
    cutoff = now - timedelta(seconds=settings.JANITOR_REFUND_AFTER_SECONDS)
    return _claim(
        Refund.objects.filter(status=Refund.Status.PENDING, updated_at__lt=cutoff), now=now, batch_size=batch_size
    )


def _error_type(exc: Exception) -> str:
    return getattr(exc, "error_type", type(exc).__name__)


def payment_check(*, payment_id: str, now: datetime, gateway: PaymentGateway | None = None, guards=None) -> str:
    """
    Look the payment up at the provider (by intent id, else by `metadata['payment_id']`) and apply what
    it says; flag it for ops when the provider cannot settle it. Return what happened: `settled`,
    `unchanged`, `not_found`, `owed`, `error` or `skipped` (settled since it was claimed).
    """
    payment = Payment.objects.get(public_id=payment_id)
    if payment.status not in settings.JANITOR_PAYMENT_AFTER_SECONDS:
        return "skipped"
    gateway = _gateway(gateway)
    # How long the payment has been where it is: past the idempotency window nothing retries it safely.
    stuck_for = now - payment.updated_at
    try:
        intent: IntentResult | None
        if payment.provider_payment_id:
            intent_id = payment.provider_payment_id
            intent = provider_call(
                "intent_retrieve", lambda: gateway.intent_retrieve(intent_id=intent_id), guards=guards
            )
        else:
            intent = provider_call("intent_find", lambda: gateway.intent_find(payment_id=payment_id), guards=guards)
    except (RetryLater, GiveUp, ProviderError) as exc:
        definitive = isinstance(exc, GiveUp) or (isinstance(exc, ProviderError) and not exc.retryable)
        if definitive or stuck_for > IDEMPOTENCY_KEY_SAFE_AGE:
            payment_flag(
                payment_id=payment_id,
                reason=f"The janitor could not read the payment at the provider ({_error_type(exc)})",
                actor=JANITOR,
                now=now,
            )
        logger.info("janitor could not read payment %s at the provider (%s)", payment_id, _error_type(exc))
        return "error"
    if intent is None:
        # PENDING was never sent (its outbox row owns it). A payment sent and unknown to the provider past
        # the idempotency window may or may not have been created: only a person can decide.
        if payment.status != S.PENDING and stuck_for > IDEMPOTENCY_KEY_SAFE_AGE:
            payment_flag(
                payment_id=payment_id,
                reason="The provider has no intent for this payment and its outcome cannot be told",
                actor=JANITOR,
                now=now,
            )
        return "not_found"
    if intent.status in OWED.get(payment.status, ()):
        if stuck_for > IDEMPOTENCY_KEY_SAFE_AGE:
            payment_flag(
                payment_id=payment_id,
                reason=f"{payment.get_status_display()} and the provider's intent is still {intent.status}: retry it",
                actor=JANITOR,
                now=now,
            )
        return "owed"
    from_status = payment.status
    payment = payment_apply_intent(payment_id=payment_id, intent=intent, actor=JANITOR, now=now, cause="janitor")
    return "settled" if payment.status != from_status else "unchanged"


def refund_check(*, refund_id: str, now: datetime, gateway: PaymentGateway | None = None, guards=None) -> str:
    """
    Look a pending refund up at the provider and apply what it says. Return `settled`, `unchanged`,
    `not_found` (never answered: its outbox row still owns it), `error` or `skipped`.
    """
    refund = Refund.objects.get(public_id=refund_id)
    if refund.status != Refund.Status.PENDING:
        return "skipped"
    if not refund.provider_refund_id:
        return "not_found"
    gateway = _gateway(gateway)
    provider_refund_id = refund.provider_refund_id
    try:
        result = provider_call(
            "refund_retrieve", lambda: gateway.refund_retrieve(refund_id=provider_refund_id), guards=guards
        )
    except (RetryLater, GiveUp, ProviderError) as exc:
        logger.info("janitor could not read refund %s at the provider (%s)", refund_id, _error_type(exc))
        return "error"
    refund = refund_apply_result(refund_id=refund_id, result=result, actor=JANITOR, now=now)
    return "settled" if refund.status != Refund.Status.PENDING else "unchanged"


def janitor_run(*, now: datetime, gateway: PaymentGateway | None = None, guards=None) -> dict[str, int]:
    """
    Claim the payments and refunds due for a look-up and settle each to the provider's truth; return
    the counts of what happened (for the job's run record).
    """
    batch_size = settings.JANITOR_BATCH_SIZE
    counts: Counter[str] = Counter()
    payment_ids = payments_claim_for_check(now=now, batch_size=batch_size)
    for payment_id in payment_ids:
        counts[f"payments_{payment_check(payment_id=payment_id, now=now, gateway=gateway, guards=guards)}"] += 1
    refund_ids = refunds_claim_for_check(now=now, batch_size=batch_size)
    for refund_id in refund_ids:
        counts[f"refunds_{refund_check(refund_id=refund_id, now=now, gateway=gateway, guards=guards)}"] += 1
    return {"payments_checked": len(payment_ids), "refunds_checked": len(refund_ids), **counts}
