"""Worker services against the fake gateway: one test per transition, recovery point and duplicate."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from outbox.errors import GiveUp, RetryLater
from outbox.models import OutboxMessage
from outbox.services import outbox_message_enqueue
from payments import topics
from payments.gateway.base import (
    ProviderAuthError,
    ProviderDeclined,
    ProviderIdempotencyConflict,
    ProviderInvalidRequest,
    ProviderOutcomeUnknown,
    ProviderRateLimited,
    RefundResult,
)
from payments.models import Payment, PaymentEvent, Refund
from payments.services.dispatch import payment_cancel, payment_capture, payment_submit, refund_submit
from tests.factories import PaymentFactory, RefundFactory, payment_with_status
from tests.fixtures.gateway import intent

pytestmark = pytest.mark.django_db
S = Payment.Status


def submit(payment, gateway, guards, **kwargs):
    return payment_submit(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards, **kwargs)


def timeline(payment) -> list[tuple[str, str, str]]:
    return list(payment.events.order_by("id").values_list("type", "to_status", "source"))


def test_submit_sends_the_stored_payment_with_the_key_derived_from_its_row(gateway, guards):
    payment = PaymentFactory(amount=2000, description="order 42")
    gateway.script("intent_create_and_confirm", intent("succeeded", id="pi_1"))

    submit(payment, gateway, guards)

    (call,) = gateway.called("intent_create_and_confirm")
    assert call == {
        "payment_id": payment.public_id,
        "amount": 2000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "capture_method": "automatic",
        "description": "order 42",
        "idempotency_key": f"{payment.public_id}:create",
    }


def test_submit_of_an_automatic_capture_payment_records_success_and_the_intent(gateway, guards):
    payment = PaymentFactory(amount=2000)
    gateway.script("intent_create_and_confirm", intent("succeeded", id="pi_1"))

    payment = submit(payment, gateway, guards)

    assert (payment.status, payment.amount_received, payment.provider_payment_id) == (S.SUCCEEDED, 2000, "pi_1")
    assert timeline(payment) == [
        ("payment.submitted", "PROCESSING", "worker"),
        ("payment.succeeded", "SUCCEEDED", "worker"),
    ]


def test_submit_of_a_manual_capture_payment_waits_for_capture_with_the_authorized_amount(gateway, guards):
    payment = PaymentFactory(amount=2000, capture_method="manual")
    gateway.script("intent_create_and_confirm", intent("requires_capture"))

    payment = submit(payment, gateway, guards)

    assert (payment.status, payment.amount_capturable) == (S.REQUIRES_CAPTURE, 2000)


def test_submit_that_needs_3ds_keeps_the_next_action_for_the_client(gateway, guards):
    payment = PaymentFactory(amount=2000)
    action = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://hooks.example/3ds"}}
    gateway.script("intent_create_and_confirm", intent("requires_action", next_action=action))

    payment = submit(payment, gateway, guards)

    assert (payment.status, payment.next_action) == (S.REQUIRES_ACTION, action)


def test_a_decline_fails_the_payment_with_the_providers_code_and_is_not_retried(gateway, guards):
    payment = PaymentFactory(amount=2000)
    declined = intent("requires_payment_method", failure_code="insufficient_funds", failure_message="no money")
    gateway.script(
        "intent_create_and_confirm", ProviderDeclined("declined", code="insufficient_funds", intent=declined)
    )

    payment = submit(payment, gateway, guards)

    assert (payment.status, payment.failure_code, payment.failure_message) == (
        S.FAILED,
        "insufficient_funds",
        "no money",
    )
    assert payment.provider_payment_id == "pi_fake"


def test_a_decline_without_an_intent_fails_the_payment(gateway, guards):
    payment = PaymentFactory(amount=2000)
    gateway.script("intent_create_and_confirm", ProviderDeclined("declined", code="card_declined"))

    assert submit(payment, gateway, guards).status == S.FAILED


def test_an_invalid_request_before_anything_was_created_fails_the_payment(gateway, guards):
    payment = PaymentFactory(payment_method="pm_nope")
    gateway.script(
        "intent_create_and_confirm", ProviderInvalidRequest("No such PaymentMethod", code="resource_missing")
    )

    payment = submit(payment, gateway, guards)

    assert (payment.status, payment.failure_code) == (S.FAILED, "resource_missing")


def test_an_unknown_outcome_keeps_the_payment_processing_and_the_retry_sends_the_same_request(gateway, guards):
    payment = PaymentFactory(amount=2000)
    gateway.script("intent_create_and_confirm", ProviderOutcomeUnknown("read timeout"), intent("succeeded"))

    with pytest.raises(RetryLater) as raised:
        submit(payment, gateway, guards)
    payment.refresh_from_db()
    assert payment.status == S.PROCESSING  # never failed while the provider may have charged
    assert raised.value.error_type == "outcome_unknown" and raised.value.count_attempt

    assert submit(payment, gateway, guards).status == S.SUCCEEDED
    first, second = gateway.called("intent_create_and_confirm")
    assert first == second
    assert guards[1].failures == 1 and guards[1].successes == 1


def test_a_provider_rate_limit_retries_no_sooner_than_its_retry_after(gateway, guards):
    payment = PaymentFactory(amount=2000)
    gateway.script("intent_create_and_confirm", ProviderRateLimited("429", retry_after=7))

    with pytest.raises(RetryLater) as raised:
        submit(payment, gateway, guards)

    assert (raised.value.error_type, raised.value.retry_after) == ("rate_limited", 7)


def test_no_token_from_the_shared_limiter_defers_without_calling_or_spending_an_attempt(gateway, guards):
    payment = PaymentFactory(amount=2000)
    guards[0].waits.append(0.25)

    with pytest.raises(RetryLater) as raised:
        submit(payment, gateway, guards)

    assert gateway.calls == []
    assert (raised.value.retry_after, raised.value.count_attempt) == (0.25, False)


def test_an_open_breaker_defers_without_calling(gateway, guards):
    payment = PaymentFactory(amount=2000)
    guards[1].open_for = 12.0

    with pytest.raises(RetryLater) as raised:
        submit(payment, gateway, guards)

    assert gateway.calls == []
    assert (raised.value.error_type, raised.value.retry_after, raised.value.count_attempt) == (
        "circuit_open",
        12.0,
        False,
    )


def test_an_auth_error_pauses_every_provider_call_instead_of_retrying_into_a_storm(gateway, guards, settings):
    payment = PaymentFactory(amount=2000)
    gateway.script("intent_create_and_confirm", ProviderAuthError("bad key", status=401))

    with pytest.raises(RetryLater) as raised:
        submit(payment, gateway, guards)

    assert guards[1].tripped == [settings.PROVIDER_BREAKER_AUTH_TRIP_SECONDS]
    assert raised.value.count_attempt is False
    payment.refresh_from_db()
    assert payment.status == S.PROCESSING


def test_an_idempotency_key_reused_with_other_parameters_gives_up_for_ops(gateway, guards):
    payment = PaymentFactory(amount=2000)
    gateway.script("intent_create_and_confirm", ProviderIdempotencyConflict("other params", in_flight=False))

    with pytest.raises(GiveUp):
        submit(payment, gateway, guards)


def test_submit_of_a_settled_or_canceled_payment_calls_nothing(gateway, guards):
    for status in (S.SUCCEEDED, S.CANCELED, S.FAILED, S.REQUIRES_CAPTURE):
        submit(payment_with_status(status), gateway, guards)

    assert gateway.calls == []


def test_submit_of_a_payment_older_than_the_providers_key_memory_looks_the_intent_up_first(gateway, guards):
    payment = PaymentFactory(amount=2000)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(hours=30))
    gateway.script("intent_find", intent("succeeded", id="pi_found"))

    payment = submit(payment, gateway, guards)

    assert (payment.status, payment.provider_payment_id) == (S.SUCCEEDED, "pi_found")
    assert gateway.called("intent_create_and_confirm") == []


def test_an_older_snapshot_never_moves_a_payment_backwards(gateway, guards):
    payment = payment_with_status(S.SUCCEEDED, provider_payment_id="pi_fake")
    from payments.services.dispatch import WORKER
    from payments.services.sync import payment_apply_intent

    for stale in ("requires_action", "requires_capture", "processing", "requires_payment_method"):
        payment = payment_apply_intent(
            payment_id=payment.public_id, intent=intent(stale), actor=WORKER, now=timezone.now()
        )

    assert payment.status == S.SUCCEEDED
    assert timeline(payment) == []


def test_applying_the_same_result_twice_records_one_timeline_entry(gateway, guards):
    payment = PaymentFactory(amount=2000)
    gateway.script("intent_create_and_confirm", intent("requires_capture"))
    submit(payment, gateway, guards)
    from payments.services.dispatch import WORKER
    from payments.services.sync import payment_apply_intent

    payment_apply_intent(
        payment_id=payment.public_id, intent=intent("requires_capture"), actor=WORKER, now=timezone.now()
    )

    assert [t for t, *_ in timeline(payment)] == ["payment.submitted", "payment.requires_capture"]


def test_a_result_for_another_intent_is_never_merged_into_a_bound_payment(gateway, guards):
    payment = payment_with_status(S.PROCESSING)
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id="pi_ours")
    from payments.services.dispatch import WORKER
    from payments.services.sync import payment_apply_intent

    payment = payment_apply_intent(
        payment_id=payment.public_id, intent=intent("succeeded", id="pi_other"), actor=WORKER, now=timezone.now()
    )

    assert (payment.status, payment.provider_payment_id) == (S.PROCESSING, "pi_ours")


def capture_requested(amount: int = 2000, to_capture: int | None = None, intent_id: str = "pi_fake") -> Payment:
    payment = payment_with_status(S.CAPTURE_REQUESTED, amount=amount, capture_method="manual")
    Payment.objects.filter(pk=payment.pk).update(
        provider_payment_id=intent_id, amount_capturable=amount, amount_to_capture=to_capture or amount
    )
    return Payment.objects.get(pk=payment.pk)


def test_capture_of_the_whole_authorization_sends_no_amount_and_succeeds(gateway, guards):
    payment = capture_requested()
    gateway.script("intent_capture", intent("succeeded"))

    payment = payment_capture(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert gateway.called("intent_capture") == [
        {"intent_id": "pi_fake", "amount": None, "idempotency_key": f"{payment.public_id}:capture"}
    ]
    assert (payment.status, payment.amount_received) == (S.SUCCEEDED, 2000)


def test_a_partial_capture_sends_the_amount_and_records_what_was_received(gateway, guards):
    payment = capture_requested(to_capture=1500)
    gateway.script("intent_capture", intent("succeeded", amount_received=1500))

    payment = payment_capture(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert gateway.called("intent_capture")[0]["amount"] == 1500
    assert (payment.status, payment.amount_received) == (S.SUCCEEDED, 1500)


def test_a_stale_requires_capture_snapshot_never_undoes_a_capture_request(gateway, guards):
    payment = capture_requested(to_capture=1500)
    from payments.services.dispatch import WORKER
    from payments.services.sync import payment_apply_intent

    payment = payment_apply_intent(
        payment_id=payment.public_id,
        intent=intent("requires_capture", amount_capturable=2000),
        actor=WORKER,
        now=timezone.now(),
    )

    assert (payment.status, payment.amount_to_capture) == (S.CAPTURE_REQUESTED, 1500)
    assert timeline(payment) == []


def test_a_follow_up_that_read_the_authorization_before_the_client_captured_keeps_the_capture(gateway, guards):
    from payments.services.dispatch import WORKER, payment_sync
    from payments.services.payments import Actor, payment_capture_request
    from payments.services.sync import payment_apply_intent

    payment = payment_with_status(S.REQUIRES_ACTION, amount=2000, capture_method="manual")
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id="pi_fake")
    authorized = intent("requires_capture", amount_capturable=2000)

    def retrieve_while_another_delivery_settles_and_the_client_captures(**kwargs):
        gateway.calls.append(("intent_retrieve", kwargs))
        payment_apply_intent(payment_id=payment.public_id, intent=authorized, actor=WORKER, now=timezone.now())
        asker = Actor(source=PaymentEvent.Source.API, name="client")
        payment_capture_request(client=None, payment_id=payment.public_id, amount=1500, actor=asker, now=timezone.now())
        return authorized

    gateway.intent_retrieve = retrieve_while_another_delivery_settles_and_the_client_captures

    payment = payment_sync(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert (payment.status, payment.amount_to_capture) == (S.CAPTURE_REQUESTED, 1500)
    assert OutboxMessage.objects.filter(topic=topics.PAYMENT_CAPTURE_REQUESTED).count() == 1


def test_a_refused_capture_applies_the_providers_truth_instead_of_guessing(gateway, guards):
    expired, still_open = capture_requested(intent_id="pi_a"), capture_requested(intent_id="pi_b")
    gateway.script("intent_capture", ProviderInvalidRequest("unexpected state", code="payment_intent_unexpected_state"))
    gateway.script(
        "intent_retrieve", intent("canceled", id="pi_a"), intent("requires_capture", id="pi_b", amount_capturable=2000)
    )

    expired = payment_capture(payment_id=expired.public_id, now=timezone.now(), gateway=gateway, guards=guards)
    still_open = payment_capture(payment_id=still_open.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert expired.status == S.CANCELED
    assert (still_open.status, still_open.amount_to_capture) == (S.REQUIRES_CAPTURE, None)
    assert timeline(still_open)[-1][0] == "payment.capture_refused"


def test_cancel_at_the_provider_records_the_cancellation(gateway, guards):
    payment = payment_with_status(S.CANCEL_REQUESTED, amount=2000)
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id="pi_fake")
    gateway.script("intent_cancel", intent("canceled"))

    payment = payment_cancel(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert payment.status == S.CANCELED
    assert gateway.called("intent_cancel")[0]["idempotency_key"] == f"{payment.public_id}:cancel"


def test_cancel_before_the_intent_is_known_waits_for_the_create_to_land(gateway, guards):
    payment = payment_with_status(S.CANCEL_REQUESTED, amount=2000)
    gateway.script("intent_find", None)

    with pytest.raises(RetryLater):
        payment_cancel(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert gateway.called("intent_cancel") == []


def test_cancel_that_lost_the_race_to_an_automatic_capture_ends_succeeded(gateway, guards):
    payment = payment_with_status(S.CANCEL_REQUESTED, amount=2000)
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id="pi_fake")
    gateway.script("intent_cancel", ProviderInvalidRequest("unexpected state", code="payment_intent_unexpected_state"))
    gateway.script("intent_retrieve", intent("succeeded"))

    payment = payment_cancel(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert payment.status == S.SUCCEEDED


def succeeded_with_refund(amount: int = 1000) -> Refund:
    payment = payment_with_status(S.SUCCEEDED, amount=2000)
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id="pi_fake", amount_refunded=amount)
    return RefundFactory(payment=Payment.objects.get(pk=payment.pk), amount=amount)


def test_a_refund_sent_and_accepted_succeeds_with_its_provider_id(gateway, guards):
    refund = succeeded_with_refund()
    gateway.script("refund_create", RefundResult(id="re_p", status="succeeded", amount=1000, payment_intent="pi_fake"))

    refund = refund_submit(refund_id=refund.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert (refund.status, refund.provider_refund_id) == (Refund.Status.SUCCEEDED, "re_p")
    assert gateway.called("refund_create")[0]["idempotency_key"] == f"{refund.public_id}:create"
    assert refund.payment.events.filter(type="refund.succeeded").count() == 1


def test_a_refused_refund_fails_and_gives_its_amount_back_to_the_payment(gateway, guards):
    refund = succeeded_with_refund(1000)
    gateway.script("refund_create", ProviderInvalidRequest("already refunded", code="charge_already_refunded"))

    refund = refund_submit(refund_id=refund.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert (refund.status, refund.failure_reason) == (Refund.Status.FAILED, "charge_already_refunded")
    assert Payment.objects.get(pk=refund.payment_id).amount_refunded == 0


def test_the_submit_task_runs_the_service_and_marks_its_outbox_row_done(gateway, guards, monkeypatch):
    monkeypatch.setattr("payments.services.dispatch._gateway", lambda _: gateway)
    monkeypatch.setattr("payments.services.dispatch._guards", lambda: guards)
    from payments.tasks import payment_submit_task

    payment = PaymentFactory(amount=2000)
    gateway.script("intent_create_and_confirm", intent("succeeded"))
    with transaction.atomic():
        message = outbox_message_enqueue(
            topic=topics.PAYMENT_CREATE_REQUESTED, payload={"payment_id": payment.public_id}
        )

    assert payment_submit_task.apply(kwargs={"payment_id": payment.public_id, "message_id": message.pk}).get() == "done"

    assert OutboxMessage.objects.get(pk=message.pk).status == OutboxMessage.Status.DONE
    assert Payment.objects.get(pk=payment.pk).status == S.SUCCEEDED
    assert PaymentEvent.objects.filter(payment=payment, source="worker").count() == 2


def test_a_payment_left_waiting_on_3ds_is_followed_until_the_customer_is_done(gateway, guards):
    from payments.services.dispatch import payment_sync

    payment = PaymentFactory(amount=2000)
    gateway.script("intent_create_and_confirm", intent("requires_action", next_action={"type": "redirect_to_url"}))
    submit(payment, gateway, guards)
    follow_up = OutboxMessage.objects.get(topic=topics.PAYMENT_SYNC_REQUESTED)
    assert follow_up.payload == {"payment_id": payment.public_id}
    gateway.script("intent_retrieve", intent("requires_action"), intent("succeeded"))

    with pytest.raises(RetryLater) as still_waiting:
        payment_sync(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)
    settled = payment_sync(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert (still_waiting.value.error_type, still_waiting.value.count_attempt) == ("awaiting_provider", False)
    assert settled.status == S.SUCCEEDED


def test_a_payment_waiting_past_the_follow_up_window_is_left_to_webhooks_and_the_janitor(gateway, guards, settings):
    from payments.services.dispatch import payment_sync

    payment = payment_with_status(S.REQUIRES_ACTION, amount=2000)
    Payment.objects.filter(pk=payment.pk).update(
        provider_payment_id="pi_fake",
        created_at=timezone.now() - timedelta(seconds=settings.PAYMENT_FOLLOW_UP_SECONDS + 1),
    )
    gateway.script("intent_retrieve", intent("requires_action"))

    payment = payment_sync(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert payment.status == S.REQUIRES_ACTION


def test_a_capture_refused_then_asked_for_again_is_a_new_provider_request_and_a_new_timeline_entry(gateway, guards):
    from payments.services.payments import Actor, payment_capture_request

    payment = payment_with_status(S.REQUIRES_CAPTURE, amount=2000, capture_method="manual")
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id="pi_fake")
    client_actor = Actor(source="api", name="api_key:test")
    payment_capture_request(
        client=None, payment_id=payment.public_id, amount=None, actor=client_actor, now=timezone.now()
    )
    gateway.script(
        "intent_capture", ProviderInvalidRequest("try again later", code="capture_refused"), intent("succeeded")
    )
    gateway.script("intent_retrieve", intent("requires_capture", amount_capturable=2000))
    refused = payment_capture(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    payment_capture_request(
        client=None, payment_id=payment.public_id, amount=None, actor=client_actor, now=timezone.now()
    )
    captured = payment_capture(payment_id=payment.public_id, now=timezone.now(), gateway=gateway, guards=guards)

    assert refused.status == S.REQUIRES_CAPTURE and captured.status == S.SUCCEEDED
    keys = [call["idempotency_key"] for call in gateway.called("intent_capture")]
    assert keys == [f"{payment.public_id}:capture", f"{payment.public_id}:capture:2"]
    assert [t for t, *_ in timeline(captured)] == [
        "payment.capture_requested",
        "payment.capture_refused",
        "payment.capture_requested",
        "payment.succeeded",
    ]
