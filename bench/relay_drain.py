"""
Rows: the relay's claim-and-publish rate on a pre-filled outbox (BENCH_OUTBOX_ROWS due rows), against a
raw drain of the same table into the same broker; and the latency from a row's commit to its message
in the broker while the real relay loop runs.

Ours is `outbox_relay_batch` with the real CeleryPublisher, called until the table is drained, as the
relay loop does under a backlog. The anchor sends the relay's own claim statement (`CLAIM_SQL`: FOR
UPDATE SKIP LOCKED, the same lease update) on a bare psycopg connection and LPUSHes one message per
row, as large as the relay's Celery message, in one Redis pipeline per batch: the physical limit of
moving these rows into this broker. Both start from a freshly filled and vacuumed table; the
published messages are deleted afterwards (the benchmark's own Redis database).

The latency row runs `manage.py outbox_relay` (its LISTEN/NOTIFY loop, production settings) in a
process of its own; this process commits rows one by one on a fixed schedule, then in bursts, and
reads the messages back from Redis: latency is from sending COMMIT to the message being poppable.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import servers, writes
from bench.harness import SECONDS, WARMUP_SECONDS, Row, Sample, aba, progress, summarise

ROWS = int(os.environ.get("BENCH_OUTBOX_ROWS", "20000"))
RAW_LIST = "bench.raw_drain"
CELERY_QUEUE = "celery"  # Celery's default queue: where send_task puts the relay's messages
ONE_BY_ONE_INTERVAL = 0.02  # latency row: a commit every 20 ms, then…
BURST = 10  # …bursts of 10 commits back to back (a busy API worker), one every BURST_INTERVAL
BURST_INTERVAL = 0.2
LATENCY_TARGET_MS = 50.0  # issue 11: commit-to-publish p99


def _fill(dsn: str, rows: int = ROWS) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM outbox_outboxmessage")
        if not rows:
            return
        conn.execute(
            "INSERT INTO outbox_outboxmessage (topic, payload, status, created_at, available_at, attempts,"
            " last_error_type, last_error) SELECT %s, jsonb_build_object('payment_id', 'pay_bench_' || g), 'DUE',"
            " now(), now() - interval '1 second', 0, '', '' FROM generate_series(1, %s) g",
            [writes.CREATE_TOPIC, rows],
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


def relay_message_bytes(dsn: str) -> int:
    """The size of one message the relay publishes for a pre-filled row (the anchor sends as many bytes)."""
    from outbox.relay import CeleryPublisher, outbox_relay_batch

    _fill(dsn, rows=1)
    broker = _redis()
    broker.delete(CELERY_QUEUE)
    publisher = CeleryPublisher()
    try:
        outbox_relay_batch(publisher=publisher, limit=1)
    finally:
        publisher.close()
    message = broker.lindex(CELERY_QUEUE, 0)
    broker.delete(CELERY_QUEUE)
    if message is None:
        raise RuntimeError("the relay published no message for the probe row")
    return len(message)


def raw_drain(dsn: str, batch: int, message_bytes: int) -> Sample:
    import psycopg
    from django.conf import settings

    from outbox.relay import CLAIM_SQL

    _fill(dsn)
    broker = _redis()
    batches, rows = [], 0
    bare = len(json.dumps({"id": 1, "topic": writes.CREATE_TOPIC, "kwargs": {"payment_id": "pay_bench_1"}, "pad": ""}))
    pad = "x" * max(message_bytes - bare, 0)  # the relay's Celery message is this large: move as many bytes
    with psycopg.connect(dsn, autocommit=True) as conn:
        began = time.perf_counter()
        while True:
            started = time.perf_counter()
            now = datetime.now(UTC)
            claimed = conn.execute(
                CLAIM_SQL,
                {
                    "now": now,
                    "limit": batch,
                    "lease_until": now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS),
                    "max_attempts": settings.OUTBOX_MAX_ATTEMPTS,
                },
            ).fetchall()
            if not claimed:
                break
            pipe = broker.pipeline(transaction=False)
            for message_id, topic, payload, _status, _attempts in claimed:
                pipe.lpush(RAW_LIST, json.dumps({"id": message_id, "topic": topic, "kwargs": payload, "pad": pad}))
            pipe.execute()
            batches.append(time.perf_counter() - started)
            rows += len(claimed)
        elapsed = time.perf_counter() - began
    broker.delete(RAW_LIST)
    if rows != ROWS:
        raise RuntimeError(f"the raw drain moved {rows} of {ROWS} rows")
    return _sample(batches, rows, elapsed)


def _message_id(raw: bytes) -> int:
    """The outbox id inside a Celery message as kombu's Redis transport stores it (base64 JSON body)."""
    _args, kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
    return kwargs["message_id"]


class _Reader(threading.Thread):
    """Pops the relay's messages off the Celery queue as they arrive and notes when."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.arrivals: dict[int, float] = {}
        self.running = True

    def run(self) -> None:
        broker = _redis()
        while self.running:
            popped = broker.brpop([CELERY_QUEUE], timeout=0.2)
            if popped is not None:
                self.arrivals[_message_id(popped[1])] = time.perf_counter()


def _start_relay(ctx, scratch: str) -> tuple[subprocess.Popen, Path]:
    """`manage.py outbox_relay` on the bench database and Redis, with production settings, as deployed."""
    metrics_dir = Path(scratch, "metrics")
    metrics_dir.mkdir()
    log_path = Path(scratch, "relay.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "outbox_relay"],
            cwd=servers.ROOT,
            env=servers.server_environment(client_id=ctx.client_id, metrics_dir=str(metrics_dir)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, log_path


def commit_to_publish(ctx) -> tuple[Sample, dict[str, Sample]]:
    """Commit rows while the relay loop runs; latency from each COMMIT to its message in Redis."""
    import psycopg

    _fill(ctx.dsn, rows=0)
    _redis().delete(CELERY_QUEUE)
    reader = _Reader()
    reader.start()
    committed: dict[int, tuple[float, str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as scratch:
        relay, log_path = _start_relay(ctx, scratch)
        try:
            with psycopg.connect(ctx.dsn) as conn:

                def commit(phase: str) -> None:
                    row = conn.execute(
                        "INSERT INTO outbox_outboxmessage (topic, payload, status, created_at, available_at,"
                        " attempts, last_error_type, last_error) VALUES (%s, %s, 'DUE', now(), now(), 0, '', '')"
                        " RETURNING id",
                        [writes.CREATE_TOPIC, json.dumps({"payment_id": f"pay_latency_{len(committed)}"})],
                    ).fetchone()
                    committed[row[0]] = (time.perf_counter(), phase)
                    conn.commit()  # the trigger's NOTIFY goes out with it

                deadline = time.monotonic() + 60
                while not reader.arrivals:  # the relay is up (imports, connections) once a warm-up row arrives
                    if relay.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the relay did not start or publish")
                    commit("warm-up")
                    time.sleep(0.1)
                warm_until = time.perf_counter() + WARMUP_SECONDS
                while time.perf_counter() < warm_until:
                    commit("warm-up")
                    time.sleep(ONE_BY_ONE_INTERVAL)
                began = time.perf_counter()
                schedule = [
                    (began + n * ONE_BY_ONE_INTERVAL, 1, "one by one")
                    for n in range(max(1, int(SECONDS / ONE_BY_ONE_INTERVAL)))
                ]
                second = began + SECONDS
                schedule += [
                    (second + n * BURST_INTERVAL, BURST, "bursts") for n in range(max(1, int(SECONDS / BURST_INTERVAL)))
                ]
                for at, count, phase in schedule:  # a fixed schedule (open loop), whatever the relay's pace
                    delay = at - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    for _ in range(count):
                        commit(phase)
                elapsed = time.perf_counter() - began
            deadline = time.monotonic() + 10
            while len(reader.arrivals) < len(committed) and time.monotonic() < deadline:
                time.sleep(0.05)
        except BaseException:
            print(f"--- relay log (tail)\n{log_path.read_text(errors='replace')[-3000:]}", flush=True)
            raise
        finally:
            reader.running = False
            relay.send_signal(signal.SIGTERM)  # our own pid only; a NOTIFY wakes its wait at once
            with psycopg.connect(ctx.dsn, autocommit=True) as conn:
                conn.execute("NOTIFY outbox")
            try:
                relay.wait(timeout=30)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
            reader.join()
    _redis().delete(CELERY_QUEUE)
    missing = [message_id for message_id in committed if message_id not in reader.arrivals]
    if missing:
        raise RuntimeError(f"{len(missing)} of {len(committed)} committed rows never reached the broker")
    latencies: dict[str, list[float]] = {}
    for message_id, (sent_at, phase) in committed.items():
        latencies.setdefault(phase, []).append(reader.arrivals[message_id] - sent_at)
    measured = latencies["one by one"] + latencies["bursts"]
    phases = {phase: Sample.of(latencies[phase], elapsed) for phase in ("one by one", "bursts")}
    return Sample.of(measured, elapsed), phases


def rows(ctx) -> list[Row]:
    from django.conf import settings

    batch = settings.OUTBOX_RELAY_BATCH_SIZE
    message_bytes = relay_message_bytes(ctx.dsn)
    progress(f"relay: drain {ROWS} outbox rows, batches of {batch}, {message_bytes}-byte messages, raw / relay A-B-A")
    measured = aba(lambda: relay(ctx.dsn, batch), {"raw SKIP LOCKED": lambda: raw_drain(ctx.dsn, batch, message_bytes)})
    drain = summarise(
        "relay",
        "outbox relay claim + publish",
        1,
        "rows",
        measured,
        note=f"{ROWS} rows pre-filled; p50/p99 per batch of {batch}",
    )
    progress(
        f"relay: commit-to-publish latency, the relay loop in its own process: a commit every "
        f"{ONE_BY_ONE_INTERVAL * 1000:.0f} ms, then bursts of {BURST} every {BURST_INTERVAL * 1000:.0f} ms"
    )
    sample, phases = commit_to_publish(ctx)
    verdict = "met" if sample.p99_ms < LATENCY_TARGET_MS else "MISSED"
    split = "; ".join(f"{name}: p50 {s.p50_ms:.1f} ms, p99 {s.p99_ms:.1f} ms" for name, s in phases.items())
    latency = Row(
        group="relay",
        path="outbox commit to publish (relay loop)",
        clients="open loop",
        unit="rows",
        ours=sample,
        anchors={},
        ratios={},
        note=f"{split}; target p99 < {LATENCY_TARGET_MS:.0f} ms: {verdict}",
    )
    return [drain, latency]
