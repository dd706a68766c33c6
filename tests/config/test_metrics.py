"""GET /metrics: what every process recorded, added up, and what the database and Redis say at scrape time."""

import os
import subprocess
import sys
import types
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from config import gunicorn
from config.devstack import paths
from config.metrics.collectors import _OUTBOX_STATS, ScrapeTimeCollector
from config.metrics.multiprocess import process_identifier
from outbox.models import OutboxMessage, OutboxStatus

pytestmark = pytest.mark.django_db
LIMITS_MODULE = "payments.gateway.limits"
TOKEN = "metrics-token-for-tests-0123456789"
RECORD_IN_ANOTHER_PROCESS = """
import sys
from config.metrics import outbox_task_outcome_observed, provider_call_observed, rate_limiter_wait_observed

for _ in range(int(sys.argv[1])):
    provider_call_observed(provider="stripe", operation="intent_create_and_confirm", outcome="ok", duration_seconds=0.2)
rate_limiter_wait_observed(provider="stripe", operation="intent_create_and_confirm", seconds=1.5)
outbox_task_outcome_observed(topic="payments.payment.create_requested", outcome="done")
"""


@pytest.fixture
def in_process_metrics(monkeypatch):
    """Scrape this process's own registry, whatever the shell running the suite exported."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


@pytest.fixture
def breaker_hook(monkeypatch):
    """The gateway's limits module as the collector sees it, with breakers in the states a test sets."""
    states = {"stripe": "closed"}
    module = types.ModuleType(LIMITS_MODULE)
    module.provider_breaker_states = lambda: dict(states)
    monkeypatch.setitem(sys.modules, LIMITS_MODULE, module)
    return states


def samples(body: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def scrape_collectors() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ScrapeTimeCollector())
    return registry


def outbox_row(status: str, available_at, **fields) -> OutboxMessage:
    done_at = timezone.now() if status == OutboxStatus.DONE else None
    return OutboxMessage.objects.create(
        topic="tests.metrics", payload={}, status=status, available_at=available_at, done_at=done_at, **fields
    )


def test_metrics_endpoint_exposes_every_metric_name_without_cookies_in_local_dev(
    client, settings, in_process_metrics, breaker_hook
):
    settings.DEBUG, settings.METRICS_TOKEN = True, ""

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    for name, kind in [
        ("provider_calls_total", "counter"),
        ("provider_call_duration_seconds", "histogram"),
        ("provider_rate_limit_waits_total", "counter"),
        ("provider_rate_limit_wait_seconds_total", "counter"),
        ("outbox_task_outcomes_total", "counter"),
        ("outbox_relay_messages_total", "counter"),
        ("webhook_intake_total", "counter"),
        ("webhook_events_processed_total", "counter"),
        ("outbox_messages", "gauge"),
        ("outbox_messages_due", "gauge"),
        ("outbox_oldest_due_age_seconds", "gauge"),
        ("provider_circuit_breaker_state", "gauge"),
        ("metrics_collector_up", "gauge"),
    ]:
        assert f"# TYPE {name} {kind}\n" in body
    assert not response.cookies
    assert "Vary" not in response  # no session was read


def test_metrics_refuses_a_scrape_without_the_configured_bearer_token(client, settings, in_process_metrics):
    settings.DEBUG, settings.METRICS_TOKEN = True, TOKEN  # a token guards it even in local dev

    missing = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN[:-1]}x"})
    other_scheme = client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert [missing.status_code, wrong.status_code, other_scheme.status_code] == [401, 401, 401]
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert b"outbox_messages" not in missing.content
    assert right.status_code == 200
    assert b"outbox_messages" in right.content


def test_metrics_is_absent_outside_debug_when_no_token_is_configured(client, settings):
    settings.DEBUG, settings.METRICS_TOKEN = False, ""

    assert client.get("/metrics").status_code == 404


def test_metrics_answers_only_get(client, settings):
    settings.DEBUG, settings.METRICS_TOKEN = True, ""

    assert client.post("/metrics").status_code == 405


def test_counters_recorded_in_two_processes_add_up_in_one_scrape(client, settings, tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    recorders = [
        subprocess.Popen([sys.executable, "-c", RECORD_IN_ANOTHER_PROCESS, calls], cwd=paths.BASE_DIR, env=env)
        for calls in ("2", "3")
    ]
    assert [recorder.wait(timeout=60) for recorder in recorders] == [0, 0]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    settings.DEBUG, settings.METRICS_TOKEN = False, TOKEN

    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    scraped = samples(response.content.decode())
    call = frozenset({"provider": "stripe", "operation": "intent_create_and_confirm"}.items())
    assert scraped[("provider_calls_total", call | {("outcome", "ok")})] == 5
    assert scraped[("provider_call_duration_seconds_count", call)] == 5
    assert scraped[("provider_call_duration_seconds_bucket", call | {("le", "0.25")})] == 5
    assert scraped[("provider_call_duration_seconds_bucket", call | {("le", "0.1")})] == 0
    assert scraped[("provider_rate_limit_waits_total", call)] == 2
    assert scraped[("provider_rate_limit_wait_seconds_total", call)] == 3.0
    outcome = frozenset({"topic": "payments.payment.create_requested", "outcome": "done"}.items())
    assert scraped[("outbox_task_outcomes_total", outcome)] == 2
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process, none shared


def test_outbox_figures_count_rows_by_state_and_the_age_of_the_oldest_due_row():
    now = timezone.now()
    outbox_row(OutboxStatus.DUE, now - timedelta(seconds=120))
    outbox_row(OutboxStatus.DUE, now - timedelta(seconds=5))
    outbox_row(OutboxStatus.DUE, now + timedelta(minutes=10))  # its next attempt is later
    outbox_row(OutboxStatus.HANDED_OUT, now + timedelta(minutes=5), attempts=1)  # lease still running
    outbox_row(OutboxStatus.DEAD, now - timedelta(hours=1), attempts=12)
    outbox_row(OutboxStatus.DONE, now - timedelta(hours=2), attempts=1)

    registry = scrape_collectors()

    def value(name, **labels):
        return registry.get_sample_value(name, labels)

    assert value("outbox_messages", status="DUE") == 3
    assert value("outbox_messages", status="HANDED_OUT") == 1
    assert value("outbox_messages", status="DEAD") == 1
    assert value("outbox_messages_due", when="now") == 2
    assert value("outbox_messages_due", when="later") == 1
    assert 120 <= value("outbox_oldest_due_age_seconds") < 150
    assert value("metrics_collector_up", source="outbox") == 1


def test_a_handed_out_row_whose_lease_expired_counts_in_the_oldest_due_age():
    now = timezone.now()
    outbox_row(OutboxStatus.HANDED_OUT, now - timedelta(seconds=300), attempts=1)

    registry = scrape_collectors()

    assert registry.get_sample_value("outbox_messages", {"status": "HANDED_OUT"}) == 1
    assert registry.get_sample_value("outbox_messages_due", {"when": "now"}) == 0
    assert 300 <= registry.get_sample_value("outbox_oldest_due_age_seconds") < 330


def test_outbox_figures_read_zero_when_nothing_is_waiting():
    outbox_row(OutboxStatus.DONE, timezone.now(), attempts=1)

    registry = scrape_collectors()

    assert registry.get_sample_value("outbox_messages", {"status": "DUE"}) == 0
    assert registry.get_sample_value("outbox_oldest_due_age_seconds") == 0


def test_outbox_figures_query_reads_only_the_partial_indexes_on_a_big_table_of_done_rows():
    table = OutboxMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (topic, payload, status, created_at, available_at, attempts, done_at,"  # noqa: S608
            " last_error_type, last_error)"
            " SELECT 'tests.done', '{}', 'DONE', now(), now(), 1, now(), '', '' FROM generate_series(1, 20000)"
        )
        outbox_row(OutboxStatus.DUE, timezone.now())
        outbox_row(OutboxStatus.DEAD, timezone.now(), attempts=12)
        cursor.execute(f"ANALYZE {table}")
        cursor.execute("EXPLAIN " + _OUTBOX_STATS, {"now": timezone.now()})
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Seq Scan" not in plan, plan
    assert "outbox_claimable" in plan and "outbox_dead" in plan, plan


def test_breaker_state_is_read_at_scrape_time_one_hot_per_provider(breaker_hook):
    breaker_hook["stripe"] = "open"

    registry = scrape_collectors()

    def state(name):
        return registry.get_sample_value("provider_circuit_breaker_state", {"provider": "stripe", "state": name})

    assert (state("open"), state("closed"), state("half_open")) == (1, 0, 0)


def test_breaker_gauge_is_left_out_while_the_limits_module_does_not_exist(monkeypatch):
    monkeypatch.setitem(sys.modules, LIMITS_MODULE, None)  # importing it raises ModuleNotFoundError

    registry = scrape_collectors()

    assert registry.get_sample_value("provider_circuit_breaker_state", {"provider": "stripe", "state": "open"}) is None
    assert registry.get_sample_value("outbox_messages", {"status": "DUE"}) == 0


def test_a_failing_breaker_hook_marks_its_source_down_and_the_rest_still_answers(breaker_hook, monkeypatch):
    def redis_away():
        raise ConnectionError("redis is away")

    monkeypatch.setattr(sys.modules[LIMITS_MODULE], "provider_breaker_states", redis_away)

    registry = scrape_collectors()

    assert registry.get_sample_value("metrics_collector_up", {"source": "provider_breaker"}) == 0
    assert registry.get_sample_value("metrics_collector_up", {"source": "outbox"}) == 1
    assert registry.get_sample_value("outbox_messages", {"status": "DEAD"}) == 0


def test_gunicorn_child_exit_drops_a_dead_workers_live_gauges_and_keeps_its_counters(tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = subprocess.run(
        [
            sys.executable,
            "-c",
            "from config.metrics import outbox_task_outcome_observed;"  # first: it names the files
            "from prometheus_client import Gauge;"
            "Gauge('tests_in_flight', 'live', multiprocess_mode='livesum').set(1);"
            "outbox_task_outcome_observed(topic='tests.t', outcome='done');"
            "import os; print(os.getpid())",
        ],
        cwd=paths.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pid = int(worker.stdout)
    assert (tmp_path / f"gauge_livesum_{process_identifier(pid)}.db").exists()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    gunicorn.child_exit(server=None, worker=SimpleNamespace(pid=pid))

    assert not (tmp_path / f"gauge_livesum_{process_identifier(pid)}.db").exists()
    assert (tmp_path / f"counter_{process_identifier(pid)}.db").exists()
