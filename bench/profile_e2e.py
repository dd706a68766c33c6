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
PROFILE_N (200) payments and no-op tasks per run; PROFILE_TOP (20) rows per function table;
PROFILE_DUMP (a directory) keeps each profile as `e2e-<task>.prof` for pstats or snakeviz.
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
from pathlib import Path

from celery import shared_task
from celery.signals import task_postrun, task_prerun

N = int(os.environ.get("PROFILE_N", "200"))
TOP = int(os.environ.get("PROFILE_TOP", "20"))
OUTSIDE = "celery (outside tasks)"
_CONTROL = ("bench.profile_mark", "bench.profile_dump")

# --- the worker side: runs inside the solo worker, loaded with `--include bench.profile_e2e` ---------

_state: dict = {"profiling": False, "profiles": {}, "cpu": defaultdict(float), "count": Counter(), "t0": 0.0}


def _profile(name: str) -> cProfile.Profile:
    profiles = _state["profiles"]
    if name not in profiles:
        profiles[name] = cProfile.Profile(time.process_time)
    return profiles[name]


@task_prerun.connect
def _task_started(task=None, **kwargs) -> None:
    if _state["profiling"]:
        _profile(OUTSIDE).disable()
        if task.name not in _CONTROL:
            _profile(task.name).enable()
    _state["t0"] = time.process_time()


@task_postrun.connect
def _task_finished(task=None, **kwargs) -> None:
    spent = time.process_time() - _state["t0"]
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
    _state.update(profiling=profile, profiles={}, cpu=defaultdict(float), count=Counter())
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


def main() -> int:
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
        with e2e.pipeline(ctx, worker_command=_worker_command) as stack:
            e2e.progress(f"profile e2e: warm-up, then {N} payments and {N} no-op tasks, without and with cProfile")
            e2e.payments_run(dsn, stack.web_port, api_key, e2e.WARMUP)
            e2e.noop_run(e2e.WARMUP * 5)
            server_pids = e2e._server_pids(dsn)
            before, counted = e2e._cpu_seconds(stack, server_pids), e2e._database_counters(dsn)
            payments = _window(
                directory, "payments", profile=False, run=lambda: e2e.payments_run(dsn, stack.web_port, api_key, N)
            )
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
        print(f"\n== CPU ms per payment by process (no profiler; {N} payments): ", end="")
        print(", ".join(f"{name} {ms:.2f}" for name, ms in per_process.items()))
        print(f"   PostgreSQL per payment: {database}")
        rates = f"payments {payments['run'].rate:.0f}/s, no-op {noop['run'].rate:.0f}/s"
        print(f"   rates (noisy on a shared machine): {rates}")
        _print_cpu("payments", payments, N, "payment")
        _print_cpu("no-op anchor", noop, N, "no-op task")
        _print_profiles(directory, "payments-profiled", payments_profiled, N, "payment")
        _print_profiles(directory, "noop-profiled", noop_profiled, N, "no-op task")
    return 0


if __name__ == "__main__":
    sys.exit(main())
