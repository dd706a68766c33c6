"""
outbox_message_complete's plain statement (issue 11) against the ORM update it stands for: the same
statement and parameters sent to PostgreSQL, the same rows changed the same way, the same answer.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import sql
from django.test.utils import CaptureQueriesContext

from outbox.models import CLAIMABLE, OutboxMessage, OutboxStatus
from outbox.services import outbox_message_complete, outbox_message_enqueue

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 6, 3, 4, 5, 678_901, tzinfo=UTC)
FIELDS = [field.attname for field in OutboxMessage._meta.concrete_fields]


def _orm_complete(*, message_id: int, now: datetime) -> bool:
    """The update outbox_message_complete ran before it was one plain statement (the reference)."""
    return bool(
        OutboxMessage.objects.filter(pk=message_id, status__in=CLAIMABLE).update(
            status=OutboxStatus.DONE, done_at=now, last_error_type="", last_error=""
        )
    )


def _orm_statement(*, message_id: int, now: datetime) -> tuple[str, list]:
    query = OutboxMessage.objects.filter(pk=message_id, status__in=CLAIMABLE).query.chain(sql.UpdateQuery)
    query.add_update_values({"status": OutboxStatus.DONE, "done_at": now, "last_error_type": "", "last_error": ""})
    query.clear_select_clause()
    statement, params = query.get_compiler(connection.alias).as_sql()
    return statement, list(params)


def _message(status: str) -> OutboxMessage:
    with transaction.atomic():
        message = outbox_message_enqueue(topic="tests.t", payload={"n": 1})
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=status,
        created_at=NOW - timedelta(minutes=2),
        available_at=NOW + timedelta(minutes=5),
        attempts=2,
        handed_out_at=NOW - timedelta(minutes=1),
        started_at=NOW - timedelta(seconds=30),
        done_at=NOW - timedelta(days=1) if status == OutboxStatus.DONE else None,
        last_error_type="ProviderUnavailable",
        last_error="timed out",
    )
    return message


def _row(message_id: int) -> dict:
    return OutboxMessage.objects.filter(pk=message_id).values(*FIELDS).first()


def test_complete_sends_the_orms_update_statement_with_its_parameters():
    message = _message(OutboxStatus.HANDED_OUT)
    expected_sql, expected_params = _orm_statement(message_id=message.pk, now=NOW)
    executed = []

    def capture(execute, statement, params, many, context):
        executed.append((statement, list(params)))
        return execute(statement, params, many, context)

    with connection.execute_wrapper(capture):
        outbox_message_complete(message_id=message.pk, now=NOW)

    assert executed == [(expected_sql, expected_params)]
    assert [type(value) for value in executed[0][1]] == [str, datetime, str, str, int, str, str]


@pytest.mark.parametrize("status", [*OutboxStatus.values, "missing"])
def test_complete_changes_the_same_rows_the_same_way_and_answers_as_the_orm(status):
    bystander = _message(OutboxStatus.HANDED_OUT)  # never touched by another message's completion
    if status == "missing":
        ours_id, orms_id = 10**12, 10**12 + 1  # no such rows
    else:
        ours_id, orms_id = _message(status).pk, _message(status).pk
    before = _row(bystander.pk)

    with CaptureQueriesContext(connection) as ours:
        answer = outbox_message_complete(message_id=ours_id, now=NOW)
    with CaptureQueriesContext(connection) as orms:
        expected = _orm_complete(message_id=orms_id, now=NOW)

    assert answer is expected is (status in CLAIMABLE)
    assert [query["sql"].replace(f'"id" = {ours_id} ', '"id" = ID ') for query in ours.captured_queries] == [
        query["sql"].replace(f'"id" = {orms_id} ', '"id" = ID ') for query in orms.captured_queries
    ]
    if status != "missing":
        assert {**_row(ours_id), "id": None} == {**_row(orms_id), "id": None}
    assert _row(bystander.pk) == before


def test_a_second_completion_is_a_duplicate_and_changes_nothing():
    message = _message(OutboxStatus.HANDED_OUT)
    outbox_message_complete(message_id=message.pk, now=NOW)
    done = _row(message.pk)

    assert outbox_message_complete(message_id=message.pk, now=NOW + timedelta(minutes=1)) is False
    assert _row(message.pk) == done
    assert done["status"] == OutboxStatus.DONE and done["done_at"] == NOW
    assert (done["last_error_type"], done["last_error"]) == ("", "")


@pytest.mark.parametrize("complete", [outbox_message_complete, _orm_complete])
def test_a_completion_the_database_refuses_marks_the_callers_transaction_for_rollback(complete):
    message = _message(OutboxStatus.HANDED_OUT)

    with transaction.atomic():
        with pytest.raises(IntegrityError):  # DONE without done_at: outbox_done_at_iff_done refuses it
            complete(message_id=message.pk, now=None)
        assert connection.needs_rollback is True  # the next query raises rather than run in a failed transaction


def test_a_message_id_that_is_no_number_is_refused_as_the_orm_refuses_it():
    with pytest.raises(ValueError, match="expected a number") as orm:
        _orm_complete(message_id="seven", now=NOW)
    with pytest.raises(ValueError, match="expected a number") as ours:
        outbox_message_complete(message_id="seven", now=NOW)

    assert str(ours.value) == str(orm.value)
