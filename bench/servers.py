"""
What the benchmarks run against: the bench database, an API key, and gunicorn servers of our own.

The database is `bench_payments` (BENCH_DATABASE) on the dev stack's PostgreSQL, migrated like the
test database and never the suite's; Celery publishes go to Redis database BENCH_REDIS_DB of the same
Redis. Servers are started with the command line docker-compose gives the `web` service (workers,
threads, config/gunicorn.py), production settings with DEBUG off, on free loopback ports, and are
stopped by signalling their own pid only.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("BENCH_DATABASE", "bench_payments")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "9"))  # the dev stack's Redis, a database of the benchmark's own
WEBHOOK_SECRET = f"whsec_{secrets.token_hex(16)}"  # servers verify deliveries with it; the bench signs with it
UNLIMITED_PER_MINUTE = 1_000_000_000  # the limiter's round trip stays; its refusal must not end a benchmark


def configure_environment() -> None:
    """Point this process at the bench database and Redis database (before django.setup())."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    redis = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:16379/0")
    os.environ["REDIS_URL"] = os.environ["CELERY_BROKER_URL"] = urlunsplit(redis._replace(path=f"/{REDIS_DB}"))


def setup_database() -> str:
    """Create (or keep) and migrate the bench database, switch Django's connection to it; return its DSN."""
    from django.db import connection
    from django.test.utils import setup_test_environment

    connection.settings_dict["TEST"]["NAME"] = DATABASE  # never the suite's reused test database
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    params = connection.get_connection_params()
    return " ".join(f"{k}={v}" for k, v in params.items() if k in ("host", "port", "dbname", "user", "password") and v)


def database_url() -> str:
    """DATABASE_URL (the dev stack's, or yours) with the bench database's name in it."""
    from django.db import connection

    url = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(url._replace(path=f"/{connection.settings_dict['NAME']}"))


def api_key() -> tuple[int, str]:
    """A fresh API client (no rate-limit refusals) and its key: (client id, secret)."""
    from payments.models import ApiClient, ApiKey

    client = ApiClient.objects.create(name=f"bench-{time.time_ns()}", rate_limit_per_minute=UNLIMITED_PER_MINUTE)
    _, key = ApiKey.objects.create_key(name="bench", client=client)
    return client.pk, key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def compose_gunicorn_argv(*, app: str, port: int) -> list[str]:
    """docker-compose's `web` command, with our WSGI app and a loopback port: one source for the settings."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    argv = list(compose["services"]["web"]["command"])
    assert argv[0] == "gunicorn", argv
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    argv[1] = app
    return [sys.executable, "-m", "gunicorn", *argv[1:]]


def server_environment(*, client_id: int, metrics_dir: str) -> dict[str, str]:
    """Production settings as compose passes them, on the bench database; test keys allowed on purpose."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",  # no TLS proxy in front on loopback
        "DATABASE_URL": database_url(),
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_ALLOW_TEST_KEYS": "true",
        "LOG_LEVEL": "INFO",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "API_RATE_LIMIT_PER_MINUTE": str(UNLIMITED_PER_MINUTE),
        "BENCH_CLIENT_ID": str(client_id),
    }


def _warm(port: int, *, timeout: float = 60) -> None:
    """Wait until the server answers, then keep every worker thread busy for a second (imports, connections)."""
    import http.client

    from bench.harness import SECONDS, closed_loop

    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/api/v1/payments?limit=1")
            conn.getresponse().read()
            conn.close()
            break
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)

    def make_step(index: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def step() -> None:
            conn.request("GET", "/api/v1/payments?limit=1")
            conn.getresponse().read()

        return step

    closed_loop(make_step, clients=16, seconds=min(1.0, SECONDS))


@contextmanager
def gunicorn(*, app: str, client_id: int, name: str):
    """Serve `app` with compose's gunicorn settings on a free port; yield the port; stop our own pid."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as scratch:
        metrics_dir = Path(scratch, "metrics")
        metrics_dir.mkdir()
        log_path = Path(scratch, "server.log")
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                compose_gunicorn_argv(app=app, port=port),
                cwd=ROOT,
                env=server_environment(client_id=client_id, metrics_dir=str(metrics_dir)),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_listening(port)
            _warm(port)
            yield port
        except BaseException:
            tail = log_path.read_text(errors="replace")[-3000:]
            print(f"--- {name} server log (tail)\n{tail}", flush=True)
            raise
        finally:
            process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop; only the pid we started
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
