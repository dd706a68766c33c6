"""
Rows: verified webhook intake, `POST /webhooks/stripe` over HTTP through the same gunicorn as the
create rows, new events and duplicates, against two anchors doing the same deduplicated inserts:
raw psycopg (the physical limit) and a bare Django view on the same gunicorn (the framework ceiling).

Ours verifies the Stripe-Signature over the raw bytes, parses the JSON, redacts the payload and runs
INSERT … ON CONFLICT DO NOTHING RETURNING id plus the outbox row in one transaction; a duplicate is
the same without the outbox row. The bare view (bench/bare_urls.py) makes the same SDK call to verify
the signature, parses the JSON and sends the same two statements (bench/writes.py), storing the
payload as received; raw psycopg sends those two statements with our redacted payload, nothing else.
Each sender signs its delivery (the sender's cost, about 20 µs, the same for all three) inside its
loop. A duplicate run first stores DUPLICATE_POOL events per client, then delivers them again and again.
"""

from __future__ import annotations

import itertools
import json
import os
import time

import stripe
from django.conf import settings

from bench import writes
from bench.harness import Row, aba, closed_loop, closing, http_step, progress, psycopg_step, summarise
from bench.servers import WEBHOOK_SECRET
from outbox.models import OutboxMessage
from webhooks import topics
from webhooks.models import WebhookEvent
from webhooks.redaction import webhook_payload_redact

CLIENTS = int(os.environ.get("BENCH_WEBHOOK_CLIENTS", "4"))
DUPLICATE_POOL = 20  # events per client delivered again and again in a duplicate run
MARK = "__EVENT__"  # replaced by each delivery's own suffix in the event's ids
_runs = itertools.count()


def _event(mark: str) -> dict:
    """A realistic payment_intent.succeeded event (about 1.5 kB, as Stripe lays it out), personal data included."""
    now = int(time.time())
    return {
        "id": f"evt_bench_{mark}",
        "object": "event",
        "api_version": settings.STRIPE_API_VERSION,
        "created": now,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": f"req_{mark}", "idempotency_key": f"pay_{mark}:create"},
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": f"pi_bench_{mark}",
                "object": "payment_intent",
                "amount": 2000,
                "amount_capturable": 0,
                "amount_received": 2000,
                "currency": "eur",
                "status": "succeeded",
                "capture_method": "automatic",
                "created": now,
                "description": "Order 1234",
                "latest_charge": f"ch_{mark}",
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


class Deliveries:
    """Bodies of fresh events for one sender: the event as JSON text, with its own ids each time."""

    def __init__(self, name: str) -> None:
        self.prefix = f"{name}_{time.time_ns()}_{next(_runs)}"
        template = _event(MARK)
        self.body = json.dumps(template, indent=2)  # Stripe's layout
        self.redacted = json.dumps(webhook_payload_redact(template))
        self.numbers = itertools.count()

    def next_mark(self, index: int) -> str:
        return f"{self.prefix}_{index}_{next(self.numbers)}"

    def body_of(self, mark: str) -> str:
        return self.body.replace(MARK, mark)


def _signed(body: str) -> dict:
    return {
        "Content-Type": "application/json",
        "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET),
    }


def _http(port: int, *, duplicate: bool):
    deliveries = Deliveries("http")

    def make_step(index: int):
        marks = [deliveries.next_mark(index) for _ in range(DUPLICATE_POOL)] if duplicate else None
        current = {}

        def body() -> bytes:
            mark = next(cycle) if duplicate else deliveries.next_mark(index)
            current["body"] = deliveries.body_of(mark)
            return current["body"].encode()

        def headers() -> dict:
            return _signed(current["body"])

        step = http_step(port, "POST", writes.WEBHOOK_PATH, body=body, headers=headers, expect=200)
        if duplicate:
            cycle = iter(marks)
            for _ in marks:  # stored once, before the clock starts
                step()
            cycle = itertools.cycle(marks)
        return step

    return make_step


def _raw(dsn: str, opened: list, *, duplicate: bool):
    """The two statements with our redacted payload, one transaction per event, one connection per client."""
    deliveries = Deliveries("raw")
    pools: dict[int, itertools.cycle] = {}

    def work(cursor, index: int) -> None:
        mark = next(pools[index]) if duplicate else deliveries.next_mark(index)
        writes.webhook_event_insert(
            cursor, event=json.loads(deliveries.body_of(mark)), payload=deliveries.redacted.replace(MARK, mark)
        )

    make_raw_step = psycopg_step(dsn, work, opened)

    def make_step(index: int):
        step = make_raw_step(index)
        if duplicate:
            marks = [deliveries.next_mark(index) for _ in range(DUPLICATE_POOL)]
            pools[index] = iter(marks)
            for _ in marks:
                step()
            pools[index] = itertools.cycle(marks)
        return step

    return make_step


def _clear() -> None:
    WebhookEvent.objects.all().delete()
    OutboxMessage.objects.filter(topic=topics.WEBHOOK_EVENT_RECEIVED).delete()


def rows(ctx) -> list[Row]:
    _clear()
    opened: list = []
    out = []
    for duplicate, label in ((False, "new event"), (True, "duplicate")):
        progress(f"webhook intake, {label}: {CLIENTS} clients over HTTP, raw psycopg / bare Django / ours, A-B-A")
        measured = aba(
            lambda d=duplicate: closed_loop(_http(ctx.ours_port, duplicate=d), clients=CLIENTS),
            {
                "raw psycopg": lambda d=duplicate: closing(
                    opened, lambda: closed_loop(_raw(ctx.dsn, opened, duplicate=d), clients=CLIENTS)
                ),
                "bare Django": lambda d=duplicate: closed_loop(_http(ctx.bare_port, duplicate=d), clients=CLIENTS),
            },
        )
        out.append(summarise("webhook", f"POST /webhooks/stripe, {label}", CLIENTS, "events", measured))
    _clear()
    return out
