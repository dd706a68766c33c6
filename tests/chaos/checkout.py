"""
Checkout clients: each plays one seeded scenario through the API as a real checkout would, with a
timeout, retrying with its Idempotency-Key on a timeout, a reset or a 5xx (and sometimes giving up and
retrying with a new key, which must make a second payment). The customer side of 3-D Secure is the
sandbox's authenticate route.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

from tests.pii import PLANTED

DECLINE_CARDS = [
    "pm_card_chargeDeclined",
    "pm_card_visa_chargeDeclinedInsufficientFunds",
    "pm_card_chargeDeclinedExpiredCard",
    "pm_card_chargeDeclinedIncorrectCvc",
]
CARDS = ["pm_card_visa", "pm_card_mastercard", "pm_card_amex"]
THREE_DS_CARDS = ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"]
# (scenario, weight): a realistic mix, most payments plain card payments.
MIX = [
    ("card", 30),
    ("card_refund_partial", 8),
    ("card_refund_full", 6),
    ("manual_capture_full", 8),
    ("manual_capture_partial", 6),
    ("manual_capture_refund", 4),
    ("manual_cancel", 6),
    ("decline", 10),
    ("three_ds_complete", 7),
    ("three_ds_fail", 3),
    ("three_ds_abandon", 3),
    ("async", 6),
    ("async_fail", 3),
]
CLIENT_TIMEOUT_SECONDS = 10.0
IMPATIENT_TIMEOUT_SECONDS = 0.05  # a checkout that gives up before our 202 comes back
IMPATIENT_SHARE = 0.10  # retries with the same key
NEW_KEY_SHARE = 0.03  # gives up and starts over with a new key: a second payment, on purpose
# A checkout keeps trying this long, backing off: past a PostgreSQL restart or the web started again
# on a busy machine. A count of tries ran out in seconds while every answer was a quick 500.
RETRY_FOR_SECONDS = 120.0
# A checkout page polls for the outcome, sooner at first. The cap bounds the load that many waiting
# checkouts put on the web (the run keeps a hundred-odd in flight) and how late one sees its outcome.
POLL_FIRST_SECONDS, POLL_CAP_SECONDS = 0.3, 3.0


@dataclass
class Checkout:
    """What one client did, for the verdict: its payments, the keys it used and what it left undone."""

    index: int
    scenario: str
    amount: int
    payment_ids: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> payment id answered
    refunds: list[str] = field(default_factory=list)
    customer_left: bool = False  # the payment may rightly wait on a customer (abandoned 3-D Secure, no capture)
    notes: list[str] = field(default_factory=list)


def _backoff(attempt: int) -> float:
    return min(0.1 * 2**attempt, 1.0)


def _transient(response: requests.Response) -> bool:
    """A 5xx, a 429, or a 409 that says the same key (or the payment) is busy: try again later."""
    if response.status_code == 409:
        return response.json()["error"]["code"] in ("idempotency_key_in_use", "lock_timeout")
    return response.status_code == 429 or response.status_code >= 500


class Client:
    def __init__(self, *, base_url: str, api_key: str, sandbox_url: str, stats: Counter) -> None:
        self.base_url, self.sandbox_url, self.stats = base_url, sandbox_url, stats
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    def post(
        self, path: str, body: dict, *, key: str, first_timeout: float = CLIENT_TIMEOUT_SECONDS
    ) -> requests.Response:
        """POST with the same Idempotency-Key until an answer that is not a transient failure."""
        began = time.monotonic()
        try:
            return self._post(path, body, key=key, first_timeout=first_timeout)
        finally:
            self.stats["seconds_posting"] += time.monotonic() - began

    def _post(self, path: str, body: dict, *, key: str, first_timeout: float) -> requests.Response:
        timeout, deadline = first_timeout, time.monotonic() + RETRY_FOR_SECONDS
        for attempt in itertools.count():
            if time.monotonic() > deadline:
                raise RuntimeError(f"POST {path} with key {key} never got an answer")
            try:
                response = self.session.post(
                    f"{self.base_url}{path}", json=body, headers={"Idempotency-Key": key}, timeout=timeout
                )
            except requests.RequestException:  # a timeout, a reset, a response cut off by a killed worker
                self.stats["client_retries_same_key"] += 1
                timeout = CLIENT_TIMEOUT_SECONDS
                time.sleep(_backoff(attempt))
                continue
            if _transient(response):
                self.stats[f"client_http_{response.status_code}"] += 1
                time.sleep(max(min(float(response.headers.get("Retry-After") or 0), 2), _backoff(attempt)))
                continue
            if response.headers.get("Idempotent-Replayed") == "true":
                self.stats["client_replays"] += 1
            return response
        raise AssertionError("unreachable")

    def get(self, path: str) -> dict | None:
        deadline = time.monotonic() + RETRY_FOR_SECONDS
        for attempt in itertools.count():
            if time.monotonic() > deadline:
                return None
            try:
                response = self.session.get(f"{self.base_url}{path}", timeout=CLIENT_TIMEOUT_SECONDS)
            except requests.RequestException:
                time.sleep(_backoff(attempt))
                continue
            if response.status_code == 200:
                return response.json()
            time.sleep(_backoff(attempt))
        raise AssertionError("unreachable")

    def wait_for(self, payment_id: str, statuses: set[str], *, timeout: float) -> dict | None:
        """Poll our API as a checkout page would, until the payment is in one of `statuses`."""
        began = time.monotonic()
        try:
            return self._wait_for(payment_id, statuses, timeout=timeout)
        finally:
            self.stats["seconds_waiting"] += time.monotonic() - began

    def _wait_for(self, payment_id: str, statuses: set[str], *, timeout: float) -> dict | None:
        deadline, interval = time.monotonic() + timeout, POLL_FIRST_SECONDS
        while time.monotonic() < deadline:
            payment = self.get(f"/api/v1/payments/{payment_id}")
            if payment and payment["status"] in statuses:
                return payment
            time.sleep(interval)
            interval = min(interval * 1.5, POLL_CAP_SECONDS)
        return None

    def authenticate(self, intent_id: str, outcome: str) -> None:
        body = json.dumps({"outcome": outcome}).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback sandbox
            f"{self.sandbox_url}/_sandbox/payment_intents/{intent_id}/authenticate", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback sandbox
            pass


def plan_checkouts(*, seed: int, payments: int) -> list[Checkout]:
    rng = random.Random(f"chaos-mix-{seed}")
    names, weights = zip(*MIX, strict=True)
    return [
        Checkout(index=n, scenario=rng.choices(names, weights)[0], amount=rng.randrange(100, 50_000, 10))
        for n in range(payments)
    ]


def run_checkout(client: Client, checkout: Checkout, *, seed: int, wait_seconds: float) -> None:
    """Play one checkout's scenario to its end (or until the customer leaves)."""
    rng = random.Random(f"chaos-checkout-{seed}-{checkout.index}")
    scenario = checkout.scenario
    manual = scenario.startswith("manual")
    method = (
        rng.choice(DECLINE_CARDS)
        if scenario == "decline"
        else rng.choice(THREE_DS_CARDS)
        if scenario.startswith("three_ds")
        else "pm_sandbox_async_fail"
        if scenario == "async_fail"
        else "pm_sandbox_async"
        if scenario == "async"
        else rng.choice(CARDS)
    )
    body = {
        "amount": checkout.amount,
        "currency": "eur",
        "payment_method": method,
        "capture_method": "manual" if manual else "automatic",
        # Personal data, as merchants do send it: none of it may reach our logs (verdict.scan_logs).
        "description": PLANTED["description"],
        "customer_reference": PLANTED["email"],
        "metadata": {
            "order": f"chaos-{seed}-{checkout.index}",
            "customer_email": PLANTED["email"],
            "customer_name": PLANTED["name"],
            "customer_phone": PLANTED["phone"],
            "shipping_address": PLANTED["address"],
            "card_note": PLANTED["card_number"],
        },
    }
    impatient = rng.random() < IMPATIENT_SHARE
    if rng.random() < NEW_KEY_SHARE and not manual and not scenario.startswith("three_ds"):
        # The first try's answer never reached the checkout, which starts over with a new key.
        key = str(uuid.uuid4())
        checkout.keys[key] = ""
        with contextlib.suppress(requests.RequestException):
            client.session.post(
                f"{client.base_url}/api/v1/payments",
                json=body,
                headers={"Idempotency-Key": key},
                timeout=IMPATIENT_TIMEOUT_SECONDS,
            )
        client.stats["client_new_key_retries"] += 1
        checkout.notes.append("retried with a new key")
    key = str(uuid.uuid4())
    response = client.post(
        "/api/v1/payments",
        body,
        key=key,
        first_timeout=IMPATIENT_TIMEOUT_SECONDS if impatient else CLIENT_TIMEOUT_SECONDS,
    )
    if response.status_code != 202:
        checkout.notes.append(f"create answered {response.status_code}: {response.text[:200]}")
        return
    payment = response.json()
    checkout.payment_ids.append(payment["id"])
    checkout.keys[key] = payment["id"]
    pid = payment["id"]

    if scenario.startswith("three_ds"):
        waiting = client.wait_for(pid, {"requires_action", "failed", "succeeded"}, timeout=wait_seconds)
        if scenario == "three_ds_abandon" or waiting is None or waiting["status"] != "requires_action":
            checkout.customer_left = True
            return
        time.sleep(rng.uniform(0, 1))  # the customer takes a moment on the bank's page
        client.authenticate(waiting["provider_payment_id"], "fail" if scenario == "three_ds_fail" else "succeed")
        return
    if manual:
        held = client.wait_for(pid, {"requires_capture", "failed"}, timeout=wait_seconds)
        if held is None or held["status"] != "requires_capture":
            checkout.customer_left = True  # never authorized in time: the merchant walks away, ops see it
            return
        if scenario == "manual_cancel":
            client.post(f"/api/v1/payments/{pid}/cancel", {}, key=str(uuid.uuid4()))
            return
        capture = {"amount": rng.randrange(50, checkout.amount, 10)} if scenario == "manual_capture_partial" else {}
        client.post(f"/api/v1/payments/{pid}/capture", capture, key=str(uuid.uuid4()))
        if scenario != "manual_capture_refund":
            return
    if scenario in ("card_refund_partial", "card_refund_full", "manual_capture_refund"):
        paid = client.wait_for(pid, {"succeeded", "failed", "canceled"}, timeout=wait_seconds)
        if paid is None or paid["status"] != "succeeded":
            checkout.notes.append("never succeeded in time: no refund asked")
            return
        received = paid["amount_received"]
        amounts = [None] if scenario == "card_refund_full" else [max(1, received // 3), max(1, received // 4)]
        for amount in amounts:
            refund = client.post(
                f"/api/v1/payments/{pid}/refunds",
                {} if amount is None else {"amount": amount},
                key=str(uuid.uuid4()),
            )
            if refund.status_code == 202:
                checkout.refunds.append(refund.json()["id"])
            else:
                checkout.notes.append(f"refund answered {refund.status_code}")
