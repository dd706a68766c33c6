"""
The daily reconciliation report: our payments and refunds created on a day (UTC) against the
provider's PaymentIntents and refunds created that day, every difference stored as a
`ReconciliationMismatch` for ops (the admin, the dashboard, /metrics).

Matched by the provider's id, else by our id in the provider object's metadata (`payment_id`,
`refund_id`). A payment whose intent was created just across midnight is looked up by its id, and a
provider object naming a payment of ours created on another day is compared with it, so the day
boundary makes no mismatch. Statuses are compared through the mapping that applying a snapshot uses
(`payment_status_for_intent`, `REFUND_STATUSES`).

Idempotent per day: a re-run upserts that day's mismatches (unique on day, kind and ids: `INSERT …
ON CONFLICT DO UPDATE`, so two runs at once write one row), re-opens one that came back, and closes
the open ones that no longer hold. The provider is read first, with no transaction open; the writes
are one short transaction. A listing longer than RECONCILIATION_MAX_PAGES pages stores nothing
(a partial list would report what it did not read as missing) and fails the run for ops.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from payments.errors import PaymentsError
from payments.gateway.base import IntentResult, PaymentGateway, ProviderInvalidRequest, RefundResult
from payments.models import Payment, ReconciliationMismatch, Refund
from payments.services.dispatch import _gateway, provider_call
from payments.services.sync import REFUND_STATUSES, payment_status_for_intent

logger = structlog.get_logger(__name__)
K = ReconciliationMismatch.Kind
S = Payment.Status
PAGE_SIZE = 100
_PAYMENT_ID = re.compile(r"pay_[0-9A-HJKMNP-TV-Z]{26}")  # our public ids (payments.models.base)
_REFUND_ID = re.compile(r"re_[0-9A-HJKMNP-TV-Z]{26}")
# Never sent, so the provider cannot have them: a payment still pending or canceled before it left,
# or one the provider refused outright (a 4xx that created nothing).
NOT_SENT = (S.PENDING, S.CANCELED, S.FAILED)


class ReconciliationIncomplete(PaymentsError):
    code, http_status = "reconciliation_incomplete", 503


@dataclass(frozen=True)
class Finding:
    kind: str
    payment_public_id: str = ""
    refund_public_id: str = ""
    provider_id: str = ""
    ours: dict | None = None
    theirs: dict | None = None

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (self.kind, self.payment_public_id, self.refund_public_id, self.provider_id)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day as [start, end)."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _list_all(fetch: Callable[[str | None], tuple[list, bool]], *, what: str) -> list:
    """Every object of a paginated provider list, newest first, within RECONCILIATION_MAX_PAGES."""
    items: list = []
    after = None
    for _ in range(settings.RECONCILIATION_MAX_PAGES):
        page, has_more = fetch(after)
        items += page
        if not has_more or not page:
            return items
        after = page[-1].id
    raise ReconciliationIncomplete(f"more {what} than RECONCILIATION_MAX_PAGES pages: nothing was stored")


def _unless_missing(call: Callable, operation: str, guards):
    """One object read by id, or None when the provider has no such object (a definitive 4xx)."""
    try:
        return provider_call(operation, call, guards=guards)
    except ProviderInvalidRequest:
        return None


def _payment_view(payment: Payment) -> dict:
    return {
        "status": payment.status,
        "amount": payment.amount,
        "amount_received": payment.amount_received,
        "currency": payment.currency,
        "provider_payment_id": payment.provider_payment_id or "",
    }


def _intent_view(intent: IntentResult, status: str | None) -> dict:
    return {
        "id": intent.id,
        "status": intent.status,
        "maps_to": status or "",
        "amount": intent.amount,
        "amount_received": intent.amount_received,
        "currency": intent.currency,
    }


def _refund_view(refund: Refund) -> dict:
    return {
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.payment.currency,
        "provider_refund_id": refund.provider_refund_id or "",
    }


def _provider_refund_view(refund: RefundResult) -> dict:
    return {
        "id": refund.id,
        "status": refund.status,
        "maps_to": REFUND_STATUSES.get(refund.status, ""),
        "amount": refund.amount,
        "currency": refund.currency,
        "payment_intent": refund.payment_intent,
    }


def _payment_findings(payment: Payment, intent: IntentResult) -> Iterator[Finding]:
    ids = {"payment_public_id": payment.public_id, "provider_id": intent.id}
    theirs_status = payment_status_for_intent(intent=intent, current=payment.status)
    ours, theirs = _payment_view(payment), _intent_view(intent, theirs_status)
    received_differs = (
        payment.status == S.SUCCEEDED
        and theirs_status == S.SUCCEEDED
        and (payment.amount_received != intent.amount_received)
    )
    if payment.amount != intent.amount or received_differs:
        yield Finding(kind=K.PAYMENT_AMOUNT, ours=ours, theirs=theirs, **ids)
    if payment.currency != intent.currency:
        yield Finding(kind=K.PAYMENT_CURRENCY, ours=ours, theirs=theirs, **ids)
    if theirs_status != payment.status:
        yield Finding(kind=K.PAYMENT_STATUS, ours=ours, theirs=theirs, **ids)


def _refund_findings(refund: Refund, theirs: RefundResult) -> Iterator[Finding]:
    ids = {
        "payment_public_id": refund.payment.public_id,
        "refund_public_id": refund.public_id,
        "provider_id": theirs.id,
    }
    ours_view, theirs_view = _refund_view(refund), _provider_refund_view(theirs)
    if refund.amount != theirs.amount:
        yield Finding(kind=K.REFUND_AMOUNT, ours=ours_view, theirs=theirs_view, **ids)
    if theirs.currency and refund.payment.currency != theirs.currency:
        yield Finding(kind=K.REFUND_CURRENCY, ours=ours_view, theirs=theirs_view, **ids)
    if REFUND_STATUSES.get(theirs.status) != refund.status:
        yield Finding(kind=K.REFUND_STATUS, ours=ours_view, theirs=theirs_view, **ids)


def _compare_payments(
    *, start: datetime, end: datetime, gateway: PaymentGateway, guards, counts: Counter
) -> list[Finding]:
    gte, lt = int(start.timestamp()), int(end.timestamp())

    def fetch(after):
        page = provider_call(
            "intents_list",
            lambda: gateway.intents_list_created(gte=gte, lt=lt, starting_after=after, limit=PAGE_SIZE),
            guards=guards,
        )
        return page.intents, page.has_more

    intents = _list_all(fetch, what="intents")
    by_id = {intent.id: intent for intent in intents}
    by_ours = {intent.metadata.get("payment_id"): intent for intent in intents if intent.metadata.get("payment_id")}
    findings: list[Finding] = []
    matched: set[str] = set()
    ours = Payment.objects.filter(created_at__gte=start, created_at__lt=end).order_by("id")
    for payment in ours.iterator():
        counts["payments"] += 1
        intent = by_id.get(payment.provider_payment_id or "") or by_ours.get(payment.public_id)
        if intent is None and payment.provider_payment_id:
            # Its intent may have been created just after midnight: ask for it by id.
            intent = _unless_missing(
                lambda i=payment.provider_payment_id: gateway.intent_retrieve(intent_id=i), "intent_retrieve", guards
            )
        if intent is None:
            if payment.status not in NOT_SENT:
                findings.append(
                    Finding(
                        kind=K.PAYMENT_MISSING_AT_PROVIDER,
                        payment_public_id=payment.public_id,
                        ours=_payment_view(payment),
                    )
                )
            continue
        matched.add(intent.id)
        findings += _payment_findings(payment, intent)
    # The provider's intents of the day no payment of that day took: ours from another day, or missing here.
    rest = [intent for intent in intents if intent.id not in matched]
    counts["intents"] = len(intents)
    bound = {p.provider_payment_id: p for p in Payment.objects.filter(provider_payment_id__in=[i.id for i in rest])}
    named = {
        p.public_id: p for p in Payment.objects.filter(public_id__in=[i.metadata.get("payment_id", "") for i in rest])
    }
    for intent in rest:
        payment_id = intent.metadata.get("payment_id", "")
        payment = bound.get(intent.id) or named.get(payment_id)
        if payment is not None:
            findings += _payment_findings(payment, intent)
        elif _PAYMENT_ID.fullmatch(payment_id):
            findings.append(
                Finding(
                    kind=K.PAYMENT_MISSING_HERE,
                    payment_public_id=payment_id,
                    provider_id=intent.id,
                    theirs=_intent_view(intent, None),
                )
            )
        else:
            counts["intents_not_ours"] += 1  # made outside this system, naming no payment of ours
    return findings


def _compare_refunds(
    *, start: datetime, end: datetime, gateway: PaymentGateway, guards, counts: Counter
) -> list[Finding]:
    gte, lt = int(start.timestamp()), int(end.timestamp())

    def fetch(after):
        page = provider_call(
            "refunds_list",
            lambda: gateway.refunds_list_created(gte=gte, lt=lt, starting_after=after, limit=PAGE_SIZE),
            guards=guards,
        )
        return page.refunds, page.has_more

    theirs = _list_all(fetch, what="refunds")
    by_id = {refund.id: refund for refund in theirs}
    by_ours = {r.metadata.get("refund_id"): r for r in theirs if r.metadata.get("refund_id")}
    findings: list[Finding] = []
    matched: set[str] = set()
    ours = Refund.objects.filter(created_at__gte=start, created_at__lt=end).select_related("payment").order_by("id")
    for refund in ours.iterator():
        counts["refunds"] += 1
        result = by_id.get(refund.provider_refund_id or "") or by_ours.get(refund.public_id)
        if result is None and refund.provider_refund_id:
            result = _unless_missing(
                lambda r=refund.provider_refund_id: gateway.refund_retrieve(refund_id=r), "refund_retrieve", guards
            )
        if result is None:
            if refund.status == Refund.Status.SUCCEEDED:  # pending and failed ones may never have been sent
                findings.append(
                    Finding(
                        kind=K.REFUND_MISSING_AT_PROVIDER,
                        payment_public_id=refund.payment.public_id,
                        refund_public_id=refund.public_id,
                        ours=_refund_view(refund),
                    )
                )
            continue
        matched.add(result.id)
        findings += _refund_findings(refund, result)
    rest = [r for r in theirs if r.id not in matched]
    counts["provider_refunds"] = len(theirs)
    known = {
        r.provider_refund_id: r
        for r in Refund.objects.filter(provider_refund_id__in=[r.id for r in rest]).select_related("payment")
    }
    named = {
        r.public_id: r
        for r in Refund.objects.filter(public_id__in=[r.metadata.get("refund_id", "") for r in rest]).select_related(
            "payment"
        )
    }
    our_intents = dict(
        Payment.objects.filter(
            provider_payment_id__in=[r.payment_intent for r in rest if r.payment_intent]
        ).values_list("provider_payment_id", "public_id")
    )
    for result in rest:
        refund_id = result.metadata.get("refund_id", "")
        refund = known.get(result.id) or named.get(refund_id)
        if refund is not None:
            findings += _refund_findings(refund, result)
        elif _REFUND_ID.fullmatch(refund_id) or result.payment_intent in our_intents:
            # Ours by its metadata, or a refund of one of our payments made elsewhere (the dashboard).
            findings.append(
                Finding(
                    kind=K.REFUND_MISSING_HERE,
                    payment_public_id=our_intents.get(result.payment_intent, ""),
                    refund_public_id=refund_id if _REFUND_ID.fullmatch(refund_id) else "",
                    provider_id=result.id,
                    theirs=_provider_refund_view(result),
                )
            )
        else:
            counts["refunds_not_ours"] += 1
    return findings


def reconciliation_report_run(
    *, day: date, now: datetime, gateway: PaymentGateway | None = None, guards=None
) -> dict[str, int]:
    """
    Compare our payments and refunds created on `day` (UTC) with the provider's, and store the
    differences: new ones opened, recurring ones updated (or re-opened), those that no longer hold
    closed. Return the counts of what it compared and found.

    :raises ReconciliationIncomplete: if the provider's list for the day is longer than
        RECONCILIATION_MAX_PAGES pages (nothing is stored)
    :raises RetryLater, GiveUp, ProviderError: if the provider could not be read (nothing is stored)
    """
    gateway = _gateway(gateway)
    start, end = day_bounds(day)
    counts: Counter[str] = Counter()
    findings = _compare_payments(start=start, end=end, gateway=gateway, guards=guards, counts=counts)
    findings += _compare_refunds(start=start, end=end, gateway=gateway, guards=guards, counts=counts)
    unique = {finding.identity: finding for finding in findings}
    opened_before = set(
        ReconciliationMismatch.objects.filter(day=day, resolved_at__isnull=True).values_list(
            "kind", "payment_public_id", "refund_public_id", "provider_id"
        )
    )
    with transaction.atomic(durable=True):
        ReconciliationMismatch.objects.bulk_create(
            [
                ReconciliationMismatch(
                    day=day,
                    kind=f.kind,
                    payment_public_id=f.payment_public_id,
                    refund_public_id=f.refund_public_id,
                    provider_id=f.provider_id,
                    ours=f.ours or {},
                    theirs=f.theirs or {},
                    created_at=now,
                    updated_at=now,
                    resolved_at=None,
                )
                for f in unique.values()
            ],
            update_conflicts=True,
            unique_fields=["day", "kind", "payment_public_id", "refund_public_id", "provider_id"],
            update_fields=["ours", "theirs", "updated_at", "resolved_at"],
        )
        still_open = Q()
        for kind, payment_id, refund_id, provider_id in unique:
            still_open |= Q(
                kind=kind, payment_public_id=payment_id, refund_public_id=refund_id, provider_id=provider_id
            )
        stale = ReconciliationMismatch.objects.filter(day=day, resolved_at__isnull=True)
        if unique:
            stale = stale.exclude(still_open)
        closed = stale.update(resolved_at=now, updated_at=now)
    counts["mismatches_open"] = len(unique)
    counts["mismatches_new"] = len(set(unique) - opened_before)
    counts["mismatches_closed"] = closed
    for finding in unique.values():
        counts[f"open_{finding.kind.lower()}"] += 1
    logger.info("reconciliation_report", day=day.isoformat(), **counts)
    return dict(counts)


def reconciliation_report_days(*, now: datetime, gateway: PaymentGateway | None = None, guards=None) -> dict[str, int]:
    """
    Run the report for each of the last RECONCILIATION_REPORT_DAYS complete UTC days, yesterday first:
    a day is reported again the next day, so what the janitor or a webhook fixed since is closed.
    """
    today = now.astimezone(UTC).date()
    totals: Counter[str] = Counter()
    for back in range(1, settings.RECONCILIATION_REPORT_DAYS + 1):
        counts = reconciliation_report_run(day=today - timedelta(days=back), now=now, gateway=gateway, guards=guards)
        totals.update(counts)
        totals["days"] += 1
    return dict(totals)
