"""
Authorizations about to expire: a card authorization left uncaptured is released by the provider after
7 days, and the money the merchant meant to collect with it is gone. Before that, capture or cancel it
as AUTHORIZATION_EXPIRY_ACTION says, through the same services the API uses, so a worker makes the
provider call and the timeline says the janitor asked, and why.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings

from payments.errors import IllegalPaymentState
from payments.models import Payment
from payments.services.janitor import JANITOR
from payments.services.payments import Actor, payment_cancel_request, payment_capture_request

EXPIRY_REASON = "Authorization about to expire at the provider"


def authorizations_expiring_settle(*, now: datetime) -> dict[str, int]:
    """
    Capture or cancel (AUTHORIZATION_EXPIRY_ACTION) up to JANITOR_BATCH_SIZE payments still awaiting
    capture AUTHORIZATION_EXPIRY_AGE_SECONDS after they were created; return the counts.

    Safe with two runs at once: each service locks the payment and refuses one no longer awaiting
    capture, which is counted as skipped (the other run, or a client, got there first).
    """
    action = settings.AUTHORIZATION_EXPIRY_ACTION
    # The authorization happens at confirmation, which we send right after creation: created_at is
    # when the provider's 7 days started, give or take the outbox's first attempts.
    cutoff = now - timedelta(seconds=settings.AUTHORIZATION_EXPIRY_AGE_SECONDS)
    payment_ids = list(
        Payment.objects.filter(status=Payment.Status.REQUIRES_CAPTURE, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("public_id", flat=True)[: settings.JANITOR_BATCH_SIZE]
    )
    actor = Actor(source=JANITOR.source, name=JANITOR.name, reason=f"{EXPIRY_REASON}: {action}")
    counts: Counter[str] = Counter()
    for payment_id in payment_ids:
        try:
            if action == "capture":
                payment_capture_request(client=None, payment_id=payment_id, amount=None, actor=actor, now=now)
            else:
                payment_cancel_request(client=None, payment_id=payment_id, actor=actor, now=now)
        except IllegalPaymentState:
            counts["skipped"] += 1
        else:
            counts[f"{action}_requested"] += 1
    return {"expiring": len(payment_ids), **counts}
