"""Writing outbox rows, and the consumer side of their lifecycle: done, retry later, dead, retry now."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from config.log import without_row_values
from config.metrics import outbox_task_outcome_observed
from outbox.backoff import outbox_next_attempt_at
from outbox.errors import GiveUp, OutboxOutsideTransaction, RetryLater
from outbox.models import CLAIMABLE, OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)
ERROR_MESSAGE_MAX_LENGTH = 500  # last_error is for ops: the gist, not a stack trace
UNKNOWN_TOPIC = "unknown"  # the metrics label of a message id that has no row (purged, or never existed)


def outbox_message_enqueue(*, topic: str, payload: dict, available_at: datetime | None = None) -> OutboxMessage:
    """
    Write a message for the relay in the caller's transaction, so it exists iff the change commits.

    :raises OutboxOutsideTransaction: if no transaction is open (the message could outlive a rollback
        or be committed without its change)
    """
    if not transaction.get_connection().in_atomic_block:
        raise OutboxOutsideTransaction(f"outbox message {topic!r} must be written inside transaction.atomic()")
    message = outbox_message_build(topic=topic, payload=payload, available_at=available_at)
    message.save(force_insert=True)
    return message


def outbox_message_build(*, topic: str, payload: dict, available_at: datetime | None = None) -> OutboxMessage:
    """The message `outbox_message_enqueue` writes, unsaved: for a caller that inserts it together with the
    change that needs it, in one statement of the same transaction."""
    return OutboxMessage(topic=topic, payload=payload, available_at=available_at or timezone.now())


def outbox_message_insert(*, topic: str, payload: dict, now: datetime) -> int:
    """
    Write a message for the relay in the caller's transaction and return its id: `outbox_message_enqueue`
    in one plain INSERT, without building a model instance (the webhook intake's hot path).

    :raises OutboxOutsideTransaction: if no transaction is open
    """
    if not transaction.get_connection().in_atomic_block:
        raise OutboxOutsideTransaction(f"outbox message {topic!r} must be written inside transaction.atomic()")
    statement, defaults = _insert_statement()
    payload_field = OutboxMessage._meta.get_field("payload")
    values = {**defaults, "topic": topic, "payload": payload_field.get_db_prep_save(payload, connection)}
    values["created_at"] = values["available_at"] = now
    with connection.cursor() as cursor:
        cursor.execute(statement, list(values.values()))
        return cursor.fetchone()[0]


@functools.cache
def _insert_statement() -> tuple[str, dict[str, object]]:
    """The INSERT of every column but the id, and each column's model default: no second list of them."""
    fields = [field for field in OutboxMessage._meta.concrete_fields if not field.primary_key]
    defaults = {field.attname: field.get_default() for field in fields}
    table = connection.ops.quote_name(OutboxMessage._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING id", defaults  # noqa: S608


def outbox_message_process(*, message_id: int, work: Callable[[], object]) -> str:
    """
    Run a consumer's `work` for one outbox message and record the outcome on the row.

    Delivery is at least once (a lease that expires hands a row out again), so `work` must be safe
    to repeat; a message already DONE or DEAD is skipped. Returns "done", "retry", "dead" or "skipped".
    """
    row = _outbox_message_start(message_id=message_id, now=timezone.now())
    if row is None:  # settled already (a duplicate delivery) or gone: read its topic for the count only
        row = OutboxMessage.objects.filter(pk=message_id).values("topic").first()
        logger.info("outbox message %s already settled; duplicate delivery skipped", message_id)
        return _outcome_observed(row, "skipped")
    with structlog.contextvars.bound_contextvars(outbox_message_id=message_id, attempt=row["attempts"]):
        try:
            work()
        except GiveUp as exc:
            return _outcome_observed(
                row, outbox_message_kill(message_id=message_id, error_type=exc.error_type, error=exc.message)
            )
        except RetryLater as exc:
            status = outbox_message_retry(
                message_id=message_id,
                error_type=exc.error_type,
                error=exc.message,
                retry_after=exc.retry_after,
                count_attempt=exc.count_attempt,
                now=timezone.now(),
            )
            return _outcome_observed(row, status)
        except Exception as exc:
            # A bug, not a provider's answer: keep the row (it retries, then dies visibly for ops).
            logger.exception("outbox message %s (%s) failed unexpectedly", message_id, row["topic"])
            status = outbox_message_retry(
                message_id=message_id,
                error_type=type(exc).__name__,
                error=without_row_values(str(exc)),  # ops read it in the admin: no customer data
                retry_after=None,
                count_attempt=True,
                now=timezone.now(),
            )
            _outcome_observed(row, status)
            if settings.OUTBOX_CONSUMER_RAISES:  # tests: a bug must fail the test, not hide in a retry
                raise
            return status
        outbox_message_complete(message_id=message_id, now=timezone.now())
        return _outcome_observed(row, "done")


def _outcome_observed(row: dict | None, outcome: str) -> str:
    outbox_task_outcome_observed(topic=row["topic"] if row else UNKNOWN_TOPIC, outcome=outcome)
    return outcome


def _outbox_message_start(*, message_id: int, now: datetime) -> dict | None:
    """Mark the message's work as started, renewing its lease; None if it is settled or gone.

    A started task spends its attempt even if it never reports (killed mid-call); one that waited in a
    queue past its lease did not (the relay hands it out again as the same attempt). The lease restarts
    now, so a task that waited long in the queue is not handed out a second time while it runs.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {OutboxMessage._meta.db_table}
                   SET started_at = %s, available_at = GREATEST(available_at, %s)
                 WHERE id = %s AND status = ANY(%s)
             RETURNING status, attempts, topic""",  # noqa: S608 - the table name is ours
            [
                now,
                now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS),
                message_id,
                [str(status) for status in CLAIMABLE],
            ],
        )
        found = cursor.fetchone()
    return None if found is None else dict(zip(("status", "attempts", "topic"), found, strict=True))


def outbox_message_complete(*, message_id: int, now: datetime) -> bool:
    """Mark the message's work finished; False if it was already settled (a duplicate delivery)."""
    done_at = OutboxMessage._meta.get_field("done_at").get_db_prep_save(now, connection)
    message_id = OutboxMessage._meta.pk.get_db_prep_value(message_id, connection)  # as the lookup prepares it
    params = [OutboxStatus.DONE.value, done_at, "", "", message_id, *_CLAIMABLE_VALUES]
    # As the ORM's update runs it: an error inside the caller's transaction marks that for rollback.
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(_complete_statement(), params)
        return cursor.rowcount > 0


_CLAIMABLE_VALUES = tuple(status.value for status in CLAIMABLE)


@functools.cache
def _complete_statement() -> str:
    """
    What `OutboxMessage.objects.filter(pk=message_id, status__in=CLAIMABLE).update(status=DONE, done_at=now,
    last_error_type="", last_error="")` sends, written out once (issue 11): the ORM built and compiled it
    for every task, 15 % of a webhook task's CPU. The same statement with the same parameters, so the same
    rows and locks (tests/outbox/test_outbox_message_complete.py holds it to the ORM's, text and values).
    """
    quote = connection.ops.quote_name
    table = quote(OutboxMessage._meta.db_table)
    columns = ("status", "done_at", "last_error_type", "last_error")
    assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
    claimable = ", ".join(["%s"] * len(CLAIMABLE))
    return (
        f"UPDATE {table} SET {assignments} "  # noqa: S608 - the table and columns are ours
        f"WHERE ({table}.{quote('id')} = %s AND {table}.{quote('status')} IN ({claimable}))"
    )


def outbox_message_retry(
    *,
    message_id: int,
    error_type: str,
    error: str,
    retry_after: float | None,
    count_attempt: bool,
    now: datetime,
) -> str:
    """
    Put the message back to DUE at its next attempt time, or make it DEAD after the last attempt.

    The time comes from the one backoff policy (exponential, full jitter, capped) with `retry_after`
    as a floor. `count_attempt=False` gives the hand-out's attempt back (nothing was tried).
    Returns "retry", "dead" or "skipped" (already settled by another delivery).
    """
    with transaction.atomic(durable=True):
        message = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None or message.status not in CLAIMABLE:
            return "skipped"
        if not count_attempt:
            message.attempts = max(message.attempts - 1, 0)
        message.last_error_type = error_type[:64]
        message.last_error = error[:ERROR_MESSAGE_MAX_LENGTH]
        if count_attempt and message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            message.status = OutboxStatus.DEAD
            logger.error(
                "outbox message %s (%s) is dead after %d attempts: %s",
                message.pk,
                message.topic,
                message.attempts,
                error_type,
            )
        else:
            message.status = OutboxStatus.DUE
            message.available_at = outbox_next_attempt_at(now=now, attempts=message.attempts, retry_after=retry_after)
        message.save(update_fields=["status", "attempts", "available_at", "last_error_type", "last_error"])
    return "dead" if message.status == OutboxStatus.DEAD else "retry"


def outbox_message_kill(*, message_id: int, error_type: str, error: str) -> str:
    """Make the message DEAD at once (no retry can help); ops see it with its error and can retry it."""
    updated = OutboxMessage.objects.filter(pk=message_id, status__in=CLAIMABLE).update(
        status=OutboxStatus.DEAD, last_error_type=error_type[:64], last_error=error[:ERROR_MESSAGE_MAX_LENGTH]
    )
    if updated:
        logger.error("outbox message %s is dead: %s", message_id, error_type)
    return "dead" if updated else "skipped"


def outbox_message_retry_now(*, message_id: int, now: datetime) -> OutboxMessage:
    """
    Make a DEAD (or waiting) message due at once with a fresh set of attempts: ops' "retry now".

    Its last error stays on the row until the next attempt reports. A DONE message is left alone.
    """
    with transaction.atomic(durable=True):
        message = OutboxMessage.objects.select_for_update().get(pk=message_id)
        if message.status == OutboxStatus.DONE:
            return message
        message.status = OutboxStatus.DUE
        message.available_at = now
        message.attempts = 0
        message.save(update_fields=["status", "available_at", "attempts"])
    return message


def outbox_messages_retry_now(*, payloads: list[dict], now: datetime) -> list[int]:
    """
    Make every waiting (DUE) or DEAD message whose payload holds one of `payloads` due at once, with a
    fresh set of attempts, in the caller's transaction; return their ids. A message handed out (a
    worker has it) or done is left alone. Ops' "retry now" for everything queued for one entity.

    :raises OutboxOutsideTransaction: if no transaction is open (the caller records the retry with it)
    """
    if not transaction.get_connection().in_atomic_block:
        raise OutboxOutsideTransaction("outbox messages must be made due again inside transaction.atomic()")
    if not payloads:
        return []
    matches = Q()
    for payload in payloads:
        matches |= Q(payload__contains=payload)
    message_ids = list(
        OutboxMessage.objects.select_for_update()
        .filter(matches, status__in=[OutboxStatus.DUE, OutboxStatus.DEAD])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    OutboxMessage.objects.filter(pk__in=message_ids).update(status=OutboxStatus.DUE, available_at=now, attempts=0)
    return message_ids


def outbox_message_purge_done(*, now: datetime, batch_size: int = 1000, max_batches: int = 100) -> int:
    """Delete DONE rows older than OUTBOX_DONE_RETENTION_HOURS, in short batches that hold no long lock."""
    cutoff = now - timedelta(hours=settings.OUTBOX_DONE_RETENTION_HOURS)
    deleted_total = 0
    for _ in range(max_batches):
        ids = list(
            OutboxMessage.objects.filter(status=OutboxStatus.DONE, done_at__lt=cutoff)
            .order_by("done_at")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        deleted, _ = OutboxMessage.objects.filter(pk__in=ids, status=OutboxStatus.DONE).delete()
        deleted_total += deleted
    return deleted_total
