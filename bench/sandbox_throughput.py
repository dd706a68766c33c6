"""
Benchmark: the Stripe sandbox's own throughput (it must never be the bottleneck of other benchmarks).

Starts the sandbox as a separate process (manage.py stripe_sandbox) on a free loopback port and
drives it from THREADS keep-alive connections for SECONDS: raw http.client create+confirm (one POST
each), then the real stripe SDK. As a baseline measured in the same run, the same load against a bare stdlib
ThreadingHTTPServer that answers `{}`: the ratio is the sandbox's own cost. Bounded, loopback only.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import stripe

ROOT = Path(__file__).resolve().parent.parent
THREADS = int(os.environ.get("BENCH_THREADS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
BODY = "amount=2000&currency=eur&payment_method=pm_card_visa&confirm=true&metadata[order]=42"
HEADERS = {"Authorization": "Bearer sk_test_bench", "Content-Type": "application/x-www-form-urlencoded"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _throughput(work) -> float:
    """Requests per second when THREADS threads repeat `work()` for SECONDS."""
    counts = [0] * THREADS
    deadline = time.monotonic() + SECONDS

    def worker(index: int) -> None:
        step = work()
        while time.monotonic() < deadline:
            step()
            counts[index] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def drive(port: int, path: str) -> float:
    """Raw keep-alive HTTP: one connection per thread."""

    def connect():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def step() -> None:
            connection.request("POST", path, body=BODY, headers=HEADERS)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"unexpected status {response.status}")

        return step

    return _throughput(connect)


def drive_sdk(url: str) -> float:
    """The real stripe SDK, one client shared by the threads (as workers share one)."""
    client = stripe.StripeClient("sk_test_bench", base_addresses={"api": url}, max_network_retries=0)
    params = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    return _throughput(lambda: lambda: client.v1.payment_intents.create(params=params))


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


def bare_baseline() -> float:
    """The same load against a stdlib server that does nothing, run as its own process too."""
    port = free_port()
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.sandbox_throughput import Bare;"
        f"from http.server import ThreadingHTTPServer as S; s = S(('127.0.0.1', {port}), Bare);"
        "s.daemon_threads = True; s.serve_forever()"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        wait_listening(port)
        return drive(port, "/")
    finally:
        process.terminate()
        process.wait()


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    baseline = bare_baseline()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "stripe_sandbox", "--port", str(port)],  # speaks our pinned API version
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_listening(port)
        raw = drive(port, "/v1/payment_intents")
        sdk = drive_sdk(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait()
    print(f"sandbox throughput, {THREADS} keep-alive clients, {SECONDS:.0f}s each")
    print(f"  bare stdlib HTTP server (baseline)        {baseline:8.0f} req/s")
    print(f"  sandbox create+confirm (raw HTTP)         {raw:8.0f} req/s   ratio to baseline {raw / baseline:.2f}")
    print(f"  sandbox create+confirm (stripe SDK)       {sdk:8.0f} req/s")


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    main()
