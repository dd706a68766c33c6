"""
The relay: claims due outbox rows and hands them to Celery, one batch at a time.

Claiming is one statement, `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING`:
several relays can run at once and never hand out the same row at the same time, and the hand-out
(status HANDED_OUT, a lease in `available_at`) is committed before anything is published, so a task
can never report back on a row its relay has not released. A relay that dies after claiming loses
nothing: the lease expires and the rows are claimed again. A row that comes back from an expired
lease after its last attempt is DEAD, not handed out forever.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from celery.utils import uuid
from celery.utils.saferepr import saferepr
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from config.metrics import outbox_relay_batch_observed
from outbox.errors import PublishInterrupted, UnknownTopic
from outbox.models import OutboxMessage, OutboxStatus
from outbox.registry import outbox_topic_task_name
from outbox.services import outbox_message_retry

logger = logging.getLogger(__name__)
NOTIFY_CHANNEL = "outbox"  # the migration's trigger notifies this channel on every insert and re-schedule
_TABLE = OutboxMessage._meta.db_table

# The bench's raw anchor (bench/relay_drain.py) sends this same statement.
CLAIM_SQL = f"""
WITH due AS (
    SELECT id FROM {_TABLE}
    WHERE status IN ('{OutboxStatus.DUE}', '{OutboxStatus.HANDED_OUT}') AND available_at <= %(now)s
    ORDER BY available_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), leased AS (
    -- A lease that expired on a task that never started (workers down, a long queue) spent no attempt:
    -- the row is handed out again as the same attempt. One whose task started and never reported did.
    SELECT m.id, m.attempts,
           (m.status = '{OutboxStatus.HANDED_OUT}' AND (m.started_at IS NULL OR m.started_at < m.handed_out_at))
               AS never_started,
           (m.status = '{OutboxStatus.HANDED_OUT}' AND m.started_at >= m.handed_out_at) AS started
    FROM {_TABLE} m JOIN due ON due.id = m.id
), claimed AS (
    SELECT id, never_started, (started AND attempts >= %(max_attempts)s) AS expired_last FROM leased
)
UPDATE {_TABLE} m SET
    status = CASE WHEN claimed.expired_last THEN '{OutboxStatus.DEAD}' ELSE '{OutboxStatus.HANDED_OUT}' END,
    attempts = CASE WHEN claimed.expired_last OR claimed.never_started THEN m.attempts ELSE m.attempts + 1 END,
    last_error_type = CASE WHEN claimed.expired_last THEN 'lease_expired' ELSE m.last_error_type END,
    handed_out_at = %(now)s,
    available_at = %(lease_until)s
FROM claimed WHERE m.id = claimed.id
RETURNING m.id, m.topic, m.payload, m.status, m.attempts
"""  # noqa: S608 - the table name and statuses are ours, values are parameters


@dataclass(frozen=True)
class Claimed:
    id: int
    topic: str
    payload: dict
    attempts: int


@dataclass
class BatchResult:
    claimed: int = 0
    published: int = 0
    dead: int = 0
    failed_ids: list[int] = field(default_factory=list)


def outbox_relay_claim(*, now: datetime, limit: int) -> tuple[list[Claimed], int]:
    """Claim up to `limit` due rows (oldest first) in one statement; return them and how many died."""
    lease_until = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            CLAIM_SQL,
            {"now": now, "limit": limit, "lease_until": lease_until, "max_attempts": settings.OUTBOX_MAX_ATTEMPTS},
        )
        rows = cursor.fetchall()
    claimed, dead = [], 0
    for message_id, topic, payload, status, attempts in sorted(rows):
        if status == OutboxStatus.DEAD:
            dead += 1
            logger.error("outbox message %s (%s) is dead: its lease expired after the last attempt", message_id, topic)
            continue
        # Django's psycopg adapter hands jsonb over as text (JSONField parses it); so do we.
        payload = json.loads(payload) if isinstance(payload, str) else payload
        claimed.append(Claimed(id=message_id, topic=topic, payload=payload, attempts=attempts))
    return claimed, dead


def outbox_relay_release(*, message_ids: list[int], now: datetime, error_type: str, error: str) -> None:
    """Give claimed rows back (publishing failed): due again soon, the hand-out's attempt returned."""
    if not message_ids:
        return
    OutboxMessage.objects.filter(pk__in=message_ids, status=OutboxStatus.HANDED_OUT).update(
        status=OutboxStatus.DUE,
        available_at=now + timedelta(seconds=settings.OUTBOX_RELAY_PUBLISH_RETRY_SECONDS),
        attempts=Greatest(F("attempts") - 1, 0),
        last_error_type=error_type[:64],
        last_error=error[:500],
    )


class _RecordingProducer:
    """Stands in for a kombu producer while Celery builds a message: records what it would publish."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.published: list[tuple[tuple, dict]] = []

    def publish(self, body, **options) -> None:
        self.published.append((body, options))


@dataclass(frozen=True)
class _TaskTemplate:
    """What Celery's `send_task` hands kombu for one task name, minus what differs per message."""

    args: tuple
    embed: dict
    headers: dict
    options: dict  # kombu `Producer.publish` keywords: exchange, routing key, serializer, properties, declare


class CeleryPublisher:
    """
    Publishes claimed rows as Celery task messages through one kombu producer kept for the relay's life.

    Celery's `send_task` costs ~0.4 ms of CPU per message (options, routing, reprs, entity
    declaration) and a broker round trip. Here Celery builds one message per task name, through
    `send_task` itself, and each row's message is that one with its own task id, kwargs and
    kwargsrepr; kombu still serializes and routes every message (`Producer.publish`), and its
    `Producer.batch` sends up to `pipeline_rows` of them in one Redis pipeline: one round trip.
    The messages are the ones `send_task` would send (tests/outbox/test_relay_publisher.py compares
    them). Celery's publish signals are not sent per message; the project connects none (tested).
    """

    PIPELINE_ROWS = 500  # messages per pipeline: bounds a round trip's size and what a broken pipeline leaves unsure

    def __init__(self, app=None, *, pipeline_rows: int = PIPELINE_ROWS) -> None:
        if app is None:
            from config.celery import app
        self.app = app
        self.pipeline_rows = pipeline_rows
        self._producer = None
        self._templates: dict[str, _TaskTemplate] = {}

    def _get_producer(self):
        if self._producer is None:
            self._producer = self.app.producer_pool.acquire(block=True)
        return self._producer

    def _template(self, task_name: str, producer) -> _TaskTemplate:
        template = self._templates.get(task_name)
        if template is None:
            recorder = _RecordingProducer(producer.connection)
            self.app.send_task(task_name, kwargs={}, producer=recorder, retry=False)
            ((args, _, embed), options) = recorder.published[0]
            template = _TaskTemplate(args=args, embed=embed, headers=options.pop("headers"), options=options)
            self._templates[task_name] = template
        return template

    def _publish_one(self, producer, task_name: str, message: Claimed, *, declare: bool) -> None:
        template = self._template(task_name, producer)
        kwargs = {**message.payload, "message_id": message.id}
        task_id = uuid()
        headers = {**template.headers, "id": task_id, "root_id": task_id, "kwargsrepr": self._kwargsrepr(kwargs)}
        options = {**template.options, "headers": headers, "correlation_id": task_id}
        # Declared once per pipeline (kombu remembers it per connection); a fresh list, as kombu may append to it.
        options["declare"] = list(options["declare"] or ()) if declare else None
        producer.publish((template.args, kwargs, template.embed), **options)

    def _kwargsrepr(self, kwargs: dict) -> str:
        """Celery's kwargsrepr: `repr` for the flat ids outbox payloads hold (saferepr costs ~30 µs a row)."""
        if all(isinstance(value, str | int | bool | None) for value in kwargs.values()):
            text = repr(kwargs)
            if len(text) <= self.app.amqp.kwargsrepr_maxsize:
                return text
        return saferepr(kwargs, self.app.amqp.kwargsrepr_maxsize, maxlevels=self.app.conf.task_repr_maxlevels)

    def publish(self, batch: list[tuple[str, Claimed]]) -> None:
        """
        Send `(task_name, message)` pairs in order, `pipeline_rows` per round trip.

        :raises PublishInterrupted: if the broker failed; it says how many messages are surely in it
        """
        if not batch:
            return
        published = 0
        try:
            producer = self._get_producer()
            for start in range(0, len(batch), self.pipeline_rows):
                chunk = batch[start : start + self.pipeline_rows]
                declared: set[str] = set()
                # One flush per chunk, when the block ends: the chunk is the unit known to have landed or not.
                with producer.batch(max_size=sys.maxsize):
                    for task_name, message in chunk:
                        self._publish_one(producer, task_name, message, declare=task_name not in declared)
                        declared.add(task_name)
                published += len(chunk)
        except Exception as exc:  # no retry here: the rows go back at once, the relay loop does the waiting
            raise PublishInterrupted(published=published) from exc

    def reset(self) -> None:
        """Drop the producer after a broker error; the next publish connects afresh."""
        if self._producer is not None:
            try:
                self._producer.release()
            except Exception:  # the connection is already broken; nothing to save
                logger.debug("releasing a broken producer failed", exc_info=True)
            self._producer = None

    def close(self) -> None:
        self.reset()


def _give_back(result: BatchResult, routed: list[tuple[str, Claimed]], *, publisher, cause: BaseException) -> None:
    """A broker outage: give back at once every row not surely published, with its attempt returned."""
    result.failed_ids = [message.id for _, message in routed[result.published :]]
    logger.warning(
        "publishing to the broker failed (%s); %d rows given back", type(cause).__name__, len(result.failed_ids)
    )
    publisher.reset()
    outbox_relay_release(
        message_ids=result.failed_ids, now=timezone.now(), error_type="broker_unavailable", error=type(cause).__name__
    )


def outbox_relay_batch(*, publisher, now: datetime | None = None, limit: int | None = None) -> BatchResult:
    """Claim one batch and publish it; rows that could not be published are given back at once."""
    now = now or timezone.now()
    claimed, dead = outbox_relay_claim(now=now, limit=limit or settings.OUTBOX_RELAY_BATCH_SIZE)
    result = BatchResult(claimed=len(claimed), dead=dead)
    routed: list[tuple[str, Claimed]] = []
    unrouted: list[Claimed] = []
    for message in claimed:
        try:
            routed.append((outbox_topic_task_name(topic=message.topic), message))
        except UnknownTopic as exc:
            logger.error("%s (message %s)", exc, message.id)
            unrouted.append(message)
    try:
        publisher.publish(routed)
        result.published = len(routed)
    except PublishInterrupted as exc:
        result.published = exc.published
        _give_back(result, routed, publisher=publisher, cause=exc.__cause__ or exc)
    except Exception as exc:  # a publisher that cannot say how far it got: nothing is surely published
        _give_back(result, routed, publisher=publisher, cause=exc)
    for message in unrouted:  # counts as an attempt: a topic nobody consumes ends DEAD, visible to ops
        outbox_message_retry(
            message_id=message.id,
            error_type="unknown_topic",
            error=f"no task registered for {message.topic}",
            retry_after=None,
            count_attempt=True,
            now=timezone.now(),
        )
    outbox_relay_batch_observed(
        published=result.published, given_back=len(result.failed_ids), unrouted=len(unrouted), dead=dead
    )
    return result


# The relay asks this after every batch that was not full (at a steady trickle, once per batch): sent as
# plain SQL like the claim. Built by the ORM each time, it cost the relay 3 times the claim's CPU.
# Its WHERE is the `outbox_claimable` index's predicate, so the answer is the index's first entry.
NEXT_DUE_SQL = f"""
SELECT available_at FROM {_TABLE}
WHERE status IN ('{OutboxStatus.DUE}', '{OutboxStatus.HANDED_OUT}')
ORDER BY available_at
LIMIT 1
"""  # noqa: S608 - the table name and statuses are ours


def outbox_next_due_in(*, now: datetime) -> float | None:
    """Seconds until the earliest claimable row is due (0 if one is due now), or None if there is none."""
    with connection.cursor() as cursor:
        cursor.execute(NEXT_DUE_SQL)
        row = cursor.fetchone()
    return None if row is None else max((row[0] - now).total_seconds(), 0.0)


class OutboxRelay:
    """The relay loop: drain while there is work, then sleep until a NOTIFY, the next due row or the poll."""

    def __init__(self, *, publisher, poll_interval: float, stop: threading.Event | None = None) -> None:
        self.publisher = publisher
        self.poll_interval = poll_interval
        self.stop = stop or threading.Event()
        self._listener: psycopg.Connection | None = None

    def _listen(self) -> psycopg.Connection | None:
        """A dedicated autocommit connection LISTENing on the channel (None while the database is away)."""
        if self._listener is None or self._listener.closed:
            try:
                params = connection.get_connection_params()
                self._listener = psycopg.connect(**params, autocommit=True)
                self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            except psycopg.Error as exc:
                logger.warning("cannot LISTEN for outbox rows (%s); polling", type(exc).__name__)
                self._listener = None
        return self._listener

    def _wait(self, seconds: float) -> None:
        listener = self._listen()
        if listener is None:
            self.stop.wait(seconds)
            return
        try:
            for _ in listener.notifies(timeout=seconds, stop_after=1):
                break
        except psycopg.Error as exc:
            logger.warning("outbox LISTEN connection lost (%s)", type(exc).__name__)
            listener.close()
            self.stop.wait(min(seconds, 1.0))

    def run_once(self) -> BatchResult:
        return outbox_relay_batch(publisher=self.publisher)

    def run(self) -> None:
        logger.info(
            "outbox relay started (poll every %.1fs, batch %d)", self.poll_interval, settings.OUTBOX_RELAY_BATCH_SIZE
        )
        self._listen()
        backoff = 0.0
        while not self.stop.is_set():
            try:
                result = self.run_once()
            except Exception:
                # The database went away (restart, failover): wait, reconnect, go on. Nothing is lost:
                # rows are claimed only by a committed statement.
                logger.exception("outbox relay batch failed")
                connection.close()
                backoff = min(max(backoff * 2, 0.5), 10.0)
                self.stop.wait(backoff)
                continue
            backoff = 0.0
            if result.failed_ids:  # the broker is down: don't spin
                self.stop.wait(settings.OUTBOX_RELAY_PUBLISH_RETRY_SECONDS)
                continue
            if result.claimed + result.dead >= settings.OUTBOX_RELAY_BATCH_SIZE:
                continue  # more may be due right now
            try:
                due_in = outbox_next_due_in(now=timezone.now())
            except Exception:
                logger.exception("outbox relay could not read the next due time")
                connection.close()
                due_in = None
            wait = self.poll_interval if due_in is None else min(due_in, self.poll_interval)
            if wait > 0:
                started = time.monotonic()
                self._wait(wait)
                logger.debug("relay woke after %.3fs", time.monotonic() - started)
        self.publisher.close()
        if self._listener is not None:
            self._listener.close()
        logger.info("outbox relay stopped")
