"""
Rows: the Stripe sandbox's own throughput (it must never be the bottleneck of other benchmarks).

Starts the sandbox as a separate process (manage.py stripe_sandbox) on a free loopback port and
drives it from BENCH_SANDBOX_CLIENTS keep-alive connections: raw http.client create+confirm (one
POST each), then the real stripe SDK. The anchor, A-B-A around each: the same load against a bare
stdlib ThreadingHTTPServer that answers `{}`, also its own process; the ratio is the sandbox's own
cost. Bounded by BENCH_SECONDS, loopback only. Run by bench/run.py (`make bench`, BENCH_ONLY=sandbox).
"""

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import stripe

from bench.harness import Row, aba, closed_loop, http_step, progress, summarise
from bench.servers import ROOT, free_port, wait_listening

CLIENTS = int(os.environ.get("BENCH_SANDBOX_CLIENTS", "8"))
BODY = "amount=2000&currency=eur&payment_method=pm_card_visa&confirm=true&metadata[order]=42"
HEADERS = {"Authorization": "Bearer sk_test_bench", "Content-Type": "application/x-www-form-urlencoded"}


def drive(port: int, path: str):
    """Raw keep-alive HTTP: one connection per client."""
    return lambda: closed_loop(
        lambda index: http_step(port, "POST", path, body=BODY, headers=HEADERS, expect=200), clients=CLIENTS
    )


def drive_sdk(url: str):
    """The real stripe SDK, one client shared by the threads (as workers share one)."""
    client = stripe.StripeClient("sk_test_bench", base_addresses={"api": url}, max_network_retries=0)
    params = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    return lambda: closed_loop(lambda index: lambda: client.v1.payment_intents.create(params=params), clients=CLIENTS)


class Bare(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def _process(argv: list[str], port: int):
    """A server process of our own; stopped by its pid."""
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield port
    finally:
        process.terminate()
        process.wait()


def rows(ctx) -> list[Row]:
    bare_port, sandbox_port = free_port(), free_port()
    bare_code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.sandbox_throughput import Bare;"
        f"from http.server import ThreadingHTTPServer as S; s = S(('127.0.0.1', {bare_port}), Bare);"
        "s.daemon_threads = True; s.serve_forever()"
    )
    sandbox = [sys.executable, "manage.py", "stripe_sandbox", "--port", str(sandbox_port)]  # our pinned API version
    with _process([sys.executable, "-c", bare_code], bare_port), _process(sandbox, sandbox_port):
        progress(f"sandbox: {CLIENTS} clients, bare stdlib server / sandbox (raw HTTP, then stripe SDK), A-B-A")
        anchor = {"bare stdlib HTTP": drive(bare_port, "/")}
        raw = aba(drive(sandbox_port, "/v1/payment_intents"), anchor)
        sdk = aba(drive_sdk(f"http://127.0.0.1:{sandbox_port}"), anchor)
    return [
        summarise("sandbox", "sandbox create+confirm (raw HTTP)", CLIENTS, "req", raw),
        summarise("sandbox", "sandbox create+confirm (stripe SDK)", CLIENTS, "req", sdk),
    ]
