"""Processing stored events through the handler table, against the fake gateway: forward only, the
provider's current word when the snapshot cannot be trusted, retried then parked when ours is missing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outbox.models import OutboxMessage
from payments.gateway.base import ProviderInvalidRequest, ProviderRateLimited, RefundResult
from payments.models import Payment, Refund
from payments.models.base import new_payment_id
from tests.factories import PaymentFactory, RefundFactory, payment_with_status
from tests.fixtures.gateway import intent
from tests.webhooks.conftest import deliver, event, intent_object, process_pending
from webhooks import handlers
from webhooks.models import WebhookEvent
from webhooks.services import webhook_event_process, webhook_event_replay

pytestmark = pytest.mark.django_db
S = Payment.Status


def bound(status: str, intent_id: str = "pi_1", **kwargs) -> Payment:
    payment = payment_with_status(status, amount=2000, **kwargs)
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id=intent_id)
    return Payment.objects.get(pk=payment.pk)


def intent_event(type: str, payment: Payment | None, status: str, *, intent_id: str = "pi_1", **kwargs) -> dict:
    obj_fields = kwargs.pop("obj", {})
    obj = intent_object(intent_id, status, payment_id=payment.public_id if payment else None, **obj_fields)
    return event(type, obj, **kwargs)


def stored(evt: dict) -> WebhookEvent:
    return WebhookEvent.objects.get(provider_event_id=evt["id"])


def timeline(payment: Payment) -> list[tuple]:
    return list(payment.events.order_by("id").values_list("type", "to_status", "source", "data__event_id"))


def test_a_succeeded_event_moves_the_payment_forward_with_source_webhook_and_the_event_id(client, gateway, guards):
    payment = bound(S.PROCESSING)
    evt = intent_event("payment_intent.succeeded", payment, "succeeded")
    deliver(client, evt)

    assert process_pending(gateway=gateway, guards=guards) == ["done"]

    payment.refresh_from_db()
    assert (payment.status, payment.amount_received) == (S.SUCCEEDED, 2000)
    assert timeline(payment) == [("payment.succeeded", S.SUCCEEDED, "webhook", evt["id"])]
    row = stored(evt)
    assert (row.status, row.outcome, row.attempts) == ("PROCESSED", "applied", 1)
    assert row.payment_public_id == payment.public_id
    assert row.processed_at is not None
    assert gateway.calls == []  # the snapshot was trusted: no provider call


@pytest.mark.parametrize(
    ("type", "start", "provider_status", "fields", "expected"),
    [
        ("payment_intent.processing", S.PENDING, "processing", {}, S.PROCESSING),
        ("payment_intent.requires_action", S.PROCESSING, "requires_action", {"next_action": {}}, S.REQUIRES_ACTION),
        ("payment_intent.amount_capturable_updated", S.PROCESSING, "requires_capture", {}, S.REQUIRES_CAPTURE),
        ("payment_intent.canceled", S.REQUIRES_CAPTURE, "canceled", {}, S.CANCELED),
        (
            "payment_intent.payment_failed",
            S.PROCESSING,
            "requires_payment_method",
            {"last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}},
            S.FAILED,
        ),
    ],
)
def test_each_payment_intent_event_moves_the_payment_to_its_status(
    client, gateway, guards, type, start, provider_status, fields, expected
):
    payment = bound(start)
    deliver(client, intent_event(type, payment, provider_status, obj=fields))

    process_pending(gateway=gateway, guards=guards)

    payment.refresh_from_db()
    assert payment.status == expected
    assert payment.events.get().source == "webhook"


def test_an_event_that_arrives_after_the_worker_applied_it_is_processed_with_no_change(client, gateway, guards):
    payment = bound(S.SUCCEEDED)
    evt = intent_event("payment_intent.succeeded", payment, "succeeded")
    deliver(client, evt)

    process_pending(gateway=gateway, guards=guards)

    assert (stored(evt).status, stored(evt).outcome) == ("PROCESSED", "no_change")
    assert timeline(payment) == []


def test_an_event_that_confirms_a_settled_payment_takes_no_lock_on_it(client, gateway, guards):
    payment = bound(S.SUCCEEDED)
    deliver(client, intent_event("payment_intent.succeeded", payment, "succeeded"))

    with CaptureQueriesContext(connection) as captured:
        assert process_pending(gateway=gateway, guards=guards) == ["done"]

    locks = [query["sql"] for query in captured.captured_queries if "FOR UPDATE" in query["sql"]]
    assert not [sql for sql in locks if "payments_payment" in sql]


def test_the_webhook_task_confirming_a_settled_payment_takes_five_statements(client, django_assert_num_queries):
    from webhooks.tasks import webhook_event_process_task

    payment = bound(S.SUCCEEDED)
    evt = intent_event("payment_intent.succeeded", payment, "succeeded")
    deliver(client, evt)
    event_id = stored(evt).pk
    message = OutboxMessage.objects.get(payload__webhook_event_id=event_id)

    # outbox start, event claim (UPDATE … RETURNING), payment read, event settled, outbox done
    with django_assert_num_queries(5):
        outcome = webhook_event_process_task.run(webhook_event_id=event_id, message_id=message.pk)

    assert outcome == "done"
    assert (stored(evt).status, stored(evt).outcome, stored(evt).attempts) == ("PROCESSED", "no_change", 1)


def test_an_older_snapshot_changes_nothing(client, gateway, guards):
    payment = bound(S.SUCCEEDED)
    for type, status in [
        ("payment_intent.processing", "processing"),
        ("payment_intent.amount_capturable_updated", "requires_capture"),
        ("payment_intent.requires_action", "requires_action"),
    ]:
        deliver(client, intent_event(type, payment, status))

    process_pending(gateway=gateway, guards=guards)

    assert Payment.objects.get(pk=payment.pk).status == S.SUCCEEDED
    assert set(WebhookEvent.objects.values_list("status", "outcome")) == {("PROCESSED", "no_change")}
    assert timeline(payment) == []


@pytest.mark.parametrize("api_version", ["2020-08-27", None], ids=["another-version", "no-version"])
def test_an_event_in_another_api_version_is_not_read_the_intent_is_fetched_instead(
    client, gateway, guards, api_version
):
    payment = bound(S.PROCESSING)
    evt = intent_event("payment_intent.processing", payment, "processing", api_version=api_version)
    gateway.script("intent_retrieve", intent("succeeded", id="pi_1"))
    deliver(client, evt)

    process_pending(gateway=gateway, guards=guards)

    assert gateway.called("intent_retrieve") == [{"intent_id": "pi_1"}]
    payment.refresh_from_db()
    assert payment.status == S.SUCCEEDED
    (entry,) = payment.events.all()
    assert (entry.data["event_id"], entry.data["cause"]) == (evt["id"], "payment_intent.processing:fetched")
    assert stored(evt).api_version == (api_version or "")


def test_a_stale_snapshot_that_contradicts_us_is_settled_by_the_providers_current_word(client, gateway, guards):
    payment = bound(S.SUCCEEDED)
    declined = {"last_payment_error": {"code": "card_declined"}}  # a first attempt, long settled since
    deliver(client, intent_event("payment_intent.payment_failed", payment, "requires_payment_method", obj=declined))
    gateway.script("intent_retrieve", intent("succeeded", id="pi_1"))

    process_pending(gateway=gateway, guards=guards)

    payment.refresh_from_db()
    assert (payment.status, payment.flagged_at) == (S.SUCCEEDED, None)
    assert len(gateway.called("intent_retrieve")) == 1
    assert WebhookEvent.objects.get().outcome == "no_change"


def test_a_provider_state_that_contradicts_ours_flags_the_payment_for_ops(client, gateway, guards):
    payment = bound(S.CANCELED)
    evt = intent_event("payment_intent.succeeded", payment, "succeeded")
    deliver(client, evt)
    gateway.script("intent_retrieve", intent("succeeded", id="pi_1"))

    process_pending(gateway=gateway, guards=guards)

    payment.refresh_from_db()
    assert (payment.status, payment.flag_reason) == (S.CANCELED, "provider_conflict")
    (entry,) = payment.events.all()
    assert (entry.type, entry.source, entry.data["event_id"]) == ("payment.flagged", "webhook", evt["id"])
    assert entry.data["provider_status"] == "succeeded"
    assert stored(evt).outcome == "flagged"


def test_an_event_for_a_payment_not_in_our_database_is_retried_then_parked_never_dropped(
    client, gateway, guards, settings
):
    settings.WEBHOOK_PARK_AFTER_ATTEMPTS = 3
    missing = PaymentFactory()
    Payment.objects.filter(pk=missing.pk).delete()  # a well-formed id of ours with no row
    evt = intent_event("payment_intent.succeeded", missing, "succeeded")
    deliver(client, evt)

    outcomes = [process_pending(gateway=gateway, guards=guards) for _ in range(4)]

    assert outcomes == [["retry"], ["retry"], ["dead"], []]
    row = stored(evt)
    assert (row.status, row.attempts) == ("PARKED", 3)
    assert row.last_error.startswith("parked: payment") and "not in our database" in row.last_error
    message = OutboxMessage.objects.get()
    assert (message.status, message.last_error_type) == ("DEAD", "webhook_event_parked")


def test_a_parked_event_replayed_after_its_payment_appeared_is_applied(client, gateway, guards, settings):
    settings.WEBHOOK_PARK_AFTER_ATTEMPTS = 1
    payment_id = new_payment_id()
    evt = event("payment_intent.succeeded", intent_object("pi_1", "succeeded", payment_id=payment_id))
    deliver(client, evt)
    process_pending(gateway=gateway, guards=guards)
    assert stored(evt).status == "PARKED"
    payment = PaymentFactory(public_id=payment_id, amount=2000)  # e.g. restored by ops
    Payment.objects.filter(pk=payment.pk).update(status=S.PROCESSING, provider_payment_id="pi_1")

    webhook_event_replay(webhook_event_id=stored(evt).pk, now=timezone.now())
    assert (stored(evt).status, stored(evt).attempts) == ("RECEIVED", 0)
    process_pending(gateway=gateway, guards=guards)

    assert (stored(evt).status, stored(evt).outcome) == ("PROCESSED", "applied")
    assert Payment.objects.get(pk=payment.pk).status == S.SUCCEEDED


def test_a_webhook_that_beat_our_commit_is_retried_until_the_worker_bound_the_intent(client, gateway, guards):
    payment = payment_with_status(S.PROCESSING, amount=2000)  # the worker's call is out; no intent id yet
    evt = intent_event("payment_intent.succeeded", payment, "succeeded")
    deliver(client, evt)

    first = process_pending(gateway=gateway, guards=guards)
    Payment.objects.filter(pk=payment.pk).update(provider_payment_id="pi_1")  # the worker commits
    second = process_pending(gateway=gateway, guards=guards)

    assert (first, second) == (["retry"], ["done"])
    row = stored(evt)
    assert (row.status, row.attempts, row.outcome) == ("PROCESSED", 2, "applied")
    assert "not bound to intent pi_1 yet" in row.last_error
    assert Payment.objects.get(pk=payment.pk).status == S.SUCCEEDED


def test_an_intent_for_a_payment_we_settled_without_it_is_fetched_and_a_contradiction_flagged(client, gateway, guards):
    payment = payment_with_status(S.FAILED, amount=2000)  # we were told nothing was created
    deliver(client, intent_event("payment_intent.succeeded", payment, "succeeded"))
    gateway.script("intent_retrieve", intent("succeeded", id="pi_1"))

    process_pending(gateway=gateway, guards=guards)

    payment.refresh_from_db()
    assert gateway.called("intent_retrieve") == [{"intent_id": "pi_1"}]
    assert (payment.status, payment.flag_reason) == (S.FAILED, "provider_conflict")


def test_an_intent_with_none_of_our_ids_is_ignored(client, gateway, guards):
    evt = intent_event("payment_intent.succeeded", None, "succeeded", intent_id="pi_not_ours")
    deliver(client, evt)

    assert process_pending(gateway=gateway, guards=guards) == ["done"]

    assert (stored(evt).status, stored(evt).outcome) == ("IGNORED", "not_ours")


def test_an_unhandled_event_type_is_ignored(client, gateway, guards):
    evt = event("customer.created", {"id": "cus_1", "object": "customer", "email": "jane@example.com"})
    deliver(client, evt)

    process_pending(gateway=gateway, guards=guards)

    row = stored(evt)
    assert (row.status, row.outcome, row.processed_at is not None) == ("IGNORED", "unhandled_type", True)
    assert "email" not in row.payload["data"]["object"]


def test_a_handler_that_fails_twice_then_succeeds_records_attempts_and_its_error_then_processed(
    client, gateway, guards, monkeypatch, no_consumer_raises
):
    payment = bound(S.PROCESSING)
    evt = intent_event("payment_intent.succeeded", payment, "succeeded")
    failures = iter([RuntimeError("database hiccup 1"), RuntimeError("database hiccup 2")])

    def flaky(context):
        error = next(failures, None)
        if error:
            raise error
        return handlers.handle_payment_intent(context)

    monkeypatch.setitem(handlers.HANDLERS, "payment_intent.succeeded", flaky)
    deliver(client, evt)

    outcomes = [process_pending(gateway=gateway, guards=guards) for _ in range(3)]

    assert outcomes == [["retry"], ["retry"], ["done"]]
    row = stored(evt)
    assert (row.status, row.attempts, row.outcome) == ("PROCESSED", 3, "applied")
    assert row.last_error == "RuntimeError: database hiccup 2"
    assert Payment.objects.get(pk=payment.pk).status == S.SUCCEEDED
    assert OutboxMessage.objects.get().status == "DONE"


def test_a_failing_handler_leaves_the_event_failed_with_its_error_until_the_next_attempt(
    client, gateway, guards, monkeypatch, no_consumer_raises
):
    def broken(context):
        raise ValueError("bug")

    monkeypatch.setitem(handlers.HANDLERS, "payment_intent.succeeded", broken)
    evt = intent_event("payment_intent.succeeded", bound(S.PROCESSING), "succeeded")
    deliver(client, evt)

    process_pending(gateway=gateway, guards=guards)

    row = stored(evt)
    assert (row.status, row.attempts, row.last_error, row.processed_at) == ("FAILED", 1, "ValueError: bug", None)
    assert OutboxMessage.objects.get().status == "DUE"


def test_a_provider_that_cannot_answer_a_fetch_now_defers_the_event(client, gateway, guards):
    payment = bound(S.PROCESSING)
    evt = intent_event("payment_intent.succeeded", payment, "succeeded", api_version=None)
    gateway.script("intent_retrieve", ProviderRateLimited("slow down", retry_after=2), intent("succeeded", id="pi_1"))
    deliver(client, evt)

    first = process_pending(gateway=gateway, guards=guards)
    second = process_pending(gateway=gateway, guards=guards)

    assert (first, second) == (["retry"], ["done"])
    assert Payment.objects.get(pk=payment.pk).status == S.SUCCEEDED


def test_a_definitive_provider_refusal_of_a_fetch_is_not_retried(client, gateway, guards):
    evt = intent_event("payment_intent.succeeded", bound(S.PROCESSING), "succeeded", api_version=None)
    gateway.script("intent_retrieve", ProviderInvalidRequest("No such payment_intent", code="resource_missing"))
    deliver(client, evt)

    assert process_pending(gateway=gateway, guards=guards) == ["dead"]

    assert stored(evt).status == "FAILED" and "invalid_request" in stored(evt).last_error


def test_a_second_delivery_of_the_same_outbox_message_after_processing_does_nothing(client, gateway, guards):
    payment = bound(S.PROCESSING)
    evt = intent_event("payment_intent.succeeded", payment, "succeeded")
    deliver(client, evt)
    process_pending(gateway=gateway, guards=guards)

    again = webhook_event_process(webhook_event_id=stored(evt).pk, now=timezone.now(), gateway=gateway)

    assert again is None
    assert stored(evt).attempts == 1 and payment.events.count() == 1


# --- refunds ------------------------------------------------------------------------------------------
def refund_for(status=Refund.Status.PENDING, provider_refund_id: str | None = "re_p1", amount: int = 500) -> Refund:
    payment = bound(S.SUCCEEDED)
    Payment.objects.filter(pk=payment.pk).update(amount_refunded=amount)
    refund = RefundFactory(payment=payment, amount=amount)
    Refund.objects.filter(pk=refund.pk).update(status=status, provider_refund_id=provider_refund_id)
    return Refund.objects.get(pk=refund.pk)


def refund_object(refund: Refund | None, status: str, *, id: str = "re_p1", **fields) -> dict:
    metadata = {"refund_id": refund.public_id, "payment_id": refund.payment.public_id} if refund else {}
    return {
        "id": id,
        "object": "refund",
        "amount": 500,
        "currency": "eur",
        "payment_intent": "pi_1",
        "status": status,
        "failure_reason": None,
        "metadata": metadata,
        **fields,
    }


def test_a_refund_update_settles_our_pending_refund(client, gateway, guards):
    refund = refund_for()
    evt = event("refund.updated", refund_object(refund, "succeeded"))
    deliver(client, evt)

    process_pending(gateway=gateway, guards=guards)

    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.SUCCEEDED
    entry = refund.payment.events.get()
    assert (entry.type, entry.source, entry.data["event_id"]) == ("refund.succeeded", "webhook", evt["id"])


def test_a_refund_that_failed_after_it_succeeded_gives_the_amount_back(client, gateway, guards):
    refund = refund_for(Refund.Status.SUCCEEDED)
    deliver(client, event("refund.failed", refund_object(refund, "failed", failure_reason="lost_or_stolen_card")))

    process_pending(gateway=gateway, guards=guards)

    refund.refresh_from_db()
    assert (refund.status, refund.failure_reason) == (Refund.Status.FAILED, "lost_or_stolen_card")
    assert Payment.objects.get(pk=refund.payment_id).amount_refunded == 0


def test_a_refund_event_that_beat_our_commit_waits_for_the_worker(client, gateway, guards):
    refund = refund_for(provider_refund_id=None)
    deliver(client, event("refund.created", refund_object(refund, "succeeded")))

    first = process_pending(gateway=gateway, guards=guards)
    Refund.objects.filter(pk=refund.pk).update(provider_refund_id="re_p1")
    second = process_pending(gateway=gateway, guards=guards)

    assert (first, second) == (["retry"], ["done"])
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.SUCCEEDED


def test_a_refund_made_outside_the_system_is_read_from_the_provider_and_flagged(client, gateway, guards):
    payment = bound(S.SUCCEEDED)
    gateway.script("refund_retrieve", RefundResult(id="re_dash", status="succeeded", amount=700, payment_intent="pi_1"))
    deliver(client, event("refund.created", refund_object(None, "pending", id="re_dash")))

    process_pending(gateway=gateway, guards=guards)

    payment.refresh_from_db()
    assert payment.flag_reason == "refund_outside_system"
    assert payment.events.get().data["amount"] == 700
    assert gateway.called("refund_retrieve") == [{"refund_id": "re_dash"}]


def test_charge_refunded_settles_pending_refunds_from_the_providers_word(client, gateway, guards):
    refund = refund_for()
    gateway.script("refund_retrieve", RefundResult(id="re_p1", status="succeeded", amount=500, payment_intent="pi_1"))
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": "pi_1",
        "amount_refunded": 500,
        "refunded": False,
        "billing_details": {"name": "Jane Doe"},
        "metadata": {"payment_id": refund.payment.public_id},
    }
    deliver(client, event("charge.refunded", charge))

    process_pending(gateway=gateway, guards=guards)

    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.SUCCEEDED
    assert WebhookEvent.objects.get().outcome == "applied"


# --- disputes ------------------------------------------------------------------------------------------
def dispute(id: str = "dp_1", intent_id: str = "pi_1") -> dict:
    return {
        "id": id,
        "object": "dispute",
        "amount": 2000,
        "currency": "eur",
        "charge": "ch_1",
        "payment_intent": intent_id,
        "reason": "fraudulent",
        "status": "needs_response",
        "evidence": {"customer_name": "Jane Doe", "customer_email_address": "jane@example.com"},
    }


def test_a_dispute_flags_the_payment_for_ops_once(client, gateway, guards):
    payment = bound(S.SUCCEEDED)
    first = event("charge.dispute.created", dispute())
    deliver(client, first)
    deliver(client, event("charge.dispute.created", dispute()))  # the same dispute in another event

    process_pending(gateway=gateway, guards=guards)

    payment.refresh_from_db()
    assert (payment.status, payment.flag_reason) == (S.SUCCEEDED, "dispute")
    (entry,) = payment.events.all()
    assert entry.data == {
        "reason": "dispute",
        "reference": "dp_1",
        "dispute_id": "dp_1",
        "amount": 2000,
        "currency": "eur",
        "dispute_reason": "fraudulent",
        "dispute_status": "needs_response",
        "event_id": first["id"],
    }
    assert "evidence" not in stored(first).payload["data"]["object"]


def test_a_dispute_for_no_payment_of_ours_is_parked_for_ops(client, gateway, guards, settings):
    settings.WEBHOOK_PARK_AFTER_ATTEMPTS = 1
    evt = event("charge.dispute.created", dispute(intent_id="pi_unknown"))
    deliver(client, evt)

    process_pending(gateway=gateway, guards=guards)

    assert stored(evt).status == "PARKED"
    assert "dispute dp_1" in stored(evt).last_error


# --- another integration on the same Stripe account ---------------------------------------------------
# `payment_id` and `refund_id` are common metadata keys: a shop plugin or another service sharing the
# account writes its own ids under them. Only ids in our shape (pay_/re_ + a ULID) can be ours.
def test_an_intent_whose_payment_id_is_not_in_our_shape_is_not_ours_and_is_neither_retried_nor_parked(
    client, gateway, guards
):
    obj = intent_object("pi_plugin", "succeeded", payment_id=None, metadata={"payment_id": "jane.doe@example.com"})
    evt = event("payment_intent.succeeded", obj)
    deliver(client, evt)

    assert process_pending(gateway=gateway, guards=guards) == ["done"]

    row = stored(evt)
    assert (row.status, row.outcome, row.attempts, row.last_error) == ("IGNORED", "not_ours", 1, "")


def test_a_refund_whose_refund_id_is_not_in_our_shape_on_a_payment_of_ours_is_flagged_as_made_elsewhere(
    client, gateway, guards
):
    payment = bound(S.SUCCEEDED)
    gateway.script(
        "refund_retrieve", RefundResult(id="re_plugin", status="succeeded", amount=700, payment_intent="pi_1")
    )
    evt = event("refund.created", refund_object(None, "succeeded", id="re_plugin", metadata={"refund_id": "R-1001"}))
    deliver(client, evt)

    assert process_pending(gateway=gateway, guards=guards) == ["done"]

    assert (stored(evt).status, stored(evt).outcome) == ("PROCESSED", "flagged")
    assert Payment.objects.get(pk=payment.pk).flag_reason == "refund_outside_system"


# --- provider amounts beyond ours ------------------------------------------------------------------------
# Our intents carry our amount; more at the provider (an amount changed there, an incremental
# authorization or overcapture made outside the system) breaks our CHECK constraints if written.
# PostgreSQL's "Failing row contains (...)" then carried the payment's description, customer
# reference and metadata into last_error and the logs, and the event failed on every retry.
CAPTURABLE_UPDATED = "payment_intent.amount_capturable_updated"
PRIVATE = {"description": "Ring Jane Doe", "customer_reference": "jane.doe@example.com", "metadata": {"k": "Jane"}}


@pytest.mark.parametrize(
    ("type", "start", "provider_status", "amounts"),
    [
        (CAPTURABLE_UPDATED, S.REQUIRES_CAPTURE, "requires_capture", {"amount_capturable": 5000}),
        (CAPTURABLE_UPDATED, S.PROCESSING, "requires_capture", {"amount_capturable": 5000}),
        ("payment_intent.succeeded", S.PROCESSING, "succeeded", {"amount_received": 5000}),
    ],
    ids=["more-capturable", "authorized-more", "received-more"],
)
def test_a_provider_amount_beyond_ours_flags_the_payment_changes_nothing_and_leaks_no_row(
    client, gateway, guards, no_consumer_raises, type, start, provider_status, amounts
):
    payment = bound(start, **PRIVATE)
    before = (payment.status, payment.amount_capturable, payment.amount_received)
    evt = intent_event(type, payment, provider_status, obj={**amounts, "amount": 5000})
    deliver(client, evt)
    gateway.script("intent_retrieve", intent(provider_status, id="pi_1", amount=5000, **amounts))

    assert process_pending(gateway=gateway, guards=guards) == ["done"]

    payment.refresh_from_db()
    assert (payment.status, payment.amount_capturable, payment.amount_received) == before
    assert payment.flag_reason == "provider_conflict"
    row = stored(evt)
    assert (row.status, row.outcome) == ("PROCESSED", "flagged")
    stored_text = row.last_error + str(OutboxMessage.objects.values_list("last_error", flat=True)[::1])
    assert "Jane" not in stored_text


# --- the authorization lowered at the provider ------------------------------------------------------------
def test_a_lowered_authorization_is_applied_with_its_own_timeline_entry_once_per_change(client, gateway, guards):
    payment = bound(S.REQUIRES_CAPTURE)
    Payment.objects.filter(pk=payment.pk).update(amount_capturable=2000)
    first = intent_event(CAPTURABLE_UPDATED, payment, "requires_capture", obj={"amount_capturable": 1500})
    deliver(client, first)
    deliver(client, first)  # the provider's duplicate is stored once
    second = intent_event(CAPTURABLE_UPDATED, payment, "requires_capture", obj={"amount_capturable": 1200})
    deliver(client, second)

    assert process_pending(gateway=gateway, guards=guards) == ["done", "done"]

    payment.refresh_from_db()
    assert (payment.status, payment.amount_capturable) == (S.REQUIRES_CAPTURE, 1200)
    entries = list(
        payment.events.order_by("id").values_list(
            "type", "from_status", "to_status", "source", "idempotency_key", "data"
        )
    )
    assert [entry[:5] for entry in entries] == [
        ("payment.amount_capturable_updated", S.REQUIRES_CAPTURE, S.REQUIRES_CAPTURE, "webhook", "amount_capturable:1"),
        ("payment.amount_capturable_updated", S.REQUIRES_CAPTURE, S.REQUIRES_CAPTURE, "webhook", "amount_capturable:2"),
    ]
    assert [(e[5]["previous_amount_capturable"], e[5]["amount_capturable"], e[5]["event_id"]) for e in entries] == [
        (2000, 1500, first["id"]),
        (1500, 1200, second["id"]),
    ]
