"""`make run`'s demo: one checkout through the public API, its status changes printed as they happen."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

FINAL = {"succeeded", "failed", "canceled", "requires_capture", "requires_action"}
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
        _say(f"checkout refused: {status} {payment}")
        return 0
    _say(f"POST /api/v1/payments -> 202 {payment['id']} status={payment['status']}")
    seen, deadline = payment["status"], time.monotonic() + FOLLOW_SECONDS
    while seen not in FINAL and time.monotonic() < deadline and not stop.wait(0.5):
        payment = _call("GET", f"{base}/api/v1/payments/{payment['id']}", key=key)[1]
        if payment.get("status") != seen:
            seen = payment.get("status")
            _say(f"{payment['id']} status={seen} provider_payment_id={payment.get('provider_payment_id')}")
    if seen not in FINAL:
        _say(f"{payment['id']} is still {seen} after {FOLLOW_SECONDS}s (no worker has sent it to the provider)")
    _say(f"follow it: curl -H 'Authorization: Bearer {key}' {base}/api/v1/payments/{payment['id']}")
    stop.wait()
    return 0
