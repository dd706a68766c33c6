"""
Rows: `GET /api/v1/payments/{id}` and `GET /api/v1/payments?limit=10` over HTTP at 4 clients, against
raw psycopg running the same SELECT and the bare Django view running it on the same gunicorn.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime

from bench import writes
from bench.harness import Row, aba, closed_loop, closing, http_step, progress, psycopg_step, summarise

CLIENTS = int(os.environ.get("BENCH_READ_CLIENTS", "4"))
PAYMENTS = 200  # the ids the retrieve row picks from at random


def _ensure_payments(dsn: str, client_id: int) -> list[str]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM payments_payment WHERE client_id = %s", [client_id]).fetchone()[0]
        fingerprint = writes.request_hash(writes.BODY_BYTES)
        for n in range(max(0, PAYMENTS - have)):
            with conn.transaction(), conn.cursor() as cursor:
                writes.payment_create_writes(
                    cursor,
                    client_id=client_id,
                    key=f"read-seed-{n}",
                    body=writes.BODY,
                    fingerprint=fingerprint,
                    now=datetime.now(UTC),
                )
        rows = conn.execute(
            "SELECT public_id FROM payments_payment WHERE client_id = %s ORDER BY id DESC LIMIT %s",
            [client_id, PAYMENTS],
        ).fetchall()
    return [row[0] for row in rows]


def rows(ctx) -> list[Row]:
    ids = _ensure_payments(ctx.dsn, ctx.client_id)
    auth = {"Authorization": f"Bearer {ctx.api_key}"}

    def by_id() -> str:
        return f"{writes.CREATE_PATH}/{random.choice(ids)}"

    cases = [
        (
            "GET /api/v1/payments/{id}",
            by_id,
            lambda cursor, index: writes.payment_read(cursor, client_id=ctx.client_id, public_id=random.choice(ids)),
        ),
        (
            "GET /api/v1/payments?limit=10",
            f"{writes.CREATE_PATH}?limit=10",
            lambda cursor, index: writes.payment_list(cursor, client_id=ctx.client_id, limit=10),
        ),
    ]
    out = []
    opened: list = []
    for name, path, raw_work in cases:
        progress(f"read: {name}, {CLIENTS} clients, raw psycopg / bare Django / ours, A-B-A")

        def http(port, headers, path=path):
            return lambda: closed_loop(
                lambda index: http_step(port, "GET", path, headers=headers, expect=200), clients=CLIENTS
            )

        measured = aba(
            http(ctx.ours_port, auth),
            {
                "raw psycopg": lambda raw_work=raw_work: closing(
                    opened,
                    lambda: closed_loop(psycopg_step(ctx.dsn, raw_work, opened, transactional=False), clients=CLIENTS),
                ),
                "bare Django": http(ctx.bare_port, {}),
            },
        )
        out.append(summarise("read", name, CLIENTS, "req", measured))
    return out
