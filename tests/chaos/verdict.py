"""
The verdict: our database, read directly, against the provider's own account of what it did
(`GET /_sandbox/ledger`, and its intents and refunds). Every violation names the payment and carries
its timeline.
"""

# ruff: noqa: S608 - every query names a table from our own models and binds its values

from __future__ import annotations

import json
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from outbox.models import OutboxMessage
from payments.models import IdempotencyKey, Payment, PaymentEvent, Refund
from tests.chaos.checkout import Checkout
from tests.pii import find_pii
from webhooks.models import WebhookEvent

FINAL = {Payment.Status.SUCCEEDED, Payment.Status.FAILED, Payment.Status.CANCELED}
IN_FLIGHT = set(Payment.NOT_FINAL) - {Payment.Status.REQUIRES_ACTION, Payment.Status.REQUIRES_CAPTURE}
# A waiting payment is not lost when its checkout left it there: 3-D Secure never done, never captured.
WAITING_ON_CUSTOMER = {Payment.Status.REQUIRES_ACTION, Payment.Status.REQUIRES_CAPTURE}
WEBHOOK_UNSETTLED = ["RECEIVED", "PROCESSING", "FAILED"]
# Our status for each status the provider may leave an intent in.
PROVIDER_STATUS = {
    "succeeded": Payment.Status.SUCCEEDED,
    "canceled": Payment.Status.CANCELED,
    "requires_payment_method": Payment.Status.FAILED,
    "requires_action": Payment.Status.REQUIRES_ACTION,
    "requires_capture": Payment.Status.REQUIRES_CAPTURE,
}


def _transitions(model) -> set[tuple[str, str]]:
    field_ = model._meta.get_field("status")
    return {(t.source, t.target) for t in field_.get_all_transitions(model)}


PAYMENT_TRANSITIONS = _transitions(Payment)
REFUND_TRANSITIONS = _transitions(Refund)


@dataclass
class Violation:
    kind: str  # duplicate, lost, mismatch, regression, webhook_twice, outbox, pii
    payment: str
    detail: str


@dataclass
class Verdict:
    violations: list[Violation] = field(default_factory=list)
    figures: Counter = field(default_factory=Counter)
    timelines: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, payment: str, detail: str) -> None:
        self.violations.append(Violation(kind, payment, detail))

    def by_kind(self) -> Counter:
        return Counter(v.kind for v in self.violations)


def _sandbox_get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback sandbox
        return json.loads(response.read())


def _sandbox_list(sandbox_url: str, path: str) -> list[dict]:
    items, after = [], None
    while True:
        query = "limit=100" + (f"&starting_after={after}" if after else "")
        request = urllib.request.Request(  # noqa: S310 - loopback sandbox
            f"{sandbox_url}{path}?{query}", headers={"Authorization": "Bearer sk_test_chaos"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback sandbox
            page = json.loads(response.read())
        items += page["data"]
        if not page["has_more"]:
            return items
        after = page["data"][-1]["id"]


def unsettled(database_url: str) -> dict[str, int]:
    """What still moves: in-flight payments and refunds, due outbox rows, unsettled webhook events."""
    with psycopg.connect(database_url) as conn:
        count = lambda sql, *params: conn.execute(sql, params).fetchone()[0]  # noqa: E731
        return {
            "payments": count(
                f"SELECT count(*) FROM {Payment._meta.db_table} WHERE status = ANY(%s) AND flagged_at IS NULL",
                sorted(IN_FLIGHT),
            ),
            "refunds": count(f"SELECT count(*) FROM {Refund._meta.db_table} WHERE status = 'PENDING'"),
            "outbox": count(
                f"SELECT count(*) FROM {OutboxMessage._meta.db_table} WHERE status = ANY(%s)",
                [OutboxMessage.Status.DUE, OutboxMessage.Status.HANDED_OUT],
            ),
            "webhooks": count(
                f"SELECT count(*) FROM {WebhookEvent._meta.db_table} WHERE status = ANY(%s)", WEBHOOK_UNSETTLED
            ),
        }


def judge(*, database_url: str, sandbox_url: str, checkouts: list[Checkout]) -> Verdict:
    verdict = Verdict()
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        payments = {row["public_id"]: row for row in conn.execute(f"SELECT * FROM {Payment._meta.db_table}")}
        by_pk = {row["id"]: row["public_id"] for row in payments.values()}
        refunds = list(conn.execute(f"SELECT * FROM {Refund._meta.db_table}"))
        events = list(conn.execute(f"SELECT * FROM {PaymentEvent._meta.db_table} ORDER BY id"))
        outbox = Counter(row["status"] for row in conn.execute(f"SELECT status FROM {OutboxMessage._meta.db_table}"))
        webhook_rows = list(conn.execute(f"SELECT status, outcome FROM {WebhookEvent._meta.db_table}"))
        keys = list(conn.execute(f"SELECT key, response_status FROM {IdempotencyKey._meta.db_table}"))
    ledger = _sandbox_get(f"{sandbox_url}/_sandbox/ledger")
    intents = {intent["id"]: intent for intent in _sandbox_list(sandbox_url, "/v1/payment_intents")}
    provider_refunds = _sandbox_list(sandbox_url, "/v1/refunds")

    timelines: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        timelines[by_pk[event["payment_id"]]].append(event)
    verdict.timelines = {
        pid: [
            f"{e['type']} {e['from_status']}->{e['to_status']} ({e['source']}"
            f"{', ' + e['data'].get('event_id', '') if e['data'].get('event_id') else ''})"
            for e in rows
        ]
        for pid, rows in timelines.items()
    }
    left_waiting = {pid for c in checkouts if c.customer_left for pid in c.payment_ids}

    # The provider's side: what it did, per payment (its intents found by our metadata).
    provider_by_payment: dict[str, list[str]] = defaultdict(list)
    for intent_id, entry in ledger["payment_intents"].items():
        owner = entry["metadata"].get("payment_id", "")
        provider_by_payment[owner].append(intent_id)
        if entry["charged"] > 1 or entry["captured"] > 1 or entry["canceled"] > 1:
            verdict.add("duplicate", owner, f"intent {intent_id} did one operation twice: {entry}")
        if entry["amount_refunded"] > entry["amount_captured"]:
            verdict.add("duplicate", owner, f"intent {intent_id} refunded beyond its capture: {entry}")
    for owner, intent_ids in provider_by_payment.items():
        if owner not in payments:
            verdict.add("mismatch", owner or "?", f"provider intents {intent_ids} for no payment of ours")
        elif len(intent_ids) > 1:
            charged = sum(ledger["payment_intents"][i]["charged"] for i in intent_ids)
            verdict.add("duplicate", owner, f"{len(intent_ids)} intents created ({charged} charged): {intent_ids}")
    refunds_by_id = {r["metadata"].get("refund_id"): r for r in provider_refunds}
    refund_counts = Counter(r["metadata"].get("refund_id") for r in provider_refunds)
    for refund_id, copies in refund_counts.items():
        if copies > 1:
            verdict.add(
                "duplicate",
                refunds_by_id[refund_id]["metadata"].get("payment_id", "?"),
                f"refund {refund_id} made {copies} times",
            )

    # Our side against theirs, payment by payment.
    our_refunds: dict[str, list[dict]] = defaultdict(list)
    for refund in refunds:
        our_refunds[by_pk[refund["payment_id"]]].append(refund)
    for pid, payment in payments.items():
        status = payment["status"]
        flagged = payment["flagged_at"] is not None
        verdict.figures[f"status {status}"] += 1
        if flagged:
            verdict.figures["flagged"] += 1
        intent_ids = provider_by_payment.get(pid, [])
        intent = intents.get(payment["provider_payment_id"] or (intent_ids[0] if intent_ids else ""))
        if status not in FINAL and not (status in WAITING_ON_CUSTOMER and pid in left_waiting) and not flagged:
            verdict.add("lost", pid, f"left {status}")
        if intent is None:
            if status not in (Payment.Status.FAILED, Payment.Status.CANCELED) and not flagged:
                verdict.add("mismatch", pid, f"{status} here, no intent at the provider")
        else:
            expected = PROVIDER_STATUS.get(intent["status"])
            if expected != status and not flagged:
                verdict.add("mismatch", pid, f"{status} here, {intent['status']} at the provider ({intent['id']})")
            if payment["amount_received"] != intent["amount_received"]:
                verdict.add(
                    "mismatch", pid, f"received {payment['amount_received']} here, {intent['amount_received']} there"
                )
            refunded_there = ledger["payment_intents"][intent["id"]]["amount_refunded"]
            refunded_here = sum(r["amount"] for r in our_refunds[pid] if r["status"] == Refund.Status.SUCCEEDED)
            if refunded_here != refunded_there or payment["amount_refunded"] != refunded_there:
                ours = f"{refunded_here} (payment says {payment['amount_refunded']})"
                verdict.add("mismatch", pid, f"refunded {ours} here, {refunded_there} there")
        for refund in our_refunds[pid]:
            theirs = refunds_by_id.get(refund["public_id"])
            verdict.figures[f"refund {refund['status']}"] += 1
            if refund["status"] == Refund.Status.PENDING:
                verdict.add("lost", pid, f"refund {refund['public_id']} left pending")
            elif refund["status"] == Refund.Status.SUCCEEDED and (
                theirs is None or theirs["amount"] != refund["amount"]
            ):
                verdict.add("mismatch", pid, f"refund {refund['public_id']} succeeded here, {theirs} there")
            elif refund["status"] == Refund.Status.FAILED and theirs is not None and theirs["status"] == "succeeded":
                verdict.add("mismatch", pid, f"refund {refund['public_id']} failed here, succeeded there")
        _check_timeline(verdict, pid, timelines[pid])

    # Client idempotency: a key answered 202 made exactly one payment (one idempotency row per key).
    stored_keys = Counter(row["key"] for row in keys)
    for checkout in checkouts:
        for key, answered in checkout.keys.items():
            if answered and stored_keys[key] != 1:
                verdict.add("duplicate", answered, f"Idempotency-Key {key} stored {stored_keys[key]} times")
        if len(set(checkout.payment_ids)) != len(checkout.payment_ids):
            verdict.add("duplicate", checkout.payment_ids[0], "one checkout answered with the same payment twice")

    for status in (OutboxMessage.Status.DUE, OutboxMessage.Status.HANDED_OUT):
        if outbox[status]:
            verdict.add("outbox", "-", f"{outbox[status]} outbox rows still {status}")
    verdict.figures["outbox dead"] = outbox[OutboxMessage.Status.DEAD]
    webhook_status = Counter(row["status"] for row in webhook_rows)
    for status in WEBHOOK_UNSETTLED:
        if webhook_status[status]:
            verdict.add("webhook_unsettled", "-", f"{webhook_status[status]} webhook events still {status}")
    verdict.figures["webhook events"] = len(webhook_rows)
    verdict.figures["webhook events parked"] = webhook_status["PARKED"]
    verdict.figures["provider POSTs"] = sum(ledger.get("requests_per_idempotency_key", {}).values())
    return verdict


def _check_timeline(verdict: Verdict, pid: str, rows: list[dict]) -> None:
    """Statuses only move along the state machine; a webhook event changes a payment at most once."""
    current = {"payment": None}
    applied = Counter()
    for row in rows:
        if row["data"].get("event_id") and row["from_status"] != row["to_status"]:
            applied[(row["data"]["event_id"], row["refund_id"])] += 1
        if not row["to_status"] or row["from_status"] == row["to_status"]:
            continue
        subject = f"refund {row['refund_id']}" if row["refund_id"] else "payment"
        allowed = REFUND_TRANSITIONS if row["refund_id"] else PAYMENT_TRANSITIONS
        previous = current.get(subject)
        if row["from_status"] and (row["from_status"], row["to_status"]) not in allowed:
            verdict.add("regression", pid, f"{subject}: {row['from_status']} -> {row['to_status']} ({row['type']})")
        elif previous is not None and row["from_status"] and row["from_status"] != previous:
            verdict.add("regression", pid, f"{subject}: was {previous}, next entry starts at {row['from_status']}")
        current[subject] = row["to_status"]
    for (event_id, _), times in applied.items():
        if times > 1:
            verdict.add("webhook_twice", pid, f"webhook event {event_id} applied {times} times")


def scan_logs(verdict: Verdict, logs: list[Path]) -> None:
    """Every line of our processes' logs against the personal data the checkouts carried: a hit is a
    violation naming the file and line (the value itself is not repeated)."""
    for path in logs:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                verdict.figures["log lines scanned"] += 1
                # tests/pii.py's description of each hit without the value (`kind: value`)
                found = sorted({hit.split(":", 1)[0] for hit in find_pii(raw.decode(errors="replace"))})
                if found:
                    verdict.add("pii", "-", f"{path.name}:{number} holds {', '.join(found)}")
