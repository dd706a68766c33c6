"""`make run`'s demo: one checkout through the public API, its status changes printed as they happen."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

FINAL = {"succeeded", "failed", "canceled", "requires_capture", "requires_action"}  # or waiting on someone
FOLLOW_SECONDS = 30


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _call(
    method: str, url: str, *, key: str | None = None, body: dict | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback URL built here
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _wait_ready(base: str, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            if _call("GET", f"{base}/readyz")[0] == 200:
                return True
        except OSError:
            pass
        stop.wait(1)
    return False


def run() -> int:
    """Wait for the web server, make one checkout, follow it, then idle until the stack stops."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        return _checkout(stop)
    except Exception:
        if stop.is_set():  # the stack is going down under us (the database first): nothing to report
            return 0
        raise


def _checkout(stop: threading.Event) -> int:
    base = f"http://127.0.0.1:{os.environ.get('WEB_PORT', '8000')}"
    if not _wait_ready(base, stop):
        return 0
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from config.devstack.bootstrap import api_key_ensure_demo

    key = api_key_ensure_demo()
    started = time.monotonic()

    def say(message: str) -> None:
        _say(f"{time.monotonic() - started:6.2f}s  {message}")

    checkout = {
        "amount": 2000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "description": "make run demo checkout",
    }
    status, payment = _call(
        "POST",
        f"{base}/api/v1/payments",
        key=key,
        body=checkout,
        headers={"Idempotency-Key": f"make-run-demo-{int(time.time())}"},
    )
    if status != 202:
        say(f"checkout refused: {status} {payment}")
        return 0
    say(f"POST /api/v1/payments -> 202 {payment['id']} status={payment['status']} (stored; the relay sends it)")
    timeline = _Timeline(payment["id"], say)
    payment = _follow(base, key, f"/api/v1/payments/{payment['id']}", payment, FINAL, timeline, stop)
    if payment is None:
        return 0
    if payment["status"] == "succeeded":
        status, refund = _call(
            "POST",
            f"{base}/api/v1/payments/{payment['id']}/refunds",
            key=key,
            body={"amount": 500, "reason": "requested_by_customer"},
            headers={"Idempotency-Key": f"make-run-demo-refund-{payment['id']}"},
        )
        say(f"POST /api/v1/payments/{payment['id']}/refunds amount=500 -> {status} {refund.get('id')}")
        if status == 202:
            _follow(base, key, f"/api/v1/refunds/{refund['id']}", refund, {"succeeded", "failed"}, timeline, stop)
    timeline.wait_for_webhooks(stop)
    say(f"follow it: curl -H 'Authorization: Bearer {key}' {base}/api/v1/payments/{payment['id']}")
    stop.wait()
    return 0


# What each webhook outcome means, in the demo's words (webhooks/handlers.py names them).
WEBHOOK_OUTCOMES = {
    "applied": "applied",
    "no_change": "processed, no change (already known)",
    "flagged": "processed, flagged for ops",
    "unhandled_type": "stored, ignored (a type we do not act on)",
    "not_ours": "ignored (not one of ours)",
}
WEBHOOK_WAIT_SECONDS = 10  # the sandbox's deliveries follow the API calls by milliseconds
WEBHOOK_QUIET_SECONDS = 1.5  # no new webhook for this long: the last of them is in


class _Timeline:
    """Prints the payment's timeline entries (who moved it, from where to where) as they are written,
    and the provider's webhooks about it as they are processed."""

    def __init__(self, payment_id: str, say) -> None:
        self.payment_id, self.say, self.last_id = payment_id, say, 0
        self.webhooks_seen: set[int] = set()

    def poll(self) -> None:
        from payments.models import PaymentEvent
        from webhooks.models import SETTLED, WebhookEvent

        for event in PaymentEvent.objects.filter(payment__public_id=self.payment_id, id__gt=self.last_id).order_by(
            "id"
        ):
            self.last_id = event.id
            moved = f"{event.from_status or '-'} -> {event.to_status}" if event.from_status else event.to_status
            self.say(f"{self.payment_id} {event.type:<26} {moved:<28} by {event.source}")
        webhooks = WebhookEvent.objects.filter(payment_public_id=self.payment_id, status__in=SETTLED).exclude(
            pk__in=self.webhooks_seen
        )
        for webhook in webhooks.order_by("id"):
            self.webhooks_seen.add(webhook.pk)
            outcome = WEBHOOK_OUTCOMES.get(webhook.outcome, webhook.outcome)
            self.say(f"{self.payment_id} webhook {webhook.type:<34} {outcome}")

    def wait_for_webhooks(self, stop: threading.Event) -> None:
        """Print the webhooks that arrive after the payment settled, for a few seconds."""
        deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and not stop.wait(0.2):
            before = len(self.webhooks_seen)
            self.poll()
            if len(self.webhooks_seen) != before:
                quiet_since = time.monotonic()
            elif (
                self.webhooks_seen
                and time.monotonic() - quiet_since > WEBHOOK_QUIET_SECONDS
                and self._all_webhooks_settled()
            ):
                return

    def _all_webhooks_settled(self) -> bool:
        from webhooks.models import SETTLED, WebhookEvent

        return not WebhookEvent.objects.filter(payment_public_id=self.payment_id).exclude(status__in=SETTLED).exists()


def _follow(
    base: str, key: str, path: str, obj: dict, final: set[str], timeline: _Timeline, stop: threading.Event
) -> dict | None:
    """Poll `path` until its status is final, printing each timeline entry; None if the stack stopped first."""
    seen, deadline = obj["status"], time.monotonic() + FOLLOW_SECONDS
    while seen not in final and time.monotonic() < deadline:
        if stop.wait(0.05):
            return None
        timeline.poll()
        obj = _call("GET", f"{base}{path}", key=key)[1]
        seen = obj.get("status")
    timeline.poll()
    timeline.say(f"{obj['id']} status={seen} (as the API shows it)")
    if seen not in final:
        timeline.say(f"{obj['id']} is still {seen} after {FOLLOW_SECONDS}s: see the worker and relay lines above")
    return obj
