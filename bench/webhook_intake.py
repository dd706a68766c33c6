"""
Rows: verified webhook intake (POST /webhooks/stripe through the whole Django stack, in process, no
HTTP) against raw PostgreSQL doing the same deduplicated inserts, new events and duplicates.

For each new event the view verifies the Stripe-Signature over the raw bytes (the SDK's HMAC),
parses the JSON, redacts the payload and runs INSERT … ON CONFLICT DO NOTHING RETURNING id plus
the outbox row in one transaction; a duplicate is the same without the outbox row. The anchor
is psycopg sending the same two statements with the same rows into the same tables, nothing else.
Signing is the sender's cost and happens before the clock starts. Bounded by BENCH_WEBHOOK_N events
per run; in process and Unix socket only. Run by bench/run.py (`make bench`, BENCH_ONLY=webhook).
TODO(bench): the bare-Django-view anchor of issue 11 for this row (the view is in process today).
"""

import json
import os
import time

import psycopg
import stripe
from django.conf import settings
from django.test import Client

from bench.harness import Row, Sample, aba, progress, summarise
from outbox.models import OutboxMessage
from webhooks import topics
from webhooks.models import WebhookEvent
from webhooks.redaction import webhook_payload_redact

N = int(os.environ.get("BENCH_WEBHOOK_N", "1000"))
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


def _sample(timings: list[float]) -> Sample:
    return Sample.of(timings, sum(timings))  # one sender: the rate is events over the time spent on them


def rows(ctx) -> list[Row]:
    WebhookEvent.objects.all().delete()
    OutboxMessage.objects.filter(topic=topics.WEBHOOK_EVENT_RECEIVED).delete()
    runs = iter(range(1_000_000))

    def fresh() -> list[dict]:
        return events(f"{time.time_ns()}{next(runs)}", N)

    def view_new() -> Sample:
        return _sample(through_the_view(signed(fresh())))

    def view_duplicate() -> Sample:
        deliveries = signed(fresh())
        through_the_view(deliveries)
        return _sample(through_the_view(deliveries))

    progress(f"webhook intake: {N} events per run, warm-up, then raw / view A-B-A (new, then duplicates)")
    through_the_view(signed(events(f"warm{time.time_ns()}", WARMUP)))
    new = aba(view_new, {"raw PostgreSQL": lambda: _sample(raw_postgres(ctx.dsn, fresh())[0])})
    duplicate = aba(view_duplicate, {"raw PostgreSQL": lambda: _sample(raw_postgres(ctx.dsn, fresh())[1])})
    WebhookEvent.objects.all().delete()
    OutboxMessage.objects.filter(topic=topics.WEBHOOK_EVENT_RECEIVED).delete()
    return [
        summarise("webhook", "POST /webhooks/stripe, new event", 1, "events", new, note="in process"),
        summarise("webhook", "POST /webhooks/stripe, duplicate", 1, "events", duplicate, note="in process"),
    ]
