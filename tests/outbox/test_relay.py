import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import override_settings
from django.utils import timezone
from prometheus_client import REGISTRY

from outbox.errors import PublishInterrupted
from outbox.models import CLAIMABLE, OutboxMessage
from outbox.registry import outbox_topic_register
from outbox.relay import NEXT_DUE_SQL, outbox_next_due_in, outbox_relay_batch, outbox_relay_claim
from outbox.services import outbox_message_enqueue

pytestmark = pytest.mark.django_db
TOPIC = "tests.outbox.thing_happened"
outbox_topic_register(topic=TOPIC, task_name="tests.thing_task")


class RecordingPublisher:
    def __init__(self, fail_after: int | None = None) -> None:
        self.published: list[tuple[str, dict]] = []
        self.fail_after = fail_after
        self.resets = 0

    def publish(self, batch) -> None:
        for index, (task_name, message) in enumerate(batch):
            if self.fail_after is not None and len(self.published) >= self.fail_after:
                raise PublishInterrupted(published=index) from ConnectionError("broker down")
            self.published.append((task_name, {**message.payload, "message_id": message.id}))

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass


def enqueue(count: int = 1, *, topic: str = TOPIC, available_at=None) -> list[OutboxMessage]:
    with transaction.atomic():
        return [outbox_message_enqueue(topic=topic, payload={"n": n}, available_at=available_at) for n in range(count)]


def test_relay_batch_hands_out_due_rows_oldest_first_with_a_lease_and_publishes_each_once():
    messages = enqueue(3)
    publisher = RecordingPublisher()
    now = timezone.now()

    result = outbox_relay_batch(publisher=publisher, now=now)

    assert (result.claimed, result.published) == (3, 3)
    assert [payload["message_id"] for _, payload in publisher.published] == [m.pk for m in messages]
    for message in OutboxMessage.objects.all():
        assert message.status == OutboxMessage.Status.HANDED_OUT
        assert message.attempts == 1
        assert message.available_at > now  # the lease
    assert outbox_relay_batch(publisher=publisher, now=now).claimed == 0


def test_relay_leaves_rows_that_are_not_due_yet():
    enqueue(1, available_at=timezone.now() + timedelta(minutes=5))

    assert outbox_relay_batch(publisher=RecordingPublisher()).claimed == 0
    assert 299 < outbox_next_due_in(now=timezone.now()) <= 300


def task_started(at) -> None:
    """What the consumer does first (outbox_message_process): the hand-out's task began."""
    OutboxMessage.objects.update(started_at=at)


@override_settings(OUTBOX_LEASE_SECONDS=60)
def test_a_row_whose_task_started_and_never_reported_is_handed_out_again_as_its_next_attempt():
    enqueue(1)
    now = timezone.now()
    outbox_relay_batch(publisher=RecordingPublisher(), now=now)
    task_started(now + timedelta(seconds=1))

    publisher = RecordingPublisher()
    assert outbox_relay_batch(publisher=publisher, now=now + timedelta(seconds=59)).claimed == 0
    result = outbox_relay_batch(publisher=publisher, now=now + timedelta(seconds=61))

    assert result.published == 1
    assert OutboxMessage.objects.get().attempts == 2


@override_settings(OUTBOX_LEASE_SECONDS=60, OUTBOX_MAX_ATTEMPTS=2)
def test_a_lease_that_expires_while_no_worker_took_the_task_spends_no_attempt_and_never_kills_the_row():
    enqueue(1)
    now = timezone.now()

    for lease in range(10):  # workers down for ten leases: the row waits for them, handed out again each time
        result = outbox_relay_batch(publisher=RecordingPublisher(), now=now + timedelta(minutes=2 * lease))
        assert (result.published, result.dead) == (1, 0)

    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts) == (OutboxMessage.Status.HANDED_OUT, 1)


@override_settings(OUTBOX_LEASE_SECONDS=60, OUTBOX_MAX_ATTEMPTS=2)
def test_a_row_whose_lease_expires_after_its_last_attempt_is_dead_not_handed_out_forever():
    enqueue(1)
    now = timezone.now()
    for minute in range(2):
        at = now + timedelta(minutes=2 * minute)
        outbox_relay_batch(publisher=RecordingPublisher(), now=at)
        task_started(at + timedelta(seconds=1))  # and killed mid-call: it never reports

    publisher = RecordingPublisher()
    result = outbox_relay_batch(publisher=publisher, now=now + timedelta(minutes=10))

    assert (result.published, result.dead) == (0, 1)
    message = OutboxMessage.objects.get()
    assert (message.status, message.last_error_type) == (OutboxMessage.Status.DEAD, "lease_expired")


def test_a_broker_outage_gives_the_unpublished_rows_back_without_spending_their_attempt():
    enqueue(3)
    publisher = RecordingPublisher(fail_after=1)

    result = outbox_relay_batch(publisher=publisher)

    assert result.published == 1 and len(result.failed_ids) == 2
    given_back = OutboxMessage.objects.filter(pk__in=result.failed_ids)
    assert {(m.status, m.attempts, m.last_error_type) for m in given_back} == {
        (OutboxMessage.Status.DUE, 0, "broker_unavailable")
    }
    assert publisher.resets == 1


def test_a_topic_no_app_consumes_is_retried_then_visible_not_published():
    enqueue(1, topic="tests.nobody.listens")

    result = outbox_relay_batch(publisher=RecordingPublisher())

    assert result.published == 0
    message = OutboxMessage.objects.get()
    assert (message.status, message.last_error_type) == (OutboxMessage.Status.DUE, "unknown_topic")


def relay_counts() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("outbox_relay_messages_total", {"outcome": outcome}) or 0.0
        for outcome in ("published", "given_back", "unrouted", "dead")
    }


def test_relay_batch_counts_its_messages_published_given_back_and_unrouted():
    enqueue(1, topic="tests.nobody.listens")
    enqueue(3)
    before = relay_counts()

    outbox_relay_batch(publisher=RecordingPublisher(fail_after=1))

    after = relay_counts()
    assert {outcome: after[outcome] - before[outcome] for outcome in after} == {
        "published": 1,
        "given_back": 2,
        "unrouted": 1,
        "dead": 0,
    }


@pytest.mark.django_db(transaction=True)
def test_two_relays_claiming_at_once_never_hand_out_the_same_row():
    enqueue(400)
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = [[], []]

    def relay(index: int) -> None:
        try:
            barrier.wait()
            while True:
                batch, _ = outbox_relay_claim(now=timezone.now(), limit=25)
                if not batch:
                    return
                claimed[index].extend(message.id for message in batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=relay, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(claimed[0]) + len(claimed[1]) == 400
    assert not set(claimed[0]) & set(claimed[1])
    assert claimed[0] and claimed[1]  # both really worked (SKIP LOCKED, not one relay waiting)


@pytest.mark.django_db(transaction=True)
def test_the_writing_transaction_notifies_listening_relays_at_commit_and_not_on_rollback():
    import psycopg

    listener = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    listener.execute("LISTEN outbox")
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            outbox_message_enqueue(topic=TOPIC, payload={})
            raise RuntimeError("rolled back")
        assert list(listener.notifies(timeout=0.3, stop_after=1)) == []

        enqueue(2)

        assert [n.channel for n in listener.notifies(timeout=2, stop_after=1)] == ["outbox"]
    finally:
        listener.close()


def _next_due_in_by_the_orm(now) -> float | None:
    """The relay's query as the ORM built it before NEXT_DUE_SQL: the reference the raw statement must match."""
    next_at = (
        OutboxMessage.objects.filter(status__in=CLAIMABLE)
        .order_by("available_at")
        .values_list("available_at", flat=True)
        .first()
    )
    return None if next_at is None else max((next_at - now).total_seconds(), 0.0)


def test_the_next_due_time_is_the_earliest_claimable_row_as_the_orm_query_says():
    now = timezone.now()
    assert outbox_next_due_in(now=now) is None
    assert _next_due_in_by_the_orm(now) is None
    rows = [  # (status, available_at): settled rows are earliest, so a wrong filter would answer them
        (OutboxMessage.Status.DONE, now - timedelta(hours=2)),
        (OutboxMessage.Status.DEAD, now - timedelta(hours=1)),
        (OutboxMessage.Status.DUE, now + timedelta(minutes=7)),
        (OutboxMessage.Status.HANDED_OUT, now + timedelta(minutes=3)),  # a lease ending: claimable then
    ]
    answers = []
    for status, available_at in rows:
        message = enqueue(1, available_at=available_at)[0]
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=status, done_at=now if status == OutboxMessage.Status.DONE else None
        )
        answers.append((outbox_next_due_in(now=now), _next_due_in_by_the_orm(now)))
    enqueue(1, available_at=now - timedelta(seconds=5))  # one due already: 0, not negative
    answers.append((outbox_next_due_in(now=now), _next_due_in_by_the_orm(now)))

    assert [raw for raw, _ in answers] == [orm for _, orm in answers]
    assert [None if raw is None else round(raw) for raw, _ in answers] == [None, None, 420, 180, 0]


def test_the_next_due_query_is_the_claimable_index_predicate():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = 'outbox_claimable'"
        )
        (predicate,) = cursor.fetchone()
    statuses = sorted(str(status) for status in CLAIMABLE)

    assert all(f"'{status}'" in predicate for status in statuses), predicate
    assert f"status IN ('{statuses[0]}', '{statuses[1]}')" in " ".join(NEXT_DUE_SQL.split())
