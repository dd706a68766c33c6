"""Webhook delivery: signed exactly as Stripe signs, retried with backoff, delivery recorded on the event."""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from sandbox.faults import Faults
from sandbox.state import Store, _wants, new_id, public

logger = logging.getLogger("sandbox.webhooks")
REORDER_HOLD_MS = 300


def sign(payload: str, secret: str, timestamp: int) -> str:
    """Return the Stripe-Signature header: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<payload>">."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class Dispatcher:
    """Delivers each event to every endpoint that wants it, on background threads."""

    def __init__(
        self,
        store: Store,
        faults: Faults,
        *,
        retry_base_seconds: float = 1.0,
        retry_cap_seconds: float = 60.0,
        max_attempts: int = 8,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.faults = faults
        self.retry_base_seconds = retry_base_seconds
        self.retry_cap_seconds = retry_cap_seconds
        self.max_attempts = max_attempts
        self.timeout_seconds = timeout_seconds
        self._queue: list[tuple[float, int, str, str, int]] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-webhook")
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def create_endpoint(self, url: str, *, secret: str | None = None, enabled_events: list | None = None) -> dict:
        endpoint = {
            "id": new_id("we"),
            "object": "webhook_endpoint",
            "url": url,
            "status": "enabled",
            "enabled_events": enabled_events or ["*"],
            "api_version": self.store.api_version,
            "created": int(time.time()),
            "livemode": False,
            "secret": secret or f"whsec_{new_id('s')[2:]}",
        }
        with self.store.lock:
            self.store.endpoints[endpoint["id"]] = endpoint
        return endpoint

    def on_event(self, event: dict, ctx: dict) -> None:
        """Called by the store for every new event (under its lock: only schedules)."""
        method, path = ctx.get("method", "POST"), ctx.get("path", "")
        if self.faults.fire(("webhook_drop",), method, path):
            # Lost for good: no delivery is ever attempted, and the event says so, as a Stripe event
            # whose deliveries all failed does (GET /v1/events?delivery_success=false finds it).
            event["_delivery_success"] = False
            return
        if ctx.get("before_response"):
            ctx.setdefault("sync_events", []).append(event)
            return
        held = self.faults.fire(("webhook_delay", "webhook_reorder"), method, path)
        # Reordering holds these events back long enough for the next request's to overtake them.
        delay = sum(f.ms or (REORDER_HOLD_MS if f.kind == "webhook_reorder" else 0) for f in held) / 1000
        copies = 1 + len(self.faults.fire(("webhook_duplicate",), method, path))
        for endpoint in list(self.store.endpoints.values()):
            if _wants(endpoint, event["type"]):
                for _ in range(copies):
                    self._schedule(time.monotonic() + delay, event["id"], endpoint["id"], 1)

    def deliver_now(self, events: list[dict]) -> None:
        """Deliver synchronously (the before-response fault), then leave retries to the loop."""
        for event in events:
            for endpoint in list(self.store.endpoints.values()):
                if _wants(endpoint, event["type"]):
                    self._attempt(event["id"], endpoint["id"], 1)

    def _schedule(self, due: float, event_id: str, endpoint_id: str, attempt: int) -> None:
        with self._condition:
            heapq.heappush(self._queue, (due, next(self._sequence), event_id, endpoint_id, attempt))
            self._condition.notify()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = None if not self._queue else max(0.0, self._queue[0][0] - time.monotonic())
                    self._condition.wait(timeout)
                if self._stopping:
                    return
                _, _, event_id, endpoint_id, attempt = heapq.heappop(self._queue)
            self._pool.submit(self._attempt, event_id, endpoint_id, attempt)

    def _attempt(self, event_id: str, endpoint_id: str, attempt: int) -> None:
        with self.store.lock:
            event = self.store.events.get(event_id)
            endpoint = self.store.endpoints.get(endpoint_id)
            payload = json.dumps(public(event), indent=2) if event else None
        if event is None or endpoint is None:
            return
        ok = self._post(endpoint["url"], payload, endpoint["secret"])
        with self.store.lock:
            delivered = event.setdefault("_delivered_to", set())
            if ok and endpoint_id not in delivered:
                delivered.add(endpoint_id)
                event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
                event["_delivery_success"] = event["pending_webhooks"] == 0
            elif not ok and endpoint_id not in delivered:
                event["_delivery_success"] = False
        if not ok and endpoint_id not in delivered and attempt < self.max_attempts:
            backoff = min(self.retry_cap_seconds, self.retry_base_seconds * 2 ** (attempt - 1))
            self._schedule(time.monotonic() + backoff * random.uniform(0.8, 1.2), event_id, endpoint_id, attempt + 1)

    def _post(self, url: str, payload: str, secret: str) -> bool:
        parts = urlsplit(url)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=self.timeout_seconds)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+sandbox)",
            "Stripe-Signature": sign(payload, secret, int(time.time())),
        }
        try:
            connection.request("POST", parts.path or "/", body=payload.encode(), headers=headers)
            status = connection.getresponse().status
        except OSError as exc:
            logger.info("webhook to %s failed: %s", url, type(exc).__name__)
            return False
        finally:
            connection.close()
        return 200 <= status < 300

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._queue.clear()
            self._condition.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def reset(self) -> None:
        with self._condition:
            self._queue.clear()
