"""
The anchors' SQL: what `POST /api/v1/payments` and the two GETs do to PostgreSQL, with nothing around it.

One home for both anchors: the raw psycopg loop and the bare Django view run these same functions
on their own cursor (psycopg's and Django's take the same `%s` parameters). The statements are the
ones the create path sends (payments/idempotency.py `_claim` and the final update; services
`payment_create`, `payment_event_create`, `outbox_message_enqueue`), captured with
CaptureQueriesContext, into the same tables, so indexes, constraints, the append-only timeline
trigger and the outbox's NOTIFY trigger cost the anchors what they cost us. The caller owns the
transaction.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta

BODY = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "metadata": {"order": "42"}}
BODY_BYTES = json.dumps(BODY).encode()
CREATE_PATH = "/api/v1/payments"
CREATE_TOPIC = "payments.payment.create_requested"  # payments.topics.PAYMENT_CREATE_REQUESTED, Django-free here

PAYMENT_COLUMNS = (
    "public_id, status, amount, currency, amount_capturable, amount_received, amount_refunded, capture_method,"
    " payment_method, description, customer_reference, metadata, provider, provider_payment_id, next_action,"
    " failure_code, failure_message, created_at, updated_at"
)


def request_hash(body: bytes, *, method: str = "POST", path: str = CREATE_PATH) -> str:
    """The idempotency fingerprint, computed as the product does (canonical JSON of the body)."""
    canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def payment_create_writes(cursor, *, client_id: int, key: str, body: dict, fingerprint: str, now: datetime) -> bytes:
    """Send the five writes of a create (idempotency row, payment, timeline event, outbox row, idempotency
    update) on `cursor`, inside the caller's transaction; return the response body stored with the key."""
    cursor.execute(
        "INSERT INTO payments_idempotencykey (client_id, key, request_method, request_path, request_hash,"
        " expires_at, created_at, updated_at) VALUES (%s, %s, 'POST', %s, %s, %s, %s, %s)"
        " ON CONFLICT (client_id, key) DO NOTHING RETURNING id",
        [client_id, key, CREATE_PATH, fingerprint, now + timedelta(hours=24), now, now],
    )
    key_id = cursor.fetchone()[0]
    public_id = f"pay_{secrets.token_hex(13).upper()}"
    metadata = json.dumps(body.get("metadata") or {})
    cursor.execute(
        "INSERT INTO payments_payment (created_at, updated_at, public_id, client_id, status, amount, currency,"
        " amount_capturable, amount_received, amount_refunded, amount_to_capture, capture_method, payment_method,"
        " description, customer_reference, metadata, provider, provider_payment_id, next_action, failure_code,"
        " failure_message, succeeded_at, canceled_at, flagged_at, flag_reason, next_check_at, checks)"
        " VALUES (%s, %s, %s, %s, 'PENDING', %s, %s, 0, 0, 0, NULL, 'automatic', %s, '', '', %s, 'stripe', NULL,"
        " NULL, '', '', NULL, NULL, NULL, '', NULL, 0) RETURNING id",
        [now, now, public_id, client_id, body["amount"], body["currency"], body["payment_method"], metadata],
    )
    payment_id = cursor.fetchone()[0]
    cursor.execute(
        "INSERT INTO payments_paymentevent (payment_id, refund_id, type, from_status, to_status, source, actor,"
        " reason, data, idempotency_key, created_at) VALUES (%s, NULL, 'payment.created', '', 'PENDING', 'api',"
        " 'bench', '', %s, 'created', %s) RETURNING id",
        [payment_id, json.dumps({"amount": body["amount"], "currency": body["currency"]}), now],
    )
    cursor.fetchone()
    cursor.execute(
        "INSERT INTO outbox_outboxmessage (topic, payload, status, created_at, available_at, attempts,"
        " handed_out_at, started_at, done_at, last_error_type, last_error)"
        " VALUES (%s, %s, 'DUE', %s, %s, 0, NULL, NULL, NULL, '', '') RETURNING id",
        [CREATE_TOPIC, json.dumps({"payment_id": public_id}), now, now],
    )
    cursor.fetchone()
    response = json.dumps(
        {"id": public_id, "object": "payment", "status": "pending", **body, "created": int(now.timestamp())}
    ).encode()
    cursor.execute(
        "UPDATE payments_idempotencykey SET response_status = 202, response_body = %s WHERE id = %s",
        [response, key_id],
    )
    return response


def _rows_as_json(cursor) -> list[dict]:
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def payment_read(cursor, *, client_id: int, public_id: str) -> bytes:
    """The payment as JSON, read as the retrieve endpoint reads it (tenant and public id)."""
    cursor.execute(
        f"SELECT {PAYMENT_COLUMNS} FROM payments_payment WHERE client_id = %s AND public_id = %s",  # noqa: S608
        [client_id, public_id],
    )
    rows = _rows_as_json(cursor)
    if not rows:
        raise LookupError(public_id)
    return json.dumps(rows[0], default=str).encode()


def payment_list(cursor, *, client_id: int, limit: int = 10) -> bytes:
    """The newest `limit` payments as a JSON list, read as the list endpoint reads them (one more for has_more)."""
    cursor.execute(
        f"SELECT {PAYMENT_COLUMNS} FROM payments_payment WHERE client_id = %s"  # noqa: S608
        " ORDER BY created_at DESC, id DESC LIMIT %s",
        [client_id, limit + 1],
    )
    rows = _rows_as_json(cursor)
    return json.dumps({"object": "list", "data": rows[:limit], "has_more": len(rows) > limit}, default=str).encode()


WEBHOOK_PATH = "/webhooks/stripe"
WEBHOOK_TOPIC = "webhooks.event.received"  # webhooks.topics.WEBHOOK_EVENT_RECEIVED, Django-free here


def webhook_event_insert(cursor, *, event: dict, payload: str) -> bool:
    """Store a verified event once, with its outbox row if it was new, inside the caller's transaction:
    the two statements `webhook_event_record` sends. Return True if it inserted, False on a duplicate."""
    obj = event["data"]["object"]
    cursor.execute(
        "INSERT INTO webhooks_webhookevent (provider, provider_event_id, type, object_type, object_id,"
        " payment_public_id, provider_created_at, api_version, livemode, payload, source, status, outcome,"
        " attempts, last_error, received_at, processed_at)"
        " VALUES ('stripe', %s, %s, %s, %s, '', now(), %s, false, %s, 'webhook', 'RECEIVED', '', 0, '', now(), NULL)"
        " ON CONFLICT ON CONSTRAINT webhook_event_once DO NOTHING RETURNING id",
        [event["id"], event["type"], obj["object"], obj["id"], event["api_version"], payload],
    )
    inserted = cursor.fetchone()
    if inserted is None:
        return False
    cursor.execute(
        "INSERT INTO outbox_outboxmessage (topic, payload, status, created_at, available_at, attempts,"
        " handed_out_at, started_at, done_at, last_error_type, last_error)"
        " VALUES (%s, %s, 'DUE', now(), now(), 0, NULL, NULL, NULL, '', '') RETURNING id",
        [WEBHOOK_TOPIC, json.dumps({"webhook_event_id": inserted[0]})],
    )
    cursor.fetchone()
    return True
