"""
Benchmark: the payment create path (POST /api/v1/payments, in process, no HTTP) against raw
PostgreSQL doing the same four inserts in one transaction, measured in the same run.

Prints ms/op for each and the ratio; bounded by N and loopback/Unix-socket only.
Run with `make bench` (which starts the embedded servers) or under `python -m config.devstack exec`.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django
from django.conf import settings

# A database of its own: benchmark rows must never leak into the test suite's reused database.
settings.DATABASES["default"]["TEST"] = {"NAME": "bench_payments"}
django.setup()

import psycopg  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

N = int(os.environ.get("BENCH_N", "400"))
WARMUP = 30
BODY = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "metadata": {"order": "42"}}


def raw_postgres(dsn: str) -> list[float]:
    """Four inserts in one transaction, as the create path writes them, with nothing around them."""
    timings = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TEMP TABLE idem (id bigserial primary key, client_id bigint, key text, hash text,"
            " UNIQUE (client_id, key));"
            "CREATE TEMP TABLE pay (id bigserial primary key, public_id text unique, amount bigint, currency text,"
            " metadata jsonb, status text);"
            "CREATE TEMP TABLE ev (id bigserial primary key, payment_id bigint, type text, data jsonb);"
            "CREATE TEMP TABLE ob (id bigserial primary key, topic text, payload jsonb, available_at timestamptz)"
        )
        for n in range(N + WARMUP):
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO idem (client_id, key, hash) VALUES (1, %s, 'h') ON CONFLICT DO NOTHING", [f"k{n}"]
                )
                pid = conn.execute(
                    "INSERT INTO pay (public_id, amount, currency, metadata, status)"
                    " VALUES (%s, 2000, 'eur', '{\"order\": \"42\"}', 'PENDING') RETURNING id",
                    [f"pay_{n}"],
                ).fetchone()[0]
                conn.execute("INSERT INTO ev (payment_id, type, data) VALUES (%s, 'payment.created', '{}')", [pid])
                conn.execute("INSERT INTO ob (topic, payload, available_at) VALUES ('t', '{}', now())")
                conn.execute("UPDATE idem SET hash = 'done' WHERE client_id = 1 AND key = %s", [f"k{n}"])
            timings.append(time.perf_counter() - started)
    return timings[WARMUP:]


def api_create() -> list[float]:
    from payments.models import ApiClient, ApiKey

    client_row, _ = ApiClient.objects.get_or_create(name=f"bench-{time.time_ns()}")
    _, key = ApiKey.objects.create_key(name="bench", client=client_row)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    run = time.time_ns()
    timings = []
    for n in range(N + WARMUP):
        started = time.perf_counter()
        response = client.post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY=f"bench-{run}-{n}")
        timings.append(time.perf_counter() - started)
        if response.status_code != 202:
            raise SystemExit(f"unexpected {response.status_code}: {response.content[:200]!r}")
    return timings[WARMUP:]


def report(name: str, timings: list[float]) -> float:
    median = statistics.median(timings) * 1000
    p95 = statistics.quantiles(timings, n=20)[18] * 1000
    print(f"  {name:<34} median {median:7.3f} ms   p95 {p95:7.3f} ms   ({len(timings)} ops)")
    return median


def main() -> None:
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    dsn = connection.get_connection_params()
    dsn_string = " ".join(f"{k}={v}" for k, v in dsn.items() if k in ("host", "port", "dbname", "user") and v)
    print(f"create path, N={N}")
    raw = report("raw PostgreSQL (4 inserts + update)", raw_postgres(dsn_string))
    api = report("POST /api/v1/payments", api_create())
    print(f"  ratio API / raw PostgreSQL: {api / raw:.1f}x")


if __name__ == "__main__":
    main()
