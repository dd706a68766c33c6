import random
from datetime import timedelta

import pytest
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY

from outbox.backoff import outbox_backoff_delay
from outbox.errors import GiveUp, RetryLater
from outbox.models import OutboxMessage
from outbox.services import (
    outbox_message_enqueue,
    outbox_message_process,
    outbox_message_purge_done,
    outbox_message_retry_now,
)

pytestmark = pytest.mark.django_db


def handed_out(attempts: int = 1) -> OutboxMessage:
    with transaction.atomic():
        message = outbox_message_enqueue(topic="tests.t", payload={})
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxMessage.Status.HANDED_OUT, attempts=attempts, available_at=timezone.now() + timedelta(minutes=5)
    )
    return message


def raise_(exc: Exception):
    def work():
        raise exc

    return work


def test_finished_work_marks_the_message_done():
    message = handed_out()

    assert outbox_message_process(message_id=message.pk, work=lambda: None) == "done"

    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.DONE and message.done_at is not None


def test_a_duplicate_delivery_of_a_done_message_does_not_run_the_work_again():
    message = handed_out()
    outbox_message_process(message_id=message.pk, work=lambda: None)
    runs = []

    assert outbox_message_process(message_id=message.pk, work=lambda: runs.append(1)) == "skipped"
    assert runs == []


def test_retry_later_puts_the_message_back_no_sooner_than_retry_after():
    message = handed_out()
    before = timezone.now()

    status = outbox_message_process(
        message_id=message.pk, work=raise_(RetryLater("429", error_type="rate_limited", retry_after=30))
    )

    message.refresh_from_db()
    assert status == "retry"
    assert message.status == OutboxMessage.Status.DUE
    assert message.available_at >= before + timedelta(seconds=30)
    assert (message.last_error_type, message.last_error, message.attempts) == ("rate_limited", "429", 1)


def test_a_deferral_that_made_no_attempt_gives_the_attempt_back():
    message = handed_out(attempts=3)

    outbox_message_process(
        message_id=message.pk,
        work=raise_(RetryLater("no token", error_type="rate_limiter", retry_after=0.2, count_attempt=False)),
    )

    message.refresh_from_db()
    assert message.attempts == 2


@override_settings(OUTBOX_MAX_ATTEMPTS=3)
def test_the_last_failed_attempt_makes_the_message_dead_and_keeps_it():
    message = handed_out(attempts=3)

    status = outbox_message_process(message_id=message.pk, work=raise_(RetryLater("503", error_type="server_error")))

    message.refresh_from_db()
    assert status == "dead"
    assert (message.status, message.last_error_type) == (OutboxMessage.Status.DEAD, "server_error")


def test_give_up_makes_the_message_dead_at_once():
    message = handed_out()

    assert outbox_message_process(message_id=message.pk, work=raise_(GiveUp("bug", error_type="conflict"))) == "dead"
    assert OutboxMessage.objects.get().status == OutboxMessage.Status.DEAD


@override_settings(OUTBOX_CONSUMER_RAISES=False)
def test_an_unexpected_error_is_retried_with_its_type_recorded():
    message = handed_out()

    status = outbox_message_process(message_id=message.pk, work=raise_(KeyError("boom")))

    message.refresh_from_db()
    assert status == "retry"
    assert (message.status, message.last_error_type) == (OutboxMessage.Status.DUE, "KeyError")


def test_an_unexpected_error_is_raised_in_tests_after_being_recorded():
    message = handed_out()

    with pytest.raises(KeyError):
        outbox_message_process(message_id=message.pk, work=raise_(KeyError("boom")))

    assert OutboxMessage.objects.get().last_error_type == "KeyError"


def outcome_counts(topic: str) -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("outbox_task_outcomes_total", {"topic": topic, "outcome": outcome}) or 0.0
        for outcome in ("done", "retry", "dead", "skipped")
    }


def test_each_processing_outcome_is_counted_under_the_messages_topic():
    finished, retried, given_up, buggy = handed_out(), handed_out(), handed_out(), handed_out()
    before = outcome_counts("tests.t")

    outbox_message_process(message_id=finished.pk, work=lambda: None)
    outbox_message_process(message_id=finished.pk, work=lambda: None)  # a duplicate delivery
    outbox_message_process(message_id=retried.pk, work=raise_(RetryLater("503", error_type="server_error")))
    outbox_message_process(message_id=given_up.pk, work=raise_(GiveUp("bug", error_type="conflict")))
    with pytest.raises(KeyError):  # a bug is counted as the retry it became before it is raised
        outbox_message_process(message_id=buggy.pk, work=raise_(KeyError("boom")))

    after = outcome_counts("tests.t")
    assert {outcome: after[outcome] - before[outcome] for outcome in after} == {
        "done": 1,
        "retry": 2,
        "dead": 1,
        "skipped": 1,
    }


def test_a_message_id_without_a_row_is_counted_as_skipped_under_an_unknown_topic():
    before = outcome_counts("unknown")["skipped"]

    assert outbox_message_process(message_id=987654321, work=lambda: None) == "skipped"

    assert outcome_counts("unknown")["skipped"] == before + 1


def test_retry_now_makes_a_dead_message_due_with_fresh_attempts():
    message = handed_out(attempts=12)
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.DEAD)
    now = timezone.now()

    outbox_message_retry_now(message_id=message.pk, now=now)

    message.refresh_from_db()
    assert (message.status, message.attempts, message.available_at) == (OutboxMessage.Status.DUE, 0, now)


@override_settings(OUTBOX_DONE_RETENTION_HOURS=1)
def test_purge_deletes_only_done_messages_past_retention():
    old, recent, dead = handed_out(), handed_out(), handed_out()
    now = timezone.now()
    OutboxMessage.objects.filter(pk=old.pk).update(status="DONE", done_at=now - timedelta(hours=2))
    OutboxMessage.objects.filter(pk=recent.pk).update(status="DONE", done_at=now)
    OutboxMessage.objects.filter(pk=dead.pk).update(status="DEAD")

    assert outbox_message_purge_done(now=now, batch_size=1) == 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {recent.pk, dead.pk}


@override_settings(OUTBOX_BACKOFF_BASE_SECONDS=1.0, OUTBOX_BACKOFF_CAP_SECONDS=60.0)
def test_backoff_is_full_jitter_under_an_exponential_ceiling_with_a_cap_and_a_floor():
    rng = random.Random(7)

    delays = {
        attempts: [outbox_backoff_delay(attempts=attempts, rng=rng) for _ in range(200)] for attempts in (1, 4, 20)
    }

    assert all(0 <= d <= 1 for d in delays[1])
    assert all(0 <= d <= 8 for d in delays[4]) and max(delays[4]) > 6  # spread over the whole range
    assert all(0 <= d <= 60 for d in delays[20]) and max(delays[20]) > 50  # capped
    assert min(outbox_backoff_delay(attempts=1, retry_after=5, rng=rng) for _ in range(50)) >= 5


def violate_a_check_constraint_on_a_payment_with_customer_data():
    from payments.models import Payment
    from tests.factories import PaymentFactory

    payment = PaymentFactory()  # description, reference and metadata hold planted personal data

    def work():
        with transaction.atomic():
            Payment.objects.filter(pk=payment.pk).update(amount=-1)  # PostgreSQL: "Failing row contains (…)"

    return work


@override_settings(OUTBOX_CONSUMER_RAISES=False)
def test_a_constraint_violation_is_stored_and_logged_without_the_row_values_postgresql_quotes(caplog):
    from config.log import ROW_DETAIL_WITHHELD
    from tests.pii import app_log_formatter, find_pii

    message = handed_out()

    outbox_message_process(message_id=message.pk, work=violate_a_check_constraint_on_a_payment_with_customer_data())

    message.refresh_from_db()
    assert message.last_error_type == "IntegrityError"
    assert ROW_DETAIL_WITHHELD in message.last_error and "Failing row" not in message.last_error
    assert find_pii(message.last_error) == []
    rendered = "\n".join(app_log_formatter().format(record) for record in caplog.records)
    assert "IntegrityError" in rendered and ROW_DETAIL_WITHHELD in rendered
    assert find_pii(rendered) == []
