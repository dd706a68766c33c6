"""The janitor against the fake gateway (and, at the end, the sandbox): what it settles, what it flags, its back-off."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from outbox.errors import RetryLater
from payments.gateway.base import ProviderInvalidRequest, ProviderServerError, RefundResult
from payments.gateway.stripe import StripeGateway
from payments.models import Payment, PaymentEvent, Refund
from payments.services.dispatch import payment_submit
from payments.services.janitor import janitor_run
from tests.factories import PaymentFactory, RefundFactory, payment_with_status
from tests.fixtures.gateway import intent

pytestmark = pytest.mark.django_db
S = Payment.Status


def stuck(payment, *, for_: timedelta):
    """Make the payment (or refund) look unchanged for `for_` (updated_at is auto_now, so set it on the queryset)."""
    type(payment).objects.filter(pk=payment.pk).update(updated_at=timezone.now() - for_)
    payment.refresh_from_db()
    return payment


def run(gateway, guards, *, now=None):
    return janitor_run(now=now or timezone.now(), gateway=gateway, guards=guards)


def test_janitor_settles_a_processing_payment_whose_answer_was_lost_by_finding_its_intent_by_our_id(gateway, guards):
    payment = stuck(payment_with_status(S.PROCESSING, amount=2000), for_=timedelta(minutes=11))
    gateway.script("intent_find", intent("succeeded", id="pi_lost", metadata={"payment_id": payment.public_id}))

    counts = run(gateway, guards)

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED and payment.provider_payment_id == "pi_lost"
    assert gateway.called("intent_find") == [{"payment_id": payment.public_id}]
    event = payment.events.get(type="payment.succeeded")
    assert (event.source, event.actor, event.data["cause"]) == (
        PaymentEvent.Source.RECONCILIATION,
        "janitor",
        "janitor",
    )
    assert counts["payments_checked"] == 1 and counts["payments_settled"] == 1


def test_janitor_reads_a_payment_by_its_provider_id_when_it_has_one(gateway, guards):
    payment = stuck(payment_with_status(S.CANCEL_REQUESTED, provider_payment_id="pi_known"), for_=timedelta(minutes=11))
    gateway.script("intent_retrieve", intent("canceled", id="pi_known"))

    run(gateway, guards)

    payment.refresh_from_db()
    assert payment.status == S.CANCELED
    assert gateway.called("intent_retrieve") == [{"intent_id": "pi_known"}]


def test_janitor_leaves_payments_younger_than_their_states_threshold_alone(gateway, guards):
    stuck(payment_with_status(S.PROCESSING), for_=timedelta(minutes=9))
    stuck(payment_with_status(S.PENDING), for_=timedelta(minutes=29))
    stuck(payment_with_status(S.SUCCEEDED), for_=timedelta(days=3))

    counts = run(gateway, guards)

    assert gateway.calls == []
    assert counts["payments_checked"] == 0


def test_janitor_looks_a_payment_up_again_after_5_minutes_then_an_hour_then_daily(gateway, guards):
    payment = stuck(payment_with_status(S.PROCESSING, provider_payment_id="pi_slow"), for_=timedelta(minutes=11))
    gateway.script("intent_retrieve", intent("processing", id="pi_slow"))  # the provider cannot tell yet
    first = timezone.now()
    run(gateway, guards, now=first)
    due = first
    waits = [timedelta(minutes=5), timedelta(hours=1), timedelta(days=1), timedelta(days=1)]

    for wait in waits:
        due += wait
        before = len(gateway.calls)
        run(gateway, guards, now=due - timedelta(seconds=1))
        assert len(gateway.calls) == before, f"looked up before {wait} had passed"
        run(gateway, guards, now=due)
        assert len(gateway.calls) == before + 1, f"not looked up once {wait} had passed"

    payment.refresh_from_db()
    assert payment.checks == 1 + len(waits)
    assert payment.next_check_at == due + timedelta(days=1)


def test_janitor_flags_a_processing_payment_the_provider_never_saw_past_the_idempotency_window(gateway, guards):
    payment = stuck(payment_with_status(S.PROCESSING), for_=timedelta(hours=25))
    gateway.script("intent_find", None)
    now = timezone.now()

    run(gateway, guards, now=now)
    run(gateway, guards, now=now + timedelta(minutes=5))

    payment.refresh_from_db()
    assert payment.status == S.PROCESSING  # never auto-failed
    assert payment.flagged_at == now and "no intent" in payment.flag_reason
    (flagged,) = payment.events.filter(type="payment.flagged")
    assert flagged.source == PaymentEvent.Source.RECONCILIATION and flagged.to_status == S.PROCESSING


def test_janitor_does_not_flag_a_processing_payment_not_found_within_the_idempotency_window(gateway, guards):
    payment = stuck(payment_with_status(S.PROCESSING), for_=timedelta(hours=1))
    gateway.script("intent_find", None)

    counts = run(gateway, guards)

    payment.refresh_from_db()
    assert payment.status == S.PROCESSING and payment.flagged_at is None
    assert counts["payments_not_found"] == 1


def test_janitor_flags_a_payment_the_provider_refuses_to_read_and_only_backs_off_on_a_passing_error(gateway, guards):
    refused = stuck(payment_with_status(S.PROCESSING, provider_payment_id="pi_gone"), for_=timedelta(minutes=11))
    flaky = stuck(payment_with_status(S.PROCESSING, provider_payment_id="pi_flaky"), for_=timedelta(minutes=11))
    gateway.script("intent_retrieve", ProviderInvalidRequest("No such payment_intent", code="resource_missing"))
    gateway.script("intent_retrieve", ProviderServerError("boom", status=500))

    counts = run(gateway, guards)

    refused.refresh_from_db()
    flaky.refresh_from_db()
    assert refused.status == flaky.status == S.PROCESSING
    assert refused.flagged_at is not None and "invalid_request" in refused.flag_reason
    assert flaky.flagged_at is None and flaky.next_check_at is not None
    assert counts["payments_error"] == 2


def test_janitor_never_undoes_a_capture_the_worker_still_owes(gateway, guards):
    payment = stuck(payment_with_status(S.CAPTURE_REQUESTED, provider_payment_id="pi_held"), for_=timedelta(minutes=11))
    gateway.script("intent_retrieve", intent("requires_capture", id="pi_held"))

    counts = run(gateway, guards)

    payment.refresh_from_db()
    assert payment.status == S.CAPTURE_REQUESTED
    assert not payment.events.exists()
    assert counts["payments_owed"] == 1


def test_janitor_settles_a_pending_refund_from_the_provider(gateway, guards):
    paid = payment_with_status(S.SUCCEEDED, amount=2000, provider_payment_id="pi_paid")
    Payment.objects.filter(pk=paid.pk).update(amount_refunded=500)
    refund = stuck(RefundFactory(payment=paid, amount=500, provider_refund_id="re_prov"), for_=timedelta(minutes=11))
    gateway.script(
        "refund_retrieve", RefundResult(id="re_prov", status="succeeded", amount=500, payment_intent="pi_paid")
    )

    counts = run(gateway, guards)

    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert paid.events.get(type="refund.succeeded").source == PaymentEvent.Source.RECONCILIATION
    assert counts["refunds_settled"] == 1


def test_janitor_leaves_a_refund_never_answered_to_its_outbox_row(gateway, guards):
    paid = payment_with_status(S.SUCCEEDED, amount=2000)
    Payment.objects.filter(pk=paid.pk).update(amount_refunded=500)
    stuck(RefundFactory(payment=paid, amount=500), for_=timedelta(minutes=11))

    counts = run(gateway, guards)

    assert gateway.calls == []
    assert counts["refunds_not_found"] == 1


def test_janitor_looks_at_no_more_than_its_batch_size_per_run(gateway, guards, settings):
    settings.JANITOR_BATCH_SIZE = 2
    for _ in range(3):
        stuck(payment_with_status(S.PROCESSING), for_=timedelta(minutes=11))
    gateway.script("intent_find", None)

    first, second = run(gateway, guards), run(gateway, guards)

    assert (first["payments_checked"], second["payments_checked"]) == (2, 1)


@pytest.mark.django_db(transaction=True)
def test_two_janitor_runs_at_once_ask_the_provider_once_per_payment_and_write_each_entry_once(gateway, guards):
    payments = [stuck(payment_with_status(S.PROCESSING, amount=2000), for_=timedelta(minutes=11)) for _ in range(6)]
    gateway.script("intent_find", *(intent("succeeded", id=f"pi_{n}") for n in range(6)))
    now = timezone.now()
    barrier = threading.Barrier(2)
    errors = []

    def beat():
        from django.db import connection

        try:
            barrier.wait()
            run(gateway, guards, now=now)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(call["payment_id"] for call in gateway.called("intent_find")) == sorted(p.public_id for p in payments)
    assert PaymentEvent.objects.filter(type="payment.succeeded").count() == 6
    assert set(Payment.objects.values_list("status", flat=True)) == {S.SUCCEEDED}


def test_a_payment_whose_create_response_was_lost_at_the_sandbox_settles_through_the_janitor(stripe_sandbox, guards):
    sandbox_gateway = StripeGateway(
        api_key="sk_test_janitor",
        api_base=stripe_sandbox.url,
        api_version=settings.STRIPE_API_VERSION,
        timeout_seconds=2.0,
        connect_timeout_seconds=1.0,
    )
    payment = PaymentFactory(amount=2000, payment_method="pm_card_visa")
    stripe_sandbox.set_faults(
        {"kind": "timeout_after_commit", "count": 1, "ms": 300, "path": "/v1/payment_intents", "method": "POST"}
    )
    with pytest.raises(RetryLater):
        payment_submit(payment_id=payment.public_id, now=timezone.now(), gateway=sandbox_gateway, guards=guards)
    payment = stuck(payment, for_=timedelta(minutes=11))
    assert payment.status == S.PROCESSING and not payment.provider_payment_id

    run(sandbox_gateway, guards)

    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED and payment.provider_payment_id
    (entry,) = [
        e
        for e in stripe_sandbox.ledger()["payment_intents"].values()
        if e["metadata"] == {"payment_id": payment.public_id}
    ]
    assert entry["charged"] == 1
    assert payment.events.get(type="payment.succeeded").source == PaymentEvent.Source.RECONCILIATION
