"""
Row: end to end, payments per second from API accept to provider-confirmed (the sandbox) to webhook
applied, against Celery's own rate for a no-op task through the same worker and broker.

The pipeline is the chaos run's stack (tests/chaos/stack.py), started on the benchmark's PostgreSQL
database and Redis, with the production image's command lines from docker-compose.yml: gunicorn as
the create rows serve it, `manage.py outbox_relay`, one `celery worker --concurrency 4` (prefork),
production settings with DEBUG off, and the sandbox posting signed webhooks to our web. The provider
rate limit (Stripe's 25/s in test mode) is lifted as the API's is: its Redis round trips stay.

Ours: CLIENTS threads post BENCH_E2E_N automatic-capture payments through the API; the run ends when
every one is SUCCEEDED in our database and its `payment_intent.succeeded` event is PROCESSED; the
rate is N over first send to last event applied, the latency each payment's created_at to its
event's processed_at. Anchor: the same worker (it loads bench/noop.py with `--include`) consuming N
no-op tasks published to the same broker, from the first send to the last finish.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg

from bench import servers, writes
from bench.harness import Row, Sample, aba, progress, summarise

N = int(os.environ.get("BENCH_E2E_N", "300"))
CLIENTS = 8  # checkout frontends posting at once
WARMUP = 20  # payments (and five times as many no-op tasks) before the clock starts, per stack
RUN_TIMEOUT_SECONDS = 120 + N / 2  # a run that has not settled by then is a failure, not a figure
NOOP_TASK = "bench.noop"
WSGI_APP = "config.wsgi:application"
KEEP = os.environ.get("BENCH_E2E_KEEP", "") == "1"  # keep the processes' logs (their directory is printed)
# Stripe's limit is the provider's business: the sandbox has none, so the limiter is not allowed to be
# the figure. Every call still goes through it (one Redis script per bucket).
UNLIMITED_PROVIDER = "account=1000000/s,default=1000000/s,intent_find=1000000/s"
_runs = itertools.count()


def _compose_command(service: str) -> list[str]:
    """docker-compose's command for `service`, run with this Python."""
    import yaml

    argv = list(yaml.safe_load((servers.ROOT / "docker-compose.yml").read_text())["services"][service]["command"])
    return [sys.executable, *(["-m", argv[0]] if argv[0] != "python" else []), *argv[1:]]


def _worker_command(name: str) -> list[str]:
    return [*_compose_command("worker"), "-n", name, "--include", "bench.noop"]


def _named(role: str, argv: list[str]) -> list[str]:
    """`argv` with its PostgreSQL sessions named `bench-<role>` (libpq's PGAPPNAME), for pg_stat_activity."""
    return ["env", f"PGAPPNAME=bench-{role}", *argv]


@contextmanager
def pipeline(ctx, *, worker_command=_worker_command, relay_command: list[str] | None = None, named: bool = False):
    """The whole pipeline on free ports, on the bench database and broker; stopped by our own handles.
    `worker_command(name)` is the worker's argv and `relay_command` the relay's (bench/profile_e2e.py
    runs profiled ones); `named`
    names each process's PostgreSQL sessions after it (`bench-web`, `bench-relay`, `bench-worker`)."""
    import tempfile

    from django.conf import settings

    from tests.chaos.stack import ChaosStack

    name = _named if named else (lambda role, argv: argv)

    with tempfile.TemporaryDirectory(prefix="bench-e2e-metrics-") as metrics_dir:
        environment = servers.server_environment(client_id=ctx.client_id, metrics_dir=metrics_dir)
        stack = ChaosStack(
            seed=1,
            services={
                "DATABASE_URL": servers.database_url(),
                "REDIS_URL": settings.REDIS_URL,
                "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            },
            run_settings={**environment, "PROVIDER_RATE_LIMITS": UNLIMITED_PROVIDER, "PYTHONUNBUFFERED": "1"},
            web_command=lambda port: name(
                "web", servers.compose_gunicorn_argv(app="config.wsgi:application", port=port)
            ),
            worker_command=lambda worker: name("worker", worker_command(worker)),
            relay_command=name("relay", relay_command or _compose_command("relay")),
            workers=1,
            beat=False,
            webhook_secret=servers.WEBHOOK_SECRET,
            keep=KEEP,
        )
        if KEEP:
            progress(f"end to end: logs in {stack.log_dir}")
        try:
            stack.start()
            yield stack
        except BaseException:
            for process in (stack.web, stack.relay, *stack.workers, stack.sandbox):
                if process.log_path.exists():
                    print(f"--- {process.name} log (tail)\n{process.log()[-2000:]}", flush=True)
            raise
        finally:
            stack.stop()


def _post_payments(port: int, api_key: str, count: int) -> list[str]:
    """Post `count` automatic-capture payments from CLIENTS threads; return their ids."""
    run = f"e2e-{time.time_ns()}-{next(_runs)}"
    numbers = itertools.count()
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while True:
                with lock:
                    number = next(numbers)
                if number >= count:
                    return
                conn.request(
                    "POST",
                    writes.CREATE_PATH,
                    body=writes.BODY_BYTES,
                    headers={
                        "Authorization": f"Bearer {api_key}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": f"{run}-{number}",
                    },
                )
                response = conn.getresponse()
                content = response.read()
                if response.status != 202:
                    raise RuntimeError(f"POST {writes.CREATE_PATH}: {response.status} {content[:300]!r}")
                with lock:
                    ids.append(json.loads(content)["id"])
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"posting payments failed: {errors[0]!r}") from errors[0]
    return ids


# The polls run on the same two cores as the pipeline, ten times a second, while the bench database
# keeps every earlier run's rows: each must be an index lookup (the event's through its partial
# `webhook_event_payment` index, the unsettled ones through `webhook_event_unsettled`), not a scan of
# every event ever stored (~5 ms of PostgreSQL CPU a poll at 16 000 events, growing run after run).
_APPLIED = """
SELECT p.public_id, extract(epoch FROM p.created_at), extract(epoch FROM max(e.processed_at))
  FROM payments_payment p
  JOIN webhooks_webhookevent e ON e.payment_public_id = p.public_id
 WHERE p.public_id = ANY(%(ids)s) AND p.status = 'SUCCEEDED'
   AND e.payment_public_id = ANY(%(ids)s) AND e.payment_public_id <> ''
   AND e.type = 'payment_intent.succeeded' AND e.status = 'PROCESSED'
 GROUP BY p.public_id, p.created_at
"""
_UNSETTLED = """
SELECT (SELECT count(*) FROM outbox_outboxmessage
         WHERE status IN ('DUE', 'HANDED_OUT') AND available_at <= now() AND created_at >= %(since)s),
       (SELECT count(*) FROM webhooks_webhookevent WHERE status = ANY(%(unsettled)s) AND received_at >= %(since)s)
"""
_WHERE_THEY_ARE = """
SELECT p.status, coalesce(e.status, 'no event yet'), count(*)
  FROM payments_payment p
  LEFT JOIN webhooks_webhookevent e ON e.payment_public_id = p.public_id AND e.type = 'payment_intent.succeeded'
 WHERE p.public_id = ANY(%s) GROUP BY 1, 2 ORDER BY 3 DESC
"""


def payments_run(dsn: str, port: int, api_key: str, count: int) -> Sample:
    """Drive `count` payments through the whole pipeline; the rate and accept-to-applied latencies."""
    began = time.time()
    ids = _post_payments(port, api_key, count)
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    applied: list[tuple] = []
    pending = list(ids)  # asked about until applied: a poll reads fewer rows as the run ends
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            found = conn.execute(_APPLIED, {"ids": pending}).fetchall()
            applied.extend(found)
            done = {public_id for public_id, _, _ in found}
            pending = [public_id for public_id in pending if public_id not in done]
            if not pending:
                break
            if time.monotonic() > deadline:
                where = conn.execute(_WHERE_THEY_ARE, [ids]).fetchall()
                raise RuntimeError(f"{len(applied)} of {len(ids)} payments applied after the timeout: {where}")
            time.sleep(0.1)
        _settle(conn, since=began)
    latencies = [float(done) - float(created) for _, created, done in applied]
    elapsed = max(float(done) for _, _, done in applied) - began
    return Sample.of(latencies, elapsed)


def _settle(conn, *, since: float) -> None:
    """Wait until nothing due is left of what the run wrote (its other events and outbox rows), so the next
    run starts on an idle pipeline. Rows from before the run (say, bench.profile_requests' webhook events
    for payments it never made, retried until parked) are not the run's to wait for."""
    from webhooks.models import UNSETTLED

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        due, unsettled = conn.execute(
            _UNSETTLED,
            {"unsettled": [str(status) for status in UNSETTLED], "since": datetime.fromtimestamp(since, tz=UTC)},
        ).fetchone()
        if not due and not unsettled:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the pipeline did not settle: {due} due outbox rows, {unsettled} unsettled webhook events")


def noop_run(count: int) -> Sample:
    """Publish `count` no-op tasks to the broker and wait until the worker has run every one."""
    import redis
    from django.conf import settings

    from config.celery import app

    key = f"bench.noop.{time.time_ns()}.{next(_runs)}"
    store = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    began = time.time()
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task(NOOP_TASK, kwargs={"run": key, "sent_at": time.time()}, producer=producer)
    while store.llen(key) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{store.llen(key)} of {count} no-op tasks ran before the timeout")
        time.sleep(0.01)
    done = [tuple(map(float, item.split())) for item in store.lrange(key, 0, -1)]
    store.delete(key)
    return Sample.of([finished - sent for sent, finished in done], max(finished for _, finished in done) - began)


def _cpu_seconds(stack, servers_pids: dict[str, int]) -> dict[str, float]:
    """CPU time used so far by each process of the pipeline, its children included (gunicorn's and
    Celery's workers), and by the PostgreSQL and Redis servers it shares with the benchmark's own
    polling: where a run's time went, robust on a shared machine where wall time is not."""
    import psutil

    roots = {process.name: process.popen.pid for process in (stack.web, stack.relay, *stack.workers, stack.sandbox)}
    used = {}
    for name, pid in {**roots, **servers_pids}.items():
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        total = 0.0
        for member in tree:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            # A process that ended (a PostgreSQL backend of a closed session) is counted in the
            # children_* times of the parent that reaped it, and nowhere else.
            total += times.user + times.system + times.children_user + times.children_system
        used[name] = total
    return used


def _server_pids(dsn: str) -> dict[str, int]:
    """The PostgreSQL postmaster (the parent of our session's backend) and the Redis server, when they
    run on this machine: their CPU is the pipeline's too (the benchmark's polling adds a little)."""
    import psutil
    import redis
    from django.conf import settings

    pids = {}
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:  # the backend ends with the session: ask while it runs
            pids["postgres"] = psutil.Process(conn.execute("SELECT pg_backend_pid()").fetchone()[0]).ppid()
        pids["redis"] = int(redis.Redis.from_url(settings.REDIS_URL).info("server")["process_id"])
        psutil.Process(pids["redis"])
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
        pass  # a server elsewhere: its CPU is not ours to read
    return pids


# Load-independent counts from PostgreSQL's own statistics for the bench database: sessions opened
# (a new backend each) and transactions committed, per payment.
_DATABASE_COUNTERS = "SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = current_database()"


def _database_counters(dsn: str) -> dict[str, float]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        sessions, commits = conn.execute(_DATABASE_COUNTERS).fetchone()
    return {"pg sessions": float(sessions), "pg commits": float(commits)}


def _per_operation(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    return {name: round((after[name] - before.get(name, 0.0)) / count * 1000, 2) for name in after}


def _counts_per_operation(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / count, 2) for name in after}


def rows(ctx) -> list[Row]:
    progress("end to end: starting web, relay, worker and sandbox (docker-compose's commands)")
    with pipeline(ctx) as stack:
        port = stack.web_port
        progress(f"end to end: warm-up, then {N} payments against {N} no-op Celery tasks, A-B-A")
        payments_run(ctx.dsn, port, ctx.api_key, WARMUP)
        noop_run(WARMUP * 5)
        cpu: dict[str, list[dict[str, float]]] = {"payment": [], "no-op task": []}
        counts: dict[str, list[dict[str, float]]] = {"payment": [], "no-op task": []}
        server_pids = _server_pids(ctx.dsn)

        def measured_cpu(kind: str, run):
            before, counted = _cpu_seconds(stack, server_pids), _database_counters(ctx.dsn)
            sample = run()
            counts[kind].append(_counts_per_operation(counted, _database_counters(ctx.dsn), N))
            cpu[kind].append(_per_operation(before, _cpu_seconds(stack, server_pids), N))
            return sample

        measured = aba(
            lambda: measured_cpu("payment", lambda: payments_run(ctx.dsn, port, ctx.api_key, N)),
            {"Celery no-op task": lambda: measured_cpu("no-op task", lambda: noop_run(N))},
        )
    per_payment = {name: statistics.median(run[name] for run in cpu["payment"]) for name in cpu["payment"][0]}
    per_task = statistics.median(run["worker0"] for run in cpu["no-op task"])
    where = ", ".join(f"{name} {ms:.1f}" for name, ms in per_payment.items())
    database = {name: statistics.median(run[name] for run in counts["payment"]) for name in counts["payment"][0]}
    database_where = ", ".join(f"{name} {number:.1f}" for name, number in database.items())
    progress(
        f"end to end: CPU ms per payment: {where}; worker CPU ms per no-op task: {per_task:.2f}; "
        f"per payment: {database_where}"
    )
    row = summarise(
        "e2e",
        "end to end: POST /api/v1/payments to provider to webhook applied",
        CLIENTS,
        "payments",
        measured,
        note=f"{N} automatic-capture payments; latency from accept to webhook applied; CPU ms per payment: {where}",
    )
    for number, entry in enumerate(row.rounds):  # the JSON keeps each run's split
        entry["cpu_ms_per_payment"] = cpu["payment"][number]
        entry["cpu_ms_per_noop_task"] = cpu["no-op task"][2 * number : 2 * number + 2]
        entry["database_per_payment"] = counts["payment"][number]
    return [row]
