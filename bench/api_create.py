"""
Rows: `POST /api/v1/payments` over HTTP at 1, 4 and 16 clients, against two anchors doing the same five
writes: raw psycopg (the physical limit) and the bare Django view on the same gunicorn (the framework
ceiling); then a fixed-rate (open-loop) run of ours at half its maximum rate, for p99.

Every request carries a fresh Idempotency-Key, so each one is a first create, never a replay.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime

from bench import writes
from bench.harness import (
    SECONDS,
    Row,
    aba,
    closed_loop,
    closing,
    http_step,
    open_loop,
    progress,
    psycopg_step,
    summarise,
)

CLIENTS = [int(n) for n in os.environ.get("BENCH_CLIENTS", "1,4,16").split(",")]
_runs = itertools.count()


def _http_create(port: int, api_key: str | None):
    run = f"bench-{time.time_ns()}-{next(_runs)}"

    def make_step(index: int):
        keys = itertools.count()
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}

        def headers() -> dict:
            return {**auth, "Content-Type": "application/json", "Idempotency-Key": f"{run}-{index}-{next(keys)}"}

        return http_step(port, "POST", writes.CREATE_PATH, body=writes.BODY_BYTES, headers=headers, expect=202)

    return make_step


def _raw_create(dsn: str, client_id: int, opened: list):
    run = f"raw-{time.time_ns()}-{next(_runs)}"
    fingerprint = writes.request_hash(writes.BODY_BYTES)
    keys = itertools.count()

    def work(cursor, index: int) -> None:
        writes.payment_create_writes(
            cursor,
            client_id=client_id,
            key=f"{run}-{index}-{next(keys)}",
            body=writes.BODY,
            fingerprint=fingerprint,
            now=datetime.now(UTC),
        )

    return psycopg_step(dsn, work, opened)


def rows(ctx) -> list[Row]:
    out = []
    opened: list = []
    for clients in CLIENTS:
        progress(f"create: {clients} client(s), raw psycopg / bare Django / ours, A-B-A")
        measured = aba(
            lambda c=clients: closed_loop(_http_create(ctx.ours_port, ctx.api_key), clients=c),
            {
                "raw psycopg": lambda c=clients: closing(
                    opened, lambda: closed_loop(_raw_create(ctx.dsn, ctx.client_id, opened), clients=c)
                ),
                "bare Django": lambda c=clients: closed_loop(_http_create(ctx.bare_port, None), clients=c),
            },
        )
        out.append(summarise("create", "POST /api/v1/payments", clients, "req", measured))
    peak = max(out, key=lambda row: row.clients)
    rate = max(peak.ours.rate / 2, 1.0)
    progress(f"create: open loop at {rate:.0f} req/s (half the closed-loop rate at {peak.clients} clients)")
    sample = open_loop(_http_create(ctx.ours_port, ctx.api_key), rate=rate, connections=16, seconds=SECONDS * 2)
    out.append(
        Row(
            group="create",
            path="POST /api/v1/payments",
            clients="open loop",
            unit="req",
            ours=sample,
            anchors={},
            ratios={},
            note=f"fixed rate {rate:.0f}/s, half the max; latency from the scheduled send time",
        )
    )
    return out
