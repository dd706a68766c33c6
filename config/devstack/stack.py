"""`make run` and `make test`: bring the embedded servers up around the app, and take them down."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from config import celery
from config.devstack import paths, postgres, redis
from config.devstack.locks import OwnerLock

PROCFILE = paths.BASE_DIR / "config" / "Procfile"
SANDBOX_SECRET_KEY = "sk_test_sandbox"  # noqa: S105 - the sandbox accepts any sk_test_ key; it guards nothing
DEFAULT_WEB_PORT = 8000
DEFAULT_SANDBOX_PORT = 12111  # the port stripe-mock uses, so tools that know one find the other


def _say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def _forward_signals(process: subprocess.Popen, *, forward_sigint: bool) -> None:
    """Pass SIGTERM and SIGHUP (as SIGTERM), and for honcho SIGINT, on to the child; then wait for it.

    Honcho runs in a session of its own, so Ctrl-C, a closed terminal or a supervisor's signal all
    reach it through here, once; were it left to die of the terminal's SIGHUP, its children would
    outlive it. `exec` (pytest) shares the terminal's process group, so Ctrl-C reaches it directly.
    """
    signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signal.SIGTERM))
    signal.signal(signal.SIGHUP, lambda signum, frame: process.send_signal(signal.SIGTERM))
    if forward_sigint:
        signal.signal(signal.SIGINT, lambda signum, frame: process.send_signal(signal.SIGINT))
    else:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run() -> int:
    """Bring the whole system up under honcho and stop everything on Ctrl-C."""
    stack_lock = OwnerLock(paths.RUN_DIR / "stack.lock")
    if not stack_lock.acquire():
        _say(
            f"`make run` is already up (pid {stack_lock.holder_pid()}) for {paths.BASE_DIR}. "
            "Use that one, or stop it with Ctrl-C in its terminal first. Nothing was changed."
        )
        return 1
    try:
        env, names = _stack_environment()
    except RuntimeError as exc:
        stack_lock.release()
        _say(f"cannot start: {exc}")
        return 1
    _say(f"starting {', '.join(names)}; Ctrl-C stops everything")
    process = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", str(PROCFILE), "-d", str(paths.BASE_DIR), "start", *names],
        env=env,
        start_new_session=True,
    )
    _forward_signals(process, forward_sigint=True)
    returncode = process.wait()
    _reap_leftovers()
    stack_lock.release()
    _say("stopped; nothing left running")
    return 0 if returncode in (0, 130, -signal.SIGINT, -signal.SIGTERM, 143) else returncode


def _port_is_free_or_fail(name: str, port: int) -> None:
    if not redis.port_is_free(port):
        raise RuntimeError(f"port {port} for {name} is taken by another process; set {name} to a free port")


def _stack_environment() -> tuple[dict[str, str], list[str]]:
    """Return the environment and the Procfile entries for this machine's configuration.

    :raises RuntimeError: if a port the stack needs is taken
    """
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(_fresh_metrics_dir(env.get("PROMETHEUS_MULTIPROC_DIR")))
    names = []
    if not env.get("DATABASE_URL"):
        names.append("postgres")
        env["DATABASE_URL"] = paths.local_database_url()
    if not env.get("REDIS_URL"):
        names.append("redis")
        port = redis.choose_port()
        env["EMBEDDED_REDIS_PORT"] = str(port)
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    web_port = int(env.get("PORT") or DEFAULT_WEB_PORT)
    _port_is_free_or_fail("PORT", web_port)
    env["WEB_PORT"] = str(web_port)
    if not env.get("STRIPE_API_BASE") and not env.get("STRIPE_SECRET_KEY"):
        names.append("sandbox")
        sandbox_port = int(env.get("SANDBOX_PORT") or DEFAULT_SANDBOX_PORT)
        _port_is_free_or_fail("SANDBOX_PORT", sandbox_port)
        env["SANDBOX_PORT"] = str(sandbox_port)
        env["STRIPE_API_BASE"] = f"http://127.0.0.1:{sandbox_port}"
        env["STRIPE_SECRET_KEY"] = SANDBOX_SECRET_KEY
        env.setdefault(
            "STRIPE_WEBHOOK_SECRET",
            paths.dev_secret("STRIPE_WEBHOOK_SECRET", lambda: f"whsec_{secrets.token_hex(24)}"),
        )
        env["SANDBOX_WEBHOOK_URL"] = f"http://127.0.0.1:{web_port}/webhooks/stripe"
        # A rotation lists several; the sandbox signs with the first, as the provider would with the newest.
        env["SANDBOX_WEBHOOK_SECRET"] = env["STRIPE_WEBHOOK_SECRET"].split(",")[0].strip()
    names += ["web", "worker", "beat", "relay"]
    if "sandbox" in names:
        names.append("demo")  # a demo checkout only against the sandbox, never a real provider
    return env, names


def _fresh_metrics_dir(configured: str | None) -> Path:
    """Return the directory web, worker and relay share their metrics through, emptied of metric files.

    A previous run's files would be added to this run's counters. Runs under the stack lock, so a
    running stack's files are never removed; only prometheus_client's `*.db` files are.
    """
    directory = Path(configured or paths.DATA_DIR / "prometheus")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory


def _reap_leftovers() -> None:
    """Stop an embedded server whose wrapper was killed before it could stop it."""
    lock = postgres.owner_lock()
    if lock.acquire(wait_seconds=5):
        postgres._stop_orphan(postgres._run_as())
        lock.release()
    redis_lock = OwnerLock(paths.RUN_DIR / "redis.lock")
    if redis_lock.acquire(wait_seconds=5):
        redis._stop_orphan()
        redis_lock.release()


def _serve(server, name: str) -> int:
    """Keep a started server in the foreground until honcho (or Ctrl-C) asks us to stop."""
    stopping = False

    def _stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stopping and server.process.poll() is None:
        time.sleep(0.2)
    code = server.stop()
    _say(f"{name} stopped")
    return 0 if stopping else (code or 1)


def serve_postgres() -> int:
    """Procfile entry: the embedded PostgreSQL in the foreground, logs on stdout."""
    server = postgres.start(log=sys.stdout, wait_lock_seconds=10)
    if server is None:
        _say("the embedded PostgreSQL is owned by another process (a test run?); stop it and retry")
        return 1
    _say(f"postgres ready at {paths.local_database_url()}")
    return _serve(server, "postgres")


def serve_redis() -> int:
    """Procfile entry: the embedded Redis in the foreground."""
    server = redis.start(log=sys.stdout, wait_lock_seconds=10)
    if server is None:
        _say("the embedded Redis is owned by another process (a test run?); stop it and retry")
        return 1
    _say(f"redis ready at redis://127.0.0.1:{server.port}/0")
    return _serve(server, "redis")


def exec_with_services(command: list[str]) -> int:
    """Run `command` with PostgreSQL and Redis reachable, starting embedded ones when not configured.

    Servers this call started are stopped afterwards; ones already up (a `make run`) are reused.
    """
    env = dict(os.environ)
    if not celery.SETTINGS_FROM_ENVIRONMENT:
        env.pop("DJANGO_SETTINGS_MODULE", None)  # importing config set it; the command picks its own
    started = []
    paths.RUN_DIR.mkdir(parents=True, exist_ok=True)
    try:
        if not env.get("DATABASE_URL"):
            with open(paths.DATA_DIR / "postgres.log", "ab") as log:
                server = postgres.start(fast=True, log=log)
            if server is None:
                postgres.wait_ready(timeout=60)
            else:
                started.append(server)
            env["DATABASE_URL"] = paths.local_database_url()
        if not env.get("REDIS_URL"):
            with open(paths.DATA_DIR / "redis.log", "ab") as log:
                server = redis.start(log=log)
            if server is None:
                _wait_redis(timeout=30)
            else:
                started.append(server)
            env["REDIS_URL"] = paths.local_redis_url()
        process = subprocess.Popen(command, env=env)
        _forward_signals(process, forward_sigint=False)
        return process.wait()
    finally:
        for server in reversed(started):
            server.stop()


def _wait_redis(*, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not redis.is_ready():
        if time.monotonic() > deadline:
            raise RuntimeError("the embedded Redis owned by another process did not answer")
        time.sleep(0.1)
