"""
Row: the relay's claim-and-publish rate on a pre-filled outbox (BENCH_OUTBOX_ROWS due rows), against a
raw drain of the same table into the same broker.

Ours is `outbox_relay_batch` with the real CeleryPublisher, called until the table is drained, as the
relay loop does under a backlog. The anchor claims the same batches with a plain `UPDATE … FROM
(SELECT … FOR UPDATE SKIP LOCKED)` and pushes each payload onto a Redis list in one pipeline: the
physical limit of moving these rows into this broker. Both start from a freshly filled and vacuumed
table; the published messages are deleted afterwards (the benchmark's own Redis database).
"""

from __future__ import annotations

import json
import os
import time

from bench import writes
from bench.harness import Row, Sample, aba, progress, summarise

ROWS = int(os.environ.get("BENCH_OUTBOX_ROWS", "20000"))
RAW_LIST = "bench.raw_drain"
CELERY_QUEUE = "celery"  # Celery's default queue: where send_task puts the relay's messages

_RAW_CLAIM = """
WITH due AS (
    SELECT id FROM outbox_outboxmessage WHERE status = 'DUE' AND available_at <= now()
    ORDER BY available_at, id LIMIT %s FOR UPDATE SKIP LOCKED
)
UPDATE outbox_outboxmessage m SET status = 'HANDED_OUT', attempts = m.attempts + 1, handed_out_at = now(),
    available_at = now() + interval '5 minutes'
FROM due WHERE m.id = due.id RETURNING m.id, m.topic, m.payload
"""


def _fill(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM outbox_outboxmessage")
        conn.execute(
            "INSERT INTO outbox_outboxmessage (topic, payload, status, created_at, available_at, attempts,"
            " last_error_type, last_error) SELECT %s, jsonb_build_object('payment_id', 'pay_bench_' || g), 'DUE',"
            " now(), now() - interval '1 second', 0, '', '' FROM generate_series(1, %s) g",
            [writes.CREATE_TOPIC, ROWS],
        )
        conn.execute("VACUUM ANALYZE outbox_outboxmessage")


def _redis():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def _sample(batches: list[float], rows: int, elapsed: float) -> Sample:
    sample = Sample.of(batches, elapsed)  # p50/p99: per batch
    sample.rate, sample.count = rows / elapsed, rows
    return sample


def relay(dsn: str, batch: int) -> Sample:
    from outbox.relay import CeleryPublisher, outbox_relay_batch

    _fill(dsn)
    publisher = CeleryPublisher()
    batches, rows = [], 0
    began = time.perf_counter()
    try:
        while True:
            started = time.perf_counter()
            result = outbox_relay_batch(publisher=publisher, limit=batch)
            if not result.claimed:
                break
            if result.failed_ids:
                raise RuntimeError(f"the relay could not publish {len(result.failed_ids)} rows")
            batches.append(time.perf_counter() - started)
            rows += result.published
    finally:
        publisher.close()
    elapsed = time.perf_counter() - began
    _redis().delete(CELERY_QUEUE)
    if rows != ROWS:
        raise RuntimeError(f"the relay published {rows} of {ROWS} rows")
    return _sample(batches, rows, elapsed)


def raw_drain(dsn: str, batch: int) -> Sample:
    import psycopg

    _fill(dsn)
    broker = _redis()
    batches, rows = [], 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        began = time.perf_counter()
        while True:
            started = time.perf_counter()
            claimed = conn.execute(_RAW_CLAIM, [batch]).fetchall()
            if not claimed:
                break
            pipe = broker.pipeline(transaction=False)
            for message_id, topic, payload in claimed:
                pipe.rpush(RAW_LIST, json.dumps({"id": message_id, "topic": topic, "kwargs": payload}))
            pipe.execute()
            batches.append(time.perf_counter() - started)
            rows += len(claimed)
        elapsed = time.perf_counter() - began
    broker.delete(RAW_LIST)
    if rows != ROWS:
        raise RuntimeError(f"the raw drain moved {rows} of {ROWS} rows")
    return _sample(batches, rows, elapsed)


def rows(ctx) -> list[Row]:
    from django.conf import settings

    batch = settings.OUTBOX_RELAY_BATCH_SIZE
    progress(f"relay: drain {ROWS} outbox rows, batches of {batch}, raw / relay A-B-A")
    measured = aba(lambda: relay(ctx.dsn, batch), {"raw SKIP LOCKED": lambda: raw_drain(ctx.dsn, batch)})
    return [
        summarise(
            "relay",
            "outbox relay claim + publish",
            1,
            "rows",
            measured,
            note=f"{ROWS} rows pre-filled; p50/p99 per batch of {batch}",
        )
    ]
