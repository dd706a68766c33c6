"""
Where an end-to-end payment's CPU goes (`python -m bench.profile_e2e` under `python -m config.devstack exec --`).

Starts the end-to-end row's pipeline (bench/e2e.py: gunicorn, relay, sandbox on the bench database and
broker) with one change: the Celery worker is this module's, `--pool solo`, so the consumer and every
task run in one process that can be measured whole. It drives PROFILE_N (200) automatic-capture
payments through the API after a warm-up, twice, and N no-op tasks (the end-to-end anchor), twice:

1. without the profiler: CPU per payment of every process (psutil, as bench/e2e.py reads it), the
   worker's CPU per task name (`time.process_time` around each task body) and what is left for Celery
   itself (receiving, tracing, acking), tasks per payment, PostgreSQL commits per payment;
2. under cProfile (timer: process CPU), one profile per task name and one for Celery outside the
   tasks: Python calls per payment (independent of the machine's load), and each profile's own time
   and calls split by component (the package a function lives in), plus the calls that matter
   (SQL statements, Redis commands, log records, Stripe SDK requests).

The no-op anchor runs through the same worker, so "Celery per task" is measured beside the payment's.
PROFILE_N (200) payments and no-op tasks per run; PROFILE_TOP (20) rows per function table (0: none);
PROFILE_DUMP (a directory) keeps each profile as `<run>-<task>.prof` for pstats or snakeviz;
PROFILE_RELAY=1 runs the relay under cProfile too (its whole life; its CPU figure then includes the
profiler's), for its calls per payment: batches, claims, publishes, next-due queries.

PostgreSQL's CPU is split by session: the pipeline's processes name theirs (`bench-web`,
`bench-relay`, `bench-worker`, libpq's PGAPPNAME), this one's polls are `bench-driver`.

The floor, each part alone: one create-and-confirm as a bare HTTP POST, through the stripe SDK alone
and through our gateway (at a sandbox of its own, with no webhooks), the rate limit and breaker's
three scripts; PostgreSQL's CPU per transaction for the three shapes of a payment's transactions,
sent raw with psycopg (their rows are marked done after, never left for a relay).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

from celery import shared_task
from celery.signals import task_postrun, task_prerun

N = int(os.environ.get("PROFILE_N", "200"))
TOP = int(os.environ.get("PROFILE_TOP", "20"))
PROFILE_RELAY = (
    os.environ.get("PROFILE_RELAY", "") == "1"
)  # the relay under cProfile too (its CPU figure then includes it)
OUTSIDE = "celery (outside tasks)"
_CONTROL = ("bench.profile_mark", "bench.profile_dump")

# --- the worker side: runs inside the solo worker, loaded with `--include bench.profile_e2e` ---------

_state: dict = {"profiling": False, "profiles": {}, "cpu": defaultdict(float), "count": Counter(), "t0": 0.0}


def _profile(name: str) -> cProfile.Profile:
    profiles = _state["profiles"]
    if name not in profiles:
        profiles[name] = cProfile.Profile(time.process_time)
    return profiles[name]


def _capture(statements: list):
    def wrapper(execute, sql, params, many, context):
        statements.append(" ".join(sql.split()))
        return execute(sql, params, many, context)

    return wrapper


@task_prerun.connect
def _task_started(task=None, **kwargs) -> None:
    captured = _state.setdefault("statements", {})
    if task.name not in _CONTROL and task.name not in captured:  # the first task of each name: its SQL
        from django.db import connection

        captured[task.name] = []
        _state["wrapper"] = connection.execute_wrapper(_capture(captured[task.name]))
        _state["wrapper"].__enter__()
    if _state["profiling"]:
        _profile(OUTSIDE).disable()
        if task.name not in _CONTROL:
            _profile(task.name).enable()
    _state["t0"] = time.process_time()


@task_postrun.connect
def _task_finished(task=None, **kwargs) -> None:
    spent = time.process_time() - _state["t0"]
    if _state.get("wrapper") is not None:
        _state.pop("wrapper").__exit__(None, None, None)
    if task.name not in _CONTROL:
        _state["cpu"][task.name] += spent
        _state["count"][task.name] += 1
    if _state["profiling"]:
        if task.name not in _CONTROL:
            _profile(task.name).disable()
        _profile(OUTSIDE).enable()


@shared_task(name="bench.profile_mark")
def profile_mark_task(*, profile: bool, **kwargs: object) -> None:
    """Start a measured window: counters reset, the profilers on if `profile` (from this task's end)."""
    _state.update(profiling=profile, profiles={}, cpu=defaultdict(float), count=Counter(), statements={})
    _state["window_started"] = time.process_time()


@shared_task(name="bench.profile_dump")
def profile_dump_task(*, label: str, **kwargs: object) -> None:
    """End the window: write the per-task CPU and counts (and the profiles) under PROFILE_E2E_DIR."""
    window = time.process_time() - _state["window_started"]
    directory = Path(os.environ["PROFILE_E2E_DIR"])
    for name, profiler in _state["profiles"].items():
        profiler.disable()
        profiler.dump_stats(directory / f"{label}-{name}.prof")
    _state["profiling"] = False
    summary = {"window_cpu": window, "cpu": dict(_state["cpu"]), "count": dict(_state["count"])}
    summary["profiles"] = sorted(_state["profiles"])
    summary["statements"] = _state.get("statements", {})
    (directory / f"{label}.json.tmp").write_text(json.dumps(summary))
    os.replace(directory / f"{label}.json.tmp", directory / f"{label}.json")


# --- the driver side --------------------------------------------------------------------------------

# Where a function's own time and calls are counted: the first matching fragment of its file's path.
COMPONENTS = [
    ("celery: celery/kombu/billiard", ("/celery/", "/kombu/", "/billiard/", "/vine/", "/amqp/")),
    ("stripe SDK", ("/stripe/",)),
    ("HTTP client (requests/urllib3/http.client)", ("/requests/", "/urllib3/", "/http/client.py", "/httpx", "/h11/")),
    ("Redis client", ("/redis/",)),
    ("psycopg", ("/psycopg/", "/psycopg_pool/")),
    ("Django ORM (django/db)", ("/django/db/",)),
    ("django-fsm", ("/django_fsm",)),
    ("Django other", ("/django/",)),
    ("logging (structlog, logging, config/log)", ("/structlog/", "/logging/", "config/log.py")),
    ("metrics (prometheus_client, config/metrics)", ("/prometheus_client/", "config/metrics")),
    ("json", ("/json/",)),
    ("ours: payments/gateway", ("payments/gateway/",)),
    ("ours: payments (other)", ("/payments/",)),
    ("ours: outbox", ("/outbox/",)),
    ("ours: webhooks", ("/webhooks/",)),
    ("ours: config, bench", ("/config/", "/bench/")),
]
# The calls that say how much work was asked for, whatever the profiler costs: (label, file fragment, name).
MARKERS = [
    ("SQL statements (psycopg Cursor.execute)", "psycopg/cursor.py", "execute"),
    ("transactions committed (Django commit)", "django/db/backends/base/base.py", "commit"),
    ("Redis commands (Redis.execute_command)", "redis/client.py", "execute_command"),
    ("Redis pipelines (Pipeline.execute)", "redis/client.py", "execute"),
    ("Redis Lua scripts (Script.__call__)", "redis/commands/core.py", "__call__"),
    ("Stripe SDK requests (APIRequestor.request)", "stripe/_api_requestor.py", "request"),
    ("StripeObject.construct_from", "stripe/_stripe_object.py", "construct_from"),
    ("log records (logging.Logger.handle)", "logging/__init__.py", "handle"),
    ("structlog events (BoundLoggerLazyProxy / _proxy_to_logger)", "structlog/_base.py", "_proxy_to_logger"),
    ("rate limiter acquire", "limits/rate_limit.py", "acquire"),
    ("circuit breaker allow", "limits/breaker.py", "allow"),
    ("circuit breaker record_outcome", "limits/breaker.py", "record_outcome"),
]


def _worker_command(name: str) -> list[str]:
    """docker-compose's worker with a solo pool (one process), this module's tasks and the no-op anchor."""
    from bench import e2e

    return [*e2e._compose_command("worker"), "--pool", "solo", "-n", name, "--include", "bench.noop,bench.profile_e2e"]


def _component(filename: str) -> str:
    for label, fragments in COMPONENTS:
        if any(fragment in filename for fragment in fragments):
            return label
    return "builtins" if filename == "~" else "stdlib and other"


def _database_cpu(dsn: str) -> dict[str, float]:
    """CPU seconds so far of each live PostgreSQL process, summed by its session's name (bench/e2e.py names
    the pipeline's, `bench-driver` is this process's polls) or, for the server's own, its backend type."""
    import psutil
    import psycopg

    with psycopg.connect(dsn, autocommit=True, application_name="bench-reader") as conn:
        rows = conn.execute(
            "SELECT pid, coalesce(nullif(application_name, ''), backend_type) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid()"
        ).fetchall()
    used: dict[str, float] = defaultdict(float)
    for pid, name in rows:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        used[name] += times.user + times.system
    return used


def _send(task: str, **kwargs) -> None:
    from config.celery import app

    app.send_task(task, kwargs=kwargs)


def _window(directory: Path, label: str, *, profile: bool, run) -> dict:
    """Run `run()` inside a measured window of the worker's; the worker's summary of it."""
    _send("bench.profile_mark", profile=profile)
    result = run()
    _send("bench.profile_dump", label=label)
    path = directory / f"{label}.json"
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker wrote no {path.name}")
        time.sleep(0.1)
    return {**json.loads(path.read_text()), "run": result}


def _print_cpu(label: str, summary: dict, count: int, per: str) -> None:
    print(f"\n== {label}: worker CPU (solo pool, no profiler), ms per {per}")
    in_tasks = sum(summary["cpu"].values())
    for name in sorted(summary["cpu"]):
        tasks = summary["count"][name]
        print(
            f"  {name:<40} {tasks / count:5.2f} tasks/{per}  {summary['cpu'][name] / tasks * 1000:7.3f} ms/task"
            f"  {summary['cpu'][name] / count * 1000:7.3f} ms/{per}"
        )
    tasks = sum(summary["count"].values())
    outside = summary["window_cpu"] - in_tasks
    print(f"  {OUTSIDE:<40} {outside / tasks * 1000:7.3f} ms/task  {outside / count * 1000:7.3f} ms/{per}")
    print(f"  {'worker total':<40} {summary['window_cpu'] / count * 1000:7.3f} ms/{per}")


def _print_profiles(directory: Path, label: str, summary: dict, count: int, per: str) -> None:
    totals: dict[str, pstats.Stats] = {}
    for name in summary["profiles"]:
        totals[name] = pstats.Stats(str(directory / f"{label}-{name}.prof"))
    print(f"\n== {label}: Python calls per {per} under cProfile (timer: process CPU, inflated by the profiler)")
    for name, stats in totals.items():
        tasks = summary["count"].get(name) or sum(summary["count"].values())
        print(f"  {name:<40} {stats.total_calls / count:9.0f} calls/{per}  {stats.total_calls / tasks:9.0f} calls/task")
    print(f"  {'all':<40} {sum(s.total_calls for s in totals.values()) / count:9.0f} calls/{per}")
    for name, stats in totals.items():
        own: dict[str, float] = defaultdict(float)
        calls: dict[str, int] = defaultdict(int)
        marker_calls: dict[str, int] = defaultdict(int)
        for (filename, _, function), (_, ncalls, tottime, _, _) in stats.stats.items():
            component = _component(filename)
            own[component] += tottime
            calls[component] += ncalls
            for marker, fragment, marker_function in MARKERS:
                if filename.endswith(fragment) and function == marker_function:
                    marker_calls[marker] += ncalls
        total = sum(own.values()) or 1.0
        print(f"\n-- {label} / {name}: own CPU and calls by component, per {per}")
        for component in sorted(own, key=own.get, reverse=True):
            print(
                f"  {component:<46} {own[component] / total * 100:5.1f} %  {own[component] / count * 1000:7.3f} ms"
                f"  {calls[component] / count:8.1f} calls"
            )
        for marker, _, _ in MARKERS:
            if marker_calls[marker]:
                print(f"  # {marker:<60} {marker_calls[marker] / count:6.2f} per {per}")
        if os.environ.get("PROFILE_TOP", "20") != "0":
            import io

            out = io.StringIO()
            stats.stream = out
            stats.sort_stats("cumulative").print_stats(TOP)
            text = out.getvalue()
            print(f"-- {label} / {name} by cumulative (totals for {count} {per}s)")
            print(text[text.find("   ncalls") :])


# --- the floor: the irreducible parts, each alone ------------------------------------------------------


def _cpu_per_call(count: int, call) -> tuple[float, float]:
    """(ms of this process's CPU per call without the profiler, Python calls per call under cProfile)."""
    started = time.process_time()
    for number in range(count):
        call(number)
    cpu = (time.process_time() - started) / count * 1000
    profiler = cProfile.Profile()
    profiler.enable()
    for number in range(count, count + 20):
        call(number)
    profiler.disable()
    return cpu, pstats.Stats(profiler).total_calls / 20


@contextmanager
def _quiet_sandbox(log_dir: Path):
    """A sandbox of its own with no webhook endpoint: the floor's intents must not reach our web."""
    from django.conf import settings

    from tests.fixtures.live import Process, free_port

    port = free_port()
    argv = [sys.executable, "-m", "sandbox", "--port", str(port), "--api-version", settings.STRIPE_API_VERSION]
    process = Process("floor-sandbox", argv, dict(os.environ), log_dir, ready="listening on").start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def floor_provider(sandbox_url: str, count: int) -> dict[str, tuple[float, float]]:
    """Client CPU of one create-and-confirm at the sandbox: a bare HTTP/1.1 POST of the same form, the
    stripe SDK alone, our gateway (SDK, logging, metrics), and the rate limit and breaker's scripts."""
    import http.client
    from urllib.parse import urlencode, urlsplit

    import requests
    import stripe
    from django.conf import settings

    from payments.gateway.limits import get_circuit_breaker, get_rate_limiter
    from payments.gateway.stripe import StripeGateway, _MeasuredRequestsClient

    run = time.time_ns()
    key = "sk_test_bench"
    params = {
        "amount": 2000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "capture_method": "automatic",
        "confirm": True,
        "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
    }
    address = urlsplit(sandbox_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)

    def bare(number: int) -> None:
        form = urlencode(
            {
                "amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "capture_method": "automatic",
                "confirm": "true", "automatic_payment_methods[enabled]": "true",
                "automatic_payment_methods[allow_redirects]": "never", "metadata[payment_id]": f"floor-{run}-b{number}",
            }
        )  # fmt: skip
        headers = {
            "Authorization": f"Bearer {key}",
            "Stripe-Version": settings.STRIPE_API_VERSION,
            "Idempotency-Key": f"floor-{run}-b{number}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        connection.request("POST", "/v1/payment_intents", body=form, headers=headers)
        response = connection.getresponse()
        intent = json.loads(response.read())
        if response.status != 200 or intent["status"] != "succeeded":
            raise RuntimeError(f"the sandbox answered {response.status}: {intent}")

    client = stripe.StripeClient(
        key,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": sandbox_url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=(3, 10)),
    )

    def sdk(number: int) -> None:
        intent = client.v1.payment_intents.create(
            params={**params, "metadata": {"payment_id": f"floor-{run}-s{number}"}},
            options={"idempotency_key": f"floor-{run}-s{number}"},
        )
        assert intent.status == "succeeded"

    gateway = StripeGateway(
        api_key=key, api_base=sandbox_url, api_version=settings.STRIPE_API_VERSION, timeout_seconds=10
    )

    def confirm(through: StripeGateway, key_tag: str) -> None:
        intent = through.intent_create_and_confirm(
            payment_id=f"floor-{run}-{key_tag}",
            amount=2000,
            currency="eur",
            payment_method="pm_card_visa",
            capture_method="automatic",
            description="",
            idempotency_key=f"floor-{run}-{key_tag}",
        )
        assert intent.status == "succeeded"

    def ours(number: int) -> None:
        confirm(gateway, f"g{number}")

    # The same gateway on a plain requests.Session, which reads the proxy environment on every request:
    # what reading it once per origin (payments/gateway/stripe.py) saves.
    plain = StripeGateway(
        api_key=key, api_base=sandbox_url, api_version=settings.STRIPE_API_VERSION, timeout_seconds=10
    )
    plain.client = stripe.StripeClient(
        key,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": sandbox_url},
        max_network_retries=0,
        http_client=_MeasuredRequestsClient(timeout=plain.timeout, session=requests.Session()),
    )

    def ours_plain(number: int) -> None:
        confirm(plain, f"p{number}")

    limiter, breaker = get_rate_limiter(), get_circuit_breaker()

    def guards(number: int) -> None:
        limiter.acquire(operation="intent_create")
        breaker.allow()
        breaker.record_outcome(error=None)

    try:
        return {
            "bare HTTP POST (http.client, json)": _cpu_per_call(count, bare),
            "stripe SDK alone (requests transport)": _cpu_per_call(count, sdk),
            "our gateway (SDK, exchange log line, metrics)": _cpu_per_call(count, ours),
            "  the same on a plain requests.Session": _cpu_per_call(count, ours_plain),
            "our gateway again": _cpu_per_call(count, ours),
            "rate limit + breaker (3 Lua scripts)": _cpu_per_call(count, guards),
        }
    finally:
        connection.close()


def floor_database(dsn: str, client_id: int, count: int) -> dict[str, tuple[float, float]]:
    """PostgreSQL's CPU (all its processes) and the client's per transaction, raw psycopg, for the three
    shapes a payment's transactions take: the create's five writes, a phase (lock, update, timeline
    insert) and a single-row autocommit update (an outbox row started or done)."""
    from datetime import UTC, datetime

    import psutil
    import psycopg

    from bench import e2e, writes

    postmaster = psutil.Process(e2e._server_pids(dsn)["postgres"])

    def server_cpu() -> float:
        total = 0.0
        for member in [postmaster, *postmaster.children(recursive=True)]:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total

    run = time.time_ns()
    created, payments, messages = [], [], []
    fingerprint = writes.request_hash(writes.BODY_BYTES)
    with psycopg.connect(dsn) as conn:

        def measured(work) -> tuple[float, float]:
            server, client = server_cpu(), time.process_time()
            for number in range(count):
                work(number)
            return (
                (server_cpu() - server) / count * 1000,
                (time.process_time() - client) / count * 1000,
            )

        def create(number: int) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                response = writes.payment_create_writes(
                    cursor, client_id=client_id, key=f"floor-{run}-{number}", body=writes.BODY,
                    fingerprint=fingerprint, now=datetime.now(UTC),
                )  # fmt: skip
                created.append(json.loads(response)["id"])

        def ids() -> None:  # after the measured creates: the rows the next two shapes touch
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute(
                    "SELECT p.id, m.id FROM payments_payment p JOIN outbox_outboxmessage m"
                    " ON m.payload->>'payment_id' = p.public_id WHERE p.public_id = ANY(%s) ORDER BY p.id",
                    [created],
                )
                for payment_id, message_id in cursor.fetchall():
                    payments.append(payment_id)
                    messages.append(message_id)

        def phase(number: int) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute("SELECT id, status FROM payments_payment WHERE id = %s FOR UPDATE", [payments[number]])
                cursor.execute("UPDATE payments_payment SET updated_at = now() WHERE id = %s", [payments[number]])
                cursor.execute(
                    "INSERT INTO payments_paymentevent (payment_id, refund_id, type, from_status, to_status, source,"
                    " actor, reason, data, idempotency_key, created_at) VALUES (%s, NULL, 'payment.submitted',"
                    " 'PENDING', 'PENDING', 'worker', 'bench', '', '{}', 'floor', now())",
                    [payments[number]],
                )

        def single(number: int) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute(
                    "UPDATE outbox_outboxmessage SET started_at = now() WHERE id = %s AND status = 'DUE'",
                    [messages[number]],
                )

        try:
            result = {"create: five writes, one transaction": measured(create)}
            ids()
            result |= {
                "phase: lock, update, timeline insert, commit": measured(phase),
                "one-row update, commit": measured(single),
            }
        finally:
            conn.rollback()
            if not messages:
                ids()
            with conn.transaction(), conn.cursor() as cursor:  # never left for a later run's relay
                cursor.execute(
                    "UPDATE outbox_outboxmessage SET status = 'DONE', done_at = now() WHERE id = ANY(%s)", [messages]
                )
    return result


def relay_main(output: str) -> None:
    """docker-compose's relay (`manage.py outbox_relay`) under cProfile on process CPU, dumped when it stops."""
    import runpy

    profiler = cProfile.Profile(time.process_time)
    sys.argv = ["manage.py", "outbox_relay"]
    profiler.enable()
    try:
        runpy.run_path("manage.py", run_name="__main__")
    finally:
        profiler.disable()
        profiler.dump_stats(output)


RELAY_FUNCTIONS = [  # (label, file fragment, function): the relay loop's parts, cumulative
    ("batches (outbox_relay_batch)", "outbox/relay.py", "outbox_relay_batch"),
    ("claim statement", "outbox/relay.py", "outbox_relay_claim"),
    ("publish to the broker", "outbox/relay.py", "publish"),
    ("batch metrics", "config/metrics/instruments.py", "outbox_relay_batch_observed"),
    ("next due time (query)", "outbox/relay.py", "outbox_next_due_in"),
    ("waiting for NOTIFY (CPU while waiting)", "outbox/relay.py", "_wait"),
    ("the loop (run)", "outbox/relay.py", "run"),
]


def _print_relay(path: Path, payments: int) -> None:
    stats = pstats.Stats(str(path))
    print(f"\n== relay under cProfile (its whole life: {payments} payments; startup excluded below), per payment")
    for label, fragment, function in RELAY_FUNCTIONS:
        for (filename, _, name), (_, ncalls, _, cumtime, _) in stats.stats.items():
            if filename.endswith(fragment) and name == function:
                print(f"  {label:<44} {ncalls / payments:6.2f} calls  {cumtime / payments * 1000:7.3f} ms (profiled)")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "relay":
        relay_main(sys.argv[2])
        return 0
    from bench import servers

    servers.configure_environment()
    import django

    django.setup()
    from bench import e2e
    from bench.run import Context

    dsn = servers.setup_database()
    client_id, api_key = servers.api_key()
    ctx = Context(dsn=dsn, client_id=client_id, api_key=api_key)
    keep = os.environ.get("PROFILE_DUMP")
    with tempfile.TemporaryDirectory(prefix="profile-e2e-") as scratch:
        directory = Path(keep or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        os.environ["PROFILE_E2E_DIR"] = str(directory)  # the stack's environment is this one's
        relay_profile = directory / "relay.prof"
        relay_command = (
            [sys.executable, "-m", "bench.profile_e2e", "relay", str(relay_profile)] if PROFILE_RELAY else None
        )
        with e2e.pipeline(ctx, worker_command=_worker_command, relay_command=relay_command, named=True) as stack:
            os.environ["PGAPPNAME"] = "bench-driver"  # this process's polls; the stack's environment is set
            e2e.progress(f"profile e2e: warm-up, then {N} payments and {N} no-op tasks, without and with cProfile")
            e2e.payments_run(dsn, stack.web_port, api_key, e2e.WARMUP)
            e2e.noop_run(e2e.WARMUP * 5)
            server_pids = e2e._server_pids(dsn)
            before, counted = e2e._cpu_seconds(stack, server_pids), e2e._database_counters(dsn)
            database_before = _database_cpu(dsn)
            payments = _window(
                directory, "payments", profile=False, run=lambda: e2e.payments_run(dsn, stack.web_port, api_key, N)
            )
            database_after = _database_cpu(dsn)
            per_process = e2e._per_operation(before, e2e._cpu_seconds(stack, server_pids), N)
            database = e2e._counts_per_operation(counted, e2e._database_counters(dsn), N)
            noop = _window(directory, "noop", profile=False, run=lambda: e2e.noop_run(N))
            payments_profiled = _window(
                directory,
                "payments-profiled",
                profile=True,
                run=lambda: e2e.payments_run(dsn, stack.web_port, api_key, N),
            )
            noop_profiled = _window(directory, "noop-profiled", profile=True, run=lambda: e2e.noop_run(N))
        e2e.progress("profile e2e: the floor, each part alone")
        with _quiet_sandbox(directory) as sandbox_url:
            provider = floor_provider(sandbox_url, N)
        database_floor = floor_database(dsn, client_id, N)
        print(f"\n== CPU ms per payment by process (no profiler; {N} payments): ", end="")
        print(", ".join(f"{name} {ms:.2f}" for name, ms in per_process.items()))
        print(f"   PostgreSQL per payment: {database}")
        by_session = {
            name: (spent - database_before.get(name, 0.0)) / N * 1000 for name, spent in database_after.items()
        }
        print("   PostgreSQL CPU ms per payment by session (live processes; the rest is reaped ones): ", end="")
        print(", ".join(f"{name} {ms:.2f}" for name, ms in sorted(by_session.items(), key=lambda item: -item[1])))
        rates = f"payments {payments['run'].rate:.0f}/s, no-op {noop['run'].rate:.0f}/s"
        print(f"   rates (noisy on a shared machine): {rates}")
        _print_cpu("payments", payments, N, "payment")
        _print_cpu("no-op anchor", noop, N, "no-op task")
        _print_profiles(directory, "payments-profiled", payments_profiled, N, "payment")
        _print_profiles(directory, "noop-profiled", noop_profiled, N, "no-op task")
        if PROFILE_RELAY:
            _print_relay(relay_profile, e2e.WARMUP + 2 * N)
        print(f"\n== the floor: one provider call, client side only ({N} calls each)")
        for name, (cpu, calls) in provider.items():
            print(f"  {name:<50} {cpu:7.3f} ms CPU  {calls:7.0f} calls")
        print(f"\n== the floor: PostgreSQL per transaction, raw psycopg ({N} each): server CPU, client CPU")
        for name, (server, client) in database_floor.items():
            print(f"  {name:<50} {server:7.3f} ms  {client:7.3f} ms")
        print("\n== the statements of each task (its first run)")
        for name, statements in payments["statements"].items():
            print(f"  {name}: {len(statements)}")
            for statement in statements:
                print(f"    {statement[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
