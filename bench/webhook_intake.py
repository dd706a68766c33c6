"""
Benchmark: verified webhook intake (POST /webhooks/stripe through the whole Django stack, in process,
no HTTP) against raw PostgreSQL doing the same deduplicated inserts, measured in the same run.

For each new event the view verifies the Stripe-Signature over the raw bytes (the SDK's HMAC),
parses the JSON, redacts the payload and runs INSERT … ON CONFLICT DO NOTHING RETURNING id plus
the outbox row in one transaction; a duplicate is the same without the outbox row. The baseline
is psycopg sending the same two statements with the same rows into the same tables, nothing else.
Signing is the sender's cost and happens before the clock starts. Prints events per second and
the ratio. Bounded by N; Unix socket / loopback only.

Run with `make bench` (which starts the embedded servers) or under `python -m config.devstack exec`.
"""

import json
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
import stripe  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from outbox.models import OutboxMessage  # noqa: E402
from webhooks import topics  # noqa: E402
from webhooks.models import WebhookEvent  # noqa: E402
from webhooks.redaction import webhook_payload_redact  # noqa: E402

N = int(os.environ.get("BENCH_N", "2000"))
WARMUP = 50
URL = "/webhooks/stripe"


def events(run: str, count: int) -> list[dict]:
    """Realistic payment_intent.succeeded events (about 1.5 kB each, as Stripe lays them out)."""
    return [
        {
            "id": f"evt_bench_{run}_{n}",
            "object": "event",
            "api_version": settings.STRIPE_API_VERSION,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": f"req_{n}", "idempotency_key": f"pay_{n}:create"},
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": f"pi_bench_{run}_{n}",
                    "object": "payment_intent",
                    "amount": 2000,
                    "amount_capturable": 0,
                    "amount_received": 2000,
                    "currency": "eur",
                    "status": "succeeded",
                    "capture_method": "automatic",
                    "created": int(time.time()),
                    "description": "Order 1234",
                    "latest_charge": f"ch_{n}",
                    "last_payment_error": None,
                    "next_action": None,
                    "payment_method": "pm_card_visa",
                    "payment_method_types": ["card"],
                    "receipt_email": "jane.doe@example.com",
                    "shipping": {"name": "Jane Doe", "address": {"line1": "221B Baker Street", "city": "London"}},
                    "metadata": {"payment_id": "pay_01J0000000000000000000000A", "order": "1234"},
                }
            },
        }
        for n in range(count)
    ]


def signed(evts: list[dict]) -> list[tuple[bytes, str]]:
    secret = settings.STRIPE_WEBHOOK_SECRET.split(",")[0]
    out = []
    for evt in evts:
        body = json.dumps(evt, indent=2)
        out.append((body.encode(), stripe.WebhookSignature.generate_signature_header(body, secret)))
    return out


def through_the_view(deliveries: list[tuple[bytes, str]]) -> list[float]:
    client = Client()
    timings = []
    for body, header in deliveries:
        started = time.perf_counter()
        response = client.post(URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
        timings.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.content[:200]!r}")
    return timings


def raw_postgres(dsn: str, evts: list[dict]) -> tuple[list[float], list[float]]:
    """The same rows into the same tables (indexes, constraints and the outbox's NOTIFY trigger
    included), the same two statements per new event in one transaction each; nothing else.
    Each row is sent twice: the second round is the duplicate path."""
    rows = [
        (
            "stripe", f"{evt['id']}_raw", evt["type"], "payment_intent", evt["data"]["object"]["id"], "",
            evt["api_version"], json.dumps(webhook_payload_redact(evt)),
        )
        for evt in evts
    ]  # fmt: skip
    event_table, outbox_table = WebhookEvent._meta.db_table, OutboxMessage._meta.db_table
    timings = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for row in rows * 2:
            started = time.perf_counter()
            with conn.transaction():
                inserted = conn.execute(
                    f"INSERT INTO {event_table} (provider, provider_event_id, type, object_type, object_id,"  # noqa: S608
                    " payment_public_id, provider_created_at, api_version, livemode, payload, source, status,"
                    " outcome, attempts, last_error, received_at, processed_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, now(), %s, false, %s, 'webhook', 'RECEIVED', '', 0, '',"
                    " now(), NULL) ON CONFLICT ON CONSTRAINT webhook_event_once DO NOTHING RETURNING id",
                    row,
                ).fetchone()
                if inserted:
                    conn.execute(
                        f"INSERT INTO {outbox_table} (topic, payload, status, created_at, available_at, attempts,"  # noqa: S608
                        " last_error_type, last_error) VALUES (%s, %s, 'DUE', now(), now(), 0, '', '')",
                        [topics.WEBHOOK_EVENT_RECEIVED, json.dumps({"webhook_event_id": inserted[0]})],
                    )
            timings.append(time.perf_counter() - started)
    return timings[: len(rows)], timings[len(rows) :]


def report(name: str, timings: list[float]) -> float:
    median = statistics.median(timings)
    p95 = statistics.quantiles(timings, n=20)[18]
    per_second = len(timings) / sum(timings)
    print(
        f"  {name:<40} {per_second:8.0f} events/s   median {median * 1000:6.3f} ms"
        f"   p95 {p95 * 1000:6.3f} ms   ({len(timings)} events)"
    )
    return per_second


def main() -> None:
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    WebhookEvent.objects.all().delete()
    OutboxMessage.objects.filter(topic=topics.WEBHOOK_EVENT_RECEIVED).delete()
    params = connection.get_connection_params()
    dsn = " ".join(f"{k}={v}" for k, v in params.items() if k in ("host", "port", "dbname", "user") and v)
    run = str(time.time_ns())
    evts = events(run, N + WARMUP)
    deliveries = signed(evts)
    print(f"webhook intake, N={N} (each ~{len(deliveries[0][0])} bytes)")
    raw_new, raw_duplicate = raw_postgres(dsn, evts[WARMUP:])
    raw = report("raw PostgreSQL, new (2 inserts)", raw_new)
    report("raw PostgreSQL, duplicate (1 insert)", raw_duplicate)
    through_the_view(deliveries[:WARMUP])
    view = report("POST /webhooks/stripe, new", through_the_view(deliveries[WARMUP:]))
    duplicate = report("POST /webhooks/stripe, duplicate", through_the_view(deliveries[WARMUP:]))
    stored = WebhookEvent.objects.filter(provider_event_id__startswith=f"evt_bench_{run}_").count()
    assert stored == 2 * N + WARMUP, stored  # the view's and the baseline's, each once
    print(f"  ratio raw PostgreSQL / verified intake: {raw / view:.1f}x (new), duplicates at {duplicate:.0f}/s")
    WebhookEvent.objects.all().delete()
    OutboxMessage.objects.filter(topic=topics.WEBHOOK_EVENT_RECEIVED).delete()


if __name__ == "__main__":
    main()
