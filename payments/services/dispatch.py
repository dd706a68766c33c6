"""
Worker services: each sends one command to the provider, in three phases (STYLE §1.2, Rocket Rides):

1. lock our row, claim it (a timeline entry), commit;
2. call the provider with no transaction open and no row lock held, under the shared rate limit
   and circuit breaker, with the idempotency key derived from our row;
3. lock again and apply what the provider said (`payments.services.sync`), commit.

Every phase is safe to re-run: phase 1 is re-entrant, phase 2 repeats the same request (same key),
phase 3 only moves forward. A failure that may have reached the provider never fails the payment:
it becomes `RetryLater`, and the outbox row keeps the schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from django.conf import settings
from django.db import transaction

from outbox.errors import GiveUp, RetryLater
from payments.gateway.base import (
    IntentResult,
    PaymentGateway,
    ProviderAuthError,
    ProviderDeclined,
    ProviderError,
    ProviderIdempotencyConflict,
    ProviderInvalidRequest,
)
from payments.models import Payment, PaymentEvent, Refund
from payments.selectors import payment_get_for_update
from payments.services.events import payment_capture_number, payment_event_create
from payments.services.payments import Actor
from payments.services.sync import (
    CAPTURE_REFUSED,
    WAITING_ON_PROVIDER,
    payment_apply_failure,
    payment_apply_intent,
    refund_apply_result,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
WORKER = Actor(source=PaymentEvent.Source.WORKER, name="worker")
S = Payment.Status
# Stripe keeps idempotency keys for at least 24 hours; past this age a retry might create a second
# intent, so the worker first looks the intent up by our payment id (metadata) instead.
# https://docs.stripe.com/api/idempotent_requests
IDEMPOTENCY_KEY_SAFE_AGE = timedelta(hours=23)


def _gateway(gateway: PaymentGateway | None) -> PaymentGateway:
    if gateway is not None:
        return gateway
    from payments.gateway.stripe import get_gateway

    return get_gateway()


def _guards():
    from payments.gateway.limits import get_circuit_breaker, get_rate_limiter

    return get_rate_limiter(), get_circuit_breaker()


def provider_call(operation: str, call: Callable[[], T], *, guards=None) -> T:
    """
    Make one provider call under the shared rate limit and circuit breaker.

    :raises RetryLater: without consuming an attempt when no token is free or the breaker is open;
        with one for a retryable provider error (its Retry-After as the floor)
    :raises GiveUp: for an idempotency key reused with other parameters (a bug; ops must look)
    :raises ProviderDeclined, ProviderInvalidRequest: definitive answers, for the caller to apply
    """
    limiter, breaker = guards or _guards()
    wait = limiter.acquire(operation=operation)
    if wait:
        raise RetryLater(
            f"provider rate limit: next token in {wait:.3f}s",
            error_type="rate_limiter",
            retry_after=wait,
            count_attempt=False,
        )
    allowed, retry_in = breaker.allow()
    if not allowed:
        raise RetryLater(
            "the provider's circuit breaker is open",
            error_type="circuit_open",
            retry_after=retry_in,
            count_attempt=False,
        )
    with structlog.contextvars.bound_contextvars(operation=operation):
        try:
            result = call()
        except ProviderError as exc:
            breaker.record_outcome(error=exc)  # the one place that says which errors mean "unwell"
            _raise_for_outbox(exc)
            raise
    breaker.record_outcome(error=None)
    return result


def _raise_for_outbox(exc: ProviderError) -> None:
    """Turn a provider error the outbox must act on into its instruction; return for definitive answers."""
    if isinstance(exc, ProviderAuthError):
        # The breaker is now tripped for every worker: this row waits it out without spending an attempt.
        logger.critical("the provider refused our credentials (%s); provider calls are paused", exc.status)
        raise RetryLater(
            "the provider refused our credentials",
            error_type=exc.error_type,
            retry_after=settings.PROVIDER_BREAKER_AUTH_TRIP_SECONDS,
            count_attempt=False,
        ) from exc
    if isinstance(exc, ProviderIdempotencyConflict) and not exc.in_flight:
        raise GiveUp(f"idempotency key reused with other parameters: {exc.message}", error_type=exc.error_type) from exc
    if exc.retryable:
        in_flight_wait = 1.0 if isinstance(exc, ProviderIdempotencyConflict) else None
        raise RetryLater(
            exc.message, error_type=exc.error_type, retry_after=getattr(exc, "retry_after", None) or in_flight_wait
        ) from exc


def payment_submit(*, payment_id: str, now: datetime, gateway: PaymentGateway | None = None, guards=None) -> Payment:
    """
    Send a stored payment to the provider (create and confirm its intent) and record the outcome.

    :raises RetryLater: if the outcome is not known yet (the payment stays processing)
    """
    with transaction.atomic(durable=True):  # phase 1: claim
        payment = payment_get_for_update(client=None, payment_id=payment_id)
        if payment.status == S.PENDING:
            held = payment.field_values()
            payment.mark_processing()
            payment.save_changed(since=held)
            payment_event_create(
                payment=payment,
                type="payment.submitted",
                source=WORKER.source,
                actor=WORKER.name,
                idempotency_key="submitted",
                now=now,
                from_status=S.PENDING,
            )
        elif payment.provider_payment_id or payment.status != S.PROCESSING:
            return payment  # already known at the provider, or settled or canceled: nothing to send
    gateway = _gateway(gateway)
    with structlog.contextvars.bound_contextvars(payment_id=payment.public_id):  # phase 2: no transaction open
        intent: IntentResult | None = None
        if now - payment.created_at > IDEMPOTENCY_KEY_SAFE_AGE:
            intent = provider_call(
                "intent_find", lambda: gateway.intent_find(payment_id=payment.public_id), guards=guards
            )
        try:
            if intent is None:
                intent = provider_call(
                    "intent_create",
                    lambda: gateway.intent_create_and_confirm(
                        payment_id=payment.public_id,
                        amount=payment.amount,
                        currency=payment.currency,
                        payment_method=payment.payment_method,
                        capture_method=payment.capture_method,
                        description=payment.description,
                        idempotency_key=payment.provider_idempotency_key("create"),
                    ),
                    guards=guards,
                )
        except ProviderDeclined as exc:
            if exc.intent is not None:
                return payment_apply_intent(payment_id=payment.public_id, intent=exc.intent, actor=WORKER, now=now)
            return payment_apply_failure(
                payment_id=payment.public_id, failure_code=exc.code, failure_message=exc.message, actor=WORKER, now=now
            )
        except ProviderInvalidRequest as exc:  # refused before anything was created (e.g. an unknown method)
            return payment_apply_failure(
                payment_id=payment.public_id,
                failure_code=exc.code or "invalid_request",
                failure_message=exc.message,
                actor=WORKER,
                now=now,
            )
    return payment_apply_intent(payment_id=payment.public_id, intent=intent, actor=WORKER, now=now)  # phase 3


def _known_intent_id(payment: Payment, gateway: PaymentGateway, guards, now: datetime) -> str:
    """The payment's intent id; if the create's answer was lost, found by our payment id.

    :raises RetryLater: if no intent is known yet (the create may still be on its way)
    """
    if payment.provider_payment_id:
        return payment.provider_payment_id
    found = provider_call("intent_find", lambda: gateway.intent_find(payment_id=payment.public_id), guards=guards)
    if found is None:
        raise RetryLater("the payment's intent is not known yet", error_type="intent_unknown")
    payment_apply_intent(
        payment_id=payment.public_id, intent=found, actor=WORKER, now=datetime.now(tz=payment.created_at.tzinfo)
    )
    return found.id


def payment_capture(*, payment_id: str, now: datetime, gateway: PaymentGateway | None = None, guards=None) -> Payment:
    """
    Capture an authorization the client asked to capture (status CAPTURE_REQUESTED).

    :raises RetryLater: if the outcome is not known yet
    """
    with transaction.atomic(durable=True):  # phase 1: re-entrant: a retry finds CAPTURE_REQUESTED again
        payment = payment_get_for_update(client=None, payment_id=payment_id)
        if payment.status != S.CAPTURE_REQUESTED:
            return payment
        number = payment_capture_number(payment=payment)
    # Each capture request is its own provider request (a refused one must not be replayed for the next).
    capture_key = payment.provider_idempotency_key("capture" if number <= 1 else f"capture:{number}")
    gateway = _gateway(gateway)
    with structlog.contextvars.bound_contextvars(payment_id=payment.public_id):
        intent_id = _known_intent_id(payment, gateway, guards, now)
        amount = payment.amount_to_capture if payment.amount_to_capture != payment.amount_capturable else None
        try:
            intent = provider_call(
                "intent_capture",
                lambda: gateway.intent_capture(intent_id=intent_id, amount=amount, idempotency_key=capture_key),
                guards=guards,
            )
        except (ProviderDeclined, ProviderInvalidRequest) as exc:
            # Refused (expired authorization, wrong state): don't trust our view; apply the provider's.
            logger.info("capture of %s refused (%s); reading the intent", payment.public_id, exc.error_type)
            intent = provider_call(
                "intent_retrieve", lambda: gateway.intent_retrieve(intent_id=intent_id), guards=guards
            )
            return payment_apply_intent(
                payment_id=payment.public_id, intent=intent, actor=WORKER, now=now, cause=CAPTURE_REFUSED
            )
    return payment_apply_intent(payment_id=payment.public_id, intent=intent, actor=WORKER, now=now)


def payment_cancel(*, payment_id: str, now: datetime, gateway: PaymentGateway | None = None, guards=None) -> Payment:
    """
    Cancel at the provider a payment the client asked to cancel (status CANCEL_REQUESTED).

    :raises RetryLater: if the outcome is not known yet, or the intent is not known yet
    :raises GiveUp: if the provider refuses and still holds the payment open (ops decide)
    """
    with transaction.atomic(durable=True):
        payment = payment_get_for_update(client=None, payment_id=payment_id)
        if payment.status != S.CANCEL_REQUESTED:
            return payment
    gateway = _gateway(gateway)
    with structlog.contextvars.bound_contextvars(payment_id=payment.public_id):
        intent_id = _known_intent_id(payment, gateway, guards, now)
        try:
            intent = provider_call(
                "intent_cancel",
                lambda: gateway.intent_cancel(
                    intent_id=intent_id, idempotency_key=payment.provider_idempotency_key("cancel")
                ),
                guards=guards,
            )
        except (ProviderDeclined, ProviderInvalidRequest) as exc:
            intent = provider_call(
                "intent_retrieve", lambda: gateway.intent_retrieve(intent_id=intent_id), guards=guards
            )
            payment = payment_apply_intent(
                payment_id=payment.public_id, intent=intent, actor=WORKER, now=now, cause="cancel_refused"
            )
            if payment.status == S.CANCEL_REQUESTED:
                raise GiveUp(
                    f"the provider refused to cancel {payment.public_id} ({exc.error_type}) and the intent is "
                    f"{intent.status}",
                    error_type="cancel_refused",
                ) from exc
            return payment
    return payment_apply_intent(payment_id=payment.public_id, intent=intent, actor=WORKER, now=now)


def refund_submit(*, refund_id: str, now: datetime, gateway: PaymentGateway | None = None, guards=None) -> Refund:
    """
    Send a refund to the provider and record the outcome; a definitive refusal fails the refund
    and gives its amount back to the payment.

    :raises RetryLater: if the outcome is not known yet
    """
    refund = Refund.objects.select_related("payment").get(public_id=refund_id)
    if refund.status != Refund.Status.PENDING or refund.provider_refund_id:
        return refund  # settled, or known at the provider (a webhook or the janitor finishes it)
    payment = refund.payment
    gateway = _gateway(gateway)
    with structlog.contextvars.bound_contextvars(payment_id=payment.public_id, refund_id=refund.public_id):
        try:
            result = provider_call(
                "refund_create",
                lambda: gateway.refund_create(
                    intent_id=payment.provider_payment_id,
                    refund_id=refund.public_id,
                    payment_id=payment.public_id,
                    amount=refund.amount,
                    reason=refund.reason,
                    idempotency_key=refund.provider_idempotency_key("create"),
                ),
                guards=guards,
            )
        except (ProviderDeclined, ProviderInvalidRequest) as exc:
            return refund_apply_result(
                refund_id=refund.public_id,
                result=None,
                failure_reason=getattr(exc, "code", "") or exc.error_type,
                actor=WORKER,
                now=now,
            )
    return refund_apply_result(refund_id=refund.public_id, result=result, actor=WORKER, now=now)


def payment_sync(*, payment_id: str, now: datetime, gateway: PaymentGateway | None = None, guards=None) -> Payment:
    """
    Ask the provider where a payment waiting on it (or on the customer's 3-D Secure) stands, and apply it.

    Follows the payment for PAYMENT_FOLLOW_UP_SECONDS after it was created, polling less often as
    it ages; past that, webhooks and the janitor settle it.

    :raises RetryLater: while the payment is still waiting (no attempt consumed)
    """
    payment = Payment.objects.get(public_id=payment_id)
    if payment.status not in WAITING_ON_PROVIDER:
        return payment
    gateway = _gateway(gateway)
    with structlog.contextvars.bound_contextvars(payment_id=payment.public_id):
        intent_id = _known_intent_id(payment, gateway, guards, now)
        intent = provider_call("intent_retrieve", lambda: gateway.intent_retrieve(intent_id=intent_id), guards=guards)
    payment = payment_apply_intent(payment_id=payment.public_id, intent=intent, actor=WORKER, now=now)
    age = (now - payment.created_at).total_seconds()
    if payment.status in WAITING_ON_PROVIDER and age < settings.PAYMENT_FOLLOW_UP_SECONDS:
        raise RetryLater(
            f"the payment is still {payment.public_status} at the provider",
            error_type="awaiting_provider",
            retry_after=min(max(age / 10, 1.0), 300.0),  # often at first, when a customer is most likely done
            count_attempt=False,
        )
    return payment
