"""The sandbox's HTTP layer: Stripe's routes under /v1/, control routes under /_sandbox/."""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from sandbox import forms
from sandbox.errors import StripeError, api_error, not_found
from sandbox.faults import REQUEST_KINDS, Faults, coerce
from sandbox.idempotency import IdempotencyStore
from sandbox.state import Store, new_id, public
from sandbox.webhooks import Dispatcher

logger = logging.getLogger("sandbox")
_ROUTES: list[tuple[str, re.Pattern, str]] = []


def route(method: str, pattern: str):
    def register(func):
        _ROUTES.append((method, re.compile(f"^{pattern}$"), func.__name__))
        return func

    return register


def _resolve(method: str, path: str) -> tuple[str, re.Match | None]:
    for verb, pattern, name in _ROUTES:
        match = pattern.match(path)
        if match and verb == method:
            return name, match
    return "", None


def _list(objects: list[dict], params: dict, url: str, *, created_field: str = "created") -> dict:
    """Stripe's list object: newest first, `limit`, `starting_after`/`ending_before`, `created[...]`."""
    items = list(reversed(objects))
    created = params.get("created") if isinstance(params.get("created"), dict) else {}
    for op, check in (
        ("gt", lambda a, b: a > b),
        ("gte", lambda a, b: a >= b),
        ("lt", lambda a, b: a < b),
        ("lte", lambda a, b: a <= b),
    ):
        if op in created:
            items = [i for i in items if check(i[created_field], int(created[op]))]
    ids = [i["id"] for i in items]
    if params.get("starting_after") in ids:
        items = items[ids.index(params["starting_after"]) + 1 :]
    elif params.get("ending_before") in ids:
        items = items[: ids.index(params["ending_before"])]
    limit = max(1, min(100, int(params.get("limit", 10))))
    return {"object": "list", "data": [public(i) for i in items[:limit]], "has_more": len(items) > limit, "url": url}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses connections
    # Without TCP_NODELAY, a response written in two segments meets the client's delayed ACK:
    # 40 ms per request, whatever the work.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def log_message(self, format, *args) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    # --- plumbing ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _send(self, status: int, body: dict | bytes, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", self.request_id)
        self.send_header("Stripe-Version", self.server.sandbox.api_version)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _reset_connection(self) -> None:
        """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _handle(self, method: str) -> None:
        self.request_id = new_id("req")
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        name, match = _resolve(method, url.path)
        if match is None:
            self._send(
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Unrecognized request URL ({method}: {url.path}).",
                    }
                },
            )
            return
        if url.path.startswith("/_sandbox/"):
            try:
                body = json.loads(raw) if raw.strip().startswith(("{", "[")) else dict(parse_qsl(raw))
                status, payload = getattr(self, name)(body=body, query=dict(parse_qsl(url.query)), **match.groupdict())
            except (StripeError, ValueError, TypeError) as exc:
                status, payload = (exc.status, exc.body) if isinstance(exc, StripeError) else (400, {"error": str(exc)})
            self._send(status, payload)
            return
        if not self._authorized():
            return
        params = forms.decode(url.query if method == "GET" else raw)
        if sandbox.faults.rps_exceeded(method, url.path):
            self._send(
                429,
                StripeError(
                    429, "invalid_request_error", "Too many requests (sandbox rps_limit).", code="rate_limit"
                ).body,
                {"Retry-After": "1"},
            )
            return
        self._v1(method, url.path, name, match.groupdict(), params)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        key = header.removeprefix("Bearer ").strip()
        if header.startswith("Bearer ") and key.startswith(("sk_test_", "rk_test_")):
            self.api_key = key
            return True
        self._send(
            401,
            {
                "error": {
                    "type": "invalid_request_error",
                    "message": "Invalid API Key provided (the sandbox takes any sk_test_ key).",
                }
            },
        )
        return False

    def _v1(self, method: str, path: str, name: str, path_args: dict, params: dict) -> None:
        sandbox = self.server.sandbox
        fired = {f.kind: f for f in sandbox.faults.fire(REQUEST_KINDS, method, path)}
        if "connection_reset" in fired:
            self._reset_connection()
            return
        for kind in ("http_500", "http_502", "http_503"):
            if kind in fired:
                self._send(int(kind[-3:]), api_error(int(kind[-3:])).body)
                return
        if "rate_limit" in fired:
            self._send(
                429,
                StripeError(
                    429, "invalid_request_error", "Too many requests hit the API too quickly.", code="rate_limit"
                ).body,
                {"Retry-After": str(fired["rate_limit"].retry_after)},
            )
            return
        if "error_200" in fired:
            self._send(200, api_error(500).body)
            return
        ctx = {
            "latency_ms": fired["latency"].ms if "latency" in fired else 0,
            "request_id": self.request_id,
            "idempotency_key": self.headers.get("Idempotency-Key"),
            "method": method,
            "path": path,
            "before_response": bool(sandbox.faults.fire(("webhook_before_response",), method, path)),
        }
        status, body, headers = self._run_idempotently(method, path, name, path_args, params, ctx)
        if ctx.get("sync_events"):
            sandbox.dispatcher.deliver_now(ctx["sync_events"])
        if "timeout_after_commit" in fired:
            # The change is committed and its events are out; the response never arrives.
            time.sleep((fired["timeout_after_commit"].ms or 30_000) / 1000)
            self._reset_connection()
            return
        self._send(status, body, headers)

    def _run_idempotently(self, method, path, name, path_args, params, ctx) -> tuple[int, bytes, dict]:
        sandbox = self.server.sandbox
        key = self.headers.get("Idempotency-Key") if method == "POST" else None
        fingerprint = json.dumps([method, path, params], sort_keys=True)
        if key:
            try:
                stored = sandbox.idempotency.begin(self.api_key, key, fingerprint)
            except StripeError as exc:
                return exc.status, json.dumps(exc.body, indent=2).encode(), {}
            if stored is not None:
                return stored.status, stored.body, {"Idempotent-Replayed": "true"}
        if ctx.get("latency_ms"):  # slow work: inside the idempotency key's in-flight window
            time.sleep(ctx["latency_ms"] / 1000)
        try:
            status, payload = 200, getattr(self, name)(params=params, ctx=ctx, **path_args)
            body = json.dumps(public(payload), indent=2).encode()
        except StripeError as exc:
            status, body = exc.status, json.dumps(exc.body, indent=2).encode()
        except Exception:
            logger.exception("sandbox bug on %s %s", method, path)
            status, body = 500, json.dumps(api_error(500).body).encode()
        if key:
            sandbox.idempotency.finish(self.api_key, key, fingerprint, status, body)
        return status, body, {}

    # --- Stripe's API ---------------------------------------------------------------------------
    @route("POST", "/v1/payment_intents")
    def create_payment_intent(self, params, ctx):
        return self.server.sandbox.store.create_intent(params, ctx)

    @route("GET", "/v1/payment_intents")
    def list_payment_intents(self, params, ctx):
        store = self.server.sandbox.store
        with store.lock:
            return _list(list(store.intents.values()), params, "/v1/payment_intents")

    @route("GET", "/v1/payment_intents/search")
    def search_payment_intents(self, params, ctx):
        found = self.server.sandbox.store.search_intents(params.get("query", ""))
        limit = max(1, min(100, int(params.get("limit", 10))))
        return {
            "object": "search_result",
            "data": [public(i) for i in reversed(found)][:limit],
            "has_more": len(found) > limit,
            "next_page": None,
            "url": "/v1/payment_intents/search",
        }

    @route("GET", "/v1/payment_intents/(?P<intent_id>[^/]+)")
    def retrieve_payment_intent(self, params, ctx, intent_id):
        store = self.server.sandbox.store
        with store.lock:
            return store._intent(intent_id)

    @route("POST", "/v1/payment_intents/(?P<intent_id>[^/]+)")
    def update_payment_intent(self, params, ctx, intent_id):
        return self.server.sandbox.store.update_intent(intent_id, params, ctx)

    @route("POST", "/v1/payment_intents/(?P<intent_id>[^/]+)/confirm")
    def confirm_payment_intent(self, params, ctx, intent_id):
        return self.server.sandbox.store.confirm_intent(intent_id, params, ctx)

    @route("POST", "/v1/payment_intents/(?P<intent_id>[^/]+)/capture")
    def capture_payment_intent(self, params, ctx, intent_id):
        return self.server.sandbox.store.capture_intent(intent_id, params, ctx)

    @route("POST", "/v1/payment_intents/(?P<intent_id>[^/]+)/cancel")
    def cancel_payment_intent(self, params, ctx, intent_id):
        return self.server.sandbox.store.cancel_intent(intent_id, params, ctx)

    @route("GET", "/v1/charges/(?P<charge_id>[^/]+)")
    def retrieve_charge(self, params, ctx, charge_id):
        store = self.server.sandbox.store
        with store.lock:
            return store.charges.get(charge_id) or _raise(not_found("charge", charge_id))

    @route("POST", "/v1/refunds")
    def create_refund(self, params, ctx):
        return self.server.sandbox.store.create_refund(params, ctx)

    @route("GET", "/v1/refunds")
    def list_refunds(self, params, ctx):
        store = self.server.sandbox.store
        with store.lock:
            refunds = [
                r
                for r in store.refunds.values()
                if not params.get("payment_intent") or r["payment_intent"] == params["payment_intent"]
            ]
            return _list(refunds, params, "/v1/refunds")

    @route("GET", "/v1/refunds/(?P<refund_id>[^/]+)")
    def retrieve_refund(self, params, ctx, refund_id):
        store = self.server.sandbox.store
        with store.lock:
            return store.refunds.get(refund_id) or _raise(not_found("refund", refund_id))

    @route("GET", "/v1/events")
    def list_events(self, params, ctx):
        store = self.server.sandbox.store
        types = set(params.get("types") or []) | ({params["type"]} if params.get("type") else set())
        wanted_success = params.get("delivery_success")
        with store.lock:
            events = [
                e
                for e in store.events.values()
                if (not types or any(re.fullmatch(t.replace(".", r"\.").replace("*", ".*"), e["type"]) for t in types))
                and (wanted_success is None or bool(e["_delivery_success"]) == (wanted_success == "true"))
            ]
            after = params.get("starting_after")
            if after in store.events and all(e["id"] != after for e in events):
                # As Stripe's cursor: the events older than the one named, whether or not it passes the filter.
                order = list(store.events)
                older = set(order[: order.index(after)])
                events = [e for e in events if e["id"] in older]
            return _list(events, params, "/v1/events")

    @route("GET", "/v1/events/(?P<event_id>[^/]+)")
    def retrieve_event(self, params, ctx, event_id):
        store = self.server.sandbox.store
        with store.lock:
            return store.events.get(event_id) or _raise(not_found("event", event_id))

    @route("POST", "/v1/webhook_endpoints")
    def create_webhook_endpoint(self, params, ctx):
        if not params.get("url"):
            raise StripeError(
                400, "invalid_request_error", "Missing required param: url.", code="parameter_missing", param="url"
            )
        return self.server.sandbox.dispatcher.create_endpoint(
            params["url"], enabled_events=params.get("enabled_events")
        )

    @route("GET", "/v1/webhook_endpoints")
    def list_webhook_endpoints(self, params, ctx):
        store = self.server.sandbox.store
        with store.lock:
            return _list(
                [{k: v for k, v in e.items() if k != "secret"} for e in store.endpoints.values()],
                params,
                "/v1/webhook_endpoints",
            )

    @route("GET", "/v1/webhook_endpoints/(?P<endpoint_id>[^/]+)")
    def retrieve_webhook_endpoint(self, params, ctx, endpoint_id):
        store = self.server.sandbox.store
        with store.lock:
            endpoint = store.endpoints.get(endpoint_id) or _raise(not_found("webhook_endpoint", endpoint_id))
            return {k: v for k, v in endpoint.items() if k != "secret"}

    @route("DELETE", "/v1/webhook_endpoints/(?P<endpoint_id>[^/]+)")
    def delete_webhook_endpoint(self, params, ctx, endpoint_id):
        store = self.server.sandbox.store
        with store.lock:
            store.endpoints.pop(endpoint_id, None) or _raise(not_found("webhook_endpoint", endpoint_id))
            return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}

    # --- control routes (not Stripe's) ---------------------------------------------------------
    @route("GET", "/_sandbox/health")
    def control_health(self, body, query):
        return 200, {"status": "ok", "api_version": self.server.sandbox.api_version}

    @route("GET", "/_sandbox/faults")
    def control_faults(self, body, query):
        return 200, self.server.sandbox.faults.describe()

    @route("POST", "/_sandbox/faults")
    def control_faults_set(self, body, query):
        """{"faults": [...], "seed": 7, "mode": "replace"|"add"}; faults are dicts like the CLI specs."""
        faults = self.server.sandbox.faults
        specs = body.get("faults", []) if isinstance(body, dict) else body
        if isinstance(body, dict) and body.get("mode") == "add":
            faults.add(specs)
        else:
            faults.replace(
                specs, seed=coerce({"seed": body.get("seed")}).get("seed") if isinstance(body, dict) else None
            )
        return 200, faults.describe()

    @route("DELETE", "/_sandbox/faults")
    def control_faults_clear(self, body, query):
        self.server.sandbox.faults.replace([])
        return 200, self.server.sandbox.faults.describe()

    @route("GET", "/_sandbox/ledger")
    def control_ledger(self, body, query):
        report = self.server.sandbox.store.ledger_report()
        report["requests_per_idempotency_key"] = dict(self.server.sandbox.idempotency.requests_per_key)
        return 200, report

    @route("POST", "/_sandbox/reset")
    def control_reset(self, body, query):
        self.server.sandbox.reset()
        return 200, {"status": "reset"}

    @route("POST", "/_sandbox/payment_intents/(?P<intent_id>[^/]+)/authenticate")
    def control_authenticate(self, body, query, intent_id):
        outcome = (body or {}).get("outcome") or query.get("outcome") or "succeed"
        if outcome not in ("succeed", "fail"):
            return 400, {"error": "outcome must be succeed or fail"}
        return 200, public(self.server.sandbox.store.authenticate(intent_id, outcome == "succeed"))


def _raise(error: StripeError):
    raise error


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    sandbox: SandboxServer


class SandboxServer:
    """The sandbox, startable in a thread (tests) or in the foreground (`manage.py stripe_sandbox`).

    `api_version` is the Stripe API version it speaks (the `Stripe-Version` header, every event's
    `api_version`). It is the backend's pinned `STRIPE_API_VERSION`, passed in rather than written
    here: the sandbox imports nothing of ours, and the pin has one home.
    """

    def __init__(
        self,
        *,
        api_version: str,
        host: str = "127.0.0.1",
        port: int = 12111,
        seed: int | None = None,
        faults: list[dict] | None = None,
        async_settle_seconds: float = 2.0,
        webhook_retry_base_seconds: float = 1.0,
        webhook_max_attempts: int = 8,
        idempotency_ttl_seconds: float = 24 * 3600,
    ) -> None:
        self.api_version = api_version
        self.faults = Faults(seed=seed)
        self.faults.replace(faults or [], seed=seed)
        self.store = Store(api_version=api_version, async_settle_seconds=async_settle_seconds)
        self.dispatcher = Dispatcher(
            self.store, self.faults, retry_base_seconds=webhook_retry_base_seconds, max_attempts=webhook_max_attempts
        )
        self.store.on_event = self.dispatcher.on_event
        self.idempotency = IdempotencyStore(ttl_seconds=idempotency_ttl_seconds)
        self.httpd = SandboxHTTPServer((host, port), Handler)
        self.httpd.sandbox = self
        self.store.base_url = self.url
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def register_webhook(self, url: str, *, secret: str | None = None, enabled_events: list[str] | None = None) -> dict:
        """Register an endpoint; it receives only `enabled_events` (default `*`, every type)."""
        return self.dispatcher.create_endpoint(url, secret=secret, enabled_events=enabled_events)

    def reset(self) -> None:
        """Forget all objects, events, keys and faults (endpoints too)."""
        self.dispatcher.reset()
        self.store.reset()
        self.idempotency.reset()
        self.faults.replace([])

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="stripe-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.dispatcher.stop()
        self.store.reset()


def serve(server: SandboxServer) -> None:
    """Serve in the foreground until SIGINT/SIGTERM."""
    import signal

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"Stripe sandbox listening on {server.url} (API version {server.api_version})", flush=True)
    stop.wait()
    server.stop()
    print("Stripe sandbox stopped", flush=True)
