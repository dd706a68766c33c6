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

import psycopg

from bench import servers, writes
from bench.harness import Row, Sample, aba, progress, summarise

N = int(os.environ.get("BENCH_E2E_N", "300"))
CLIENTS = 8  # checkout frontends posting at once
WARMUP = 20  # payments (and five times as many no-op tasks) before the clock starts, per stack
RUN_TIMEOUT_SECONDS = 120 + N / 2  # a run that has not settled by then is a failure, not a figure
NOOP_TASK = "bench.noop"
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


@contextmanager
def pipeline(ctx):
    """The whole pipeline on free ports, on the bench database and broker; stopped by our own handles."""
    import tempfile

    from django.conf import settings

    from tests.chaos.stack import ChaosStack

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
            web_command=lambda port: servers.compose_gunicorn_argv(app="config.wsgi:application", port=port),
            worker_command=lambda name: [*_compose_command("worker"), "-n", name, "--include", "bench.noop"],
            relay_command=_compose_command("relay"),
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


_APPLIED = """
SELECT p.public_id, extract(epoch FROM p.created_at), extract(epoch FROM max(e.processed_at))
  FROM payments_payment p
  JOIN webhooks_webhookevent e ON e.payment_public_id = p.public_id
 WHERE p.public_id = ANY(%s) AND p.status = 'SUCCEEDED'
   AND e.type = 'payment_intent.succeeded' AND e.status = 'PROCESSED'
 GROUP BY p.public_id, p.created_at
"""
_UNSETTLED = """
SELECT (SELECT count(*) FROM outbox_outboxmessage WHERE status IN ('DUE', 'HANDED_OUT') AND available_at <= now()),
       (SELECT count(*) FROM webhooks_webhookevent WHERE status NOT IN ('PROCESSED', 'IGNORED'))
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
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            applied = conn.execute(_APPLIED, [ids]).fetchall()
            if len(applied) == len(ids):
                break
            if time.monotonic() > deadline:
                where = conn.execute(_WHERE_THEY_ARE, [ids]).fetchall()
                raise RuntimeError(f"{len(applied)} of {len(ids)} payments applied after the timeout: {where}")
            time.sleep(0.1)
        _settle(conn)
    latencies = [float(done) - float(created) for _, created, done in applied]
    elapsed = max(float(done) for _, _, done in applied) - began
    return Sample.of(latencies, elapsed)


def _settle(conn) -> None:
    """Wait until nothing due is left (the run's other events and outbox rows), so the next run starts
    on an idle pipeline."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        due, unsettled = conn.execute(_UNSETTLED).fetchone()
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


def _cpu_seconds(stack) -> dict[str, float]:
    """CPU time used so far by each process of the pipeline, its children included (gunicorn's and
    Celery's workers): where a run's time went, robust on a shared machine where wall time is not."""
    import psutil

    used = {}
    for process in (stack.web, stack.relay, *stack.workers, stack.sandbox):
        try:
            root = psutil.Process(process.popen.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        total = 0.0
        for member in tree:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        used[process.name] = total
    return used


def _per_operation(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    return {name: round((after[name] - before.get(name, 0.0)) / count * 1000, 2) for name in after}


def rows(ctx) -> list[Row]:
    progress("end to end: starting web, relay, worker and sandbox (docker-compose's commands)")
    with pipeline(ctx) as stack:
        port = stack.web_port
        progress(f"end to end: warm-up, then {N} payments against {N} no-op Celery tasks, A-B-A")
        payments_run(ctx.dsn, port, ctx.api_key, WARMUP)
        noop_run(WARMUP * 5)
        cpu: dict[str, list[dict[str, float]]] = {"payment": [], "no-op task": []}

        def measured_cpu(kind: str, run):
            before = _cpu_seconds(stack)
            sample = run()
            cpu[kind].append(_per_operation(before, _cpu_seconds(stack), N))
            return sample

        measured = aba(
            lambda: measured_cpu("payment", lambda: payments_run(ctx.dsn, port, ctx.api_key, N)),
            {"Celery no-op task": lambda: measured_cpu("no-op task", lambda: noop_run(N))},
        )
    per_payment = {name: statistics.median(run[name] for run in cpu["payment"]) for name in cpu["payment"][0]}
    per_task = statistics.median(run["worker0"] for run in cpu["no-op task"])
    where = ", ".join(f"{name} {ms:.1f}" for name, ms in per_payment.items())
    progress(f"end to end: CPU ms per payment: {where}; worker CPU ms per no-op task: {per_task:.2f}")
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
    return [row]
