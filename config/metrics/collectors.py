"""
What `/metrics` reads at scrape time instead of counting: figures that live in the database and in
Redis are true whichever process changed them, and a counter kept beside them would drift.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from config.metrics.multiprocess import multiprocess_dir
from outbox.models import OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)
_TABLE = OutboxMessage._meta.db_table
# A scrape must not hold a gunicorn thread (or the database) when the table is locked or huge.
OUTBOX_STATS_TIMEOUT_MS = 2000

# One statement, two arms, each matching one partial index's predicate exactly (outbox/models.py),
# so PostgreSQL reads only the rows in the index: the claimable backlog (`outbox_claimable`) and
# the dead rows (`outbox_dead`). DONE rows, most of a big table (kept OUTBOX_DONE_RETENTION_HOURS),
# are never read; a plain `status IN (…)` over three statuses matches neither index and scans them
# all. `available_at <= now` splits due-now from scheduled-later rows (and HANDED_OUT rows whose
# lease expired, which the relay hands out again) without another pass.
_OUTBOX_STATS = f"""
SELECT status, available_at <= %(now)s AS ready, count(*), min(available_at)
FROM {_TABLE}
WHERE status IN ('{OutboxStatus.DUE}', '{OutboxStatus.HANDED_OUT}')
GROUP BY status, ready
UNION ALL
SELECT status, NULL, count(*), NULL FROM {_TABLE} WHERE status = '{OutboxStatus.DEAD}' GROUP BY status
"""  # noqa: S608 - the table name and statuses are ours, values are parameters

BREAKER_STATES = ("closed", "half_open", "open")
BREAKER_HOOK_MODULE = "payments.gateway.limits"  # optional: the gauge is left out until it exists
BREAKER_HOOK = "provider_breaker_states"  # () -> {provider: "closed" | "half_open" | "open"}


def _outbox_stats() -> Iterator[Metric]:
    """Outbox rows by state and the age of the oldest due row, counted in one cheap query.

    :raises DatabaseError: if the database did not answer in time
    """
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(OUTBOX_STATS_TIMEOUT_MS)])
        cursor.execute(_OUTBOX_STATS, {"now": now})
        rows = cursor.fetchall()
    by_status = dict.fromkeys((OutboxStatus.DUE, OutboxStatus.HANDED_OUT, OutboxStatus.DEAD), 0)
    due = {"now": 0, "later": 0}
    oldest_ready_at = None
    for status, ready, count, min_available_at in rows:
        by_status[status] += count
        if status == OutboxStatus.DUE:
            due["now" if ready else "later"] += count
        if ready and (oldest_ready_at is None or min_available_at < oldest_ready_at):
            oldest_ready_at = min_available_at

    messages = GaugeMetricFamily(
        "outbox_messages",
        "Outbox rows by status (DUE: waiting for the relay; HANDED_OUT: published, the task has not "
        "reported; DEAD: out of attempts, waiting for ops). DONE rows are not counted.",
        labels=["status"],
    )
    for status, count in by_status.items():
        messages.add_metric([str(status)], count)
    due_family = GaugeMetricFamily(
        "outbox_messages_due",
        "DUE outbox rows the relay may hand out now, and those scheduled for a later attempt.",
        labels=["when"],
    )
    for when, count in due.items():
        due_family.add_metric([when], count)
    oldest = GaugeMetricFamily(
        "outbox_oldest_due_age_seconds",
        "Seconds since the oldest claimable row became available (due, or handed out with its lease "
        "expired): how far behind the relay is. 0 when it is caught up.",
        value=0.0 if oldest_ready_at is None else max((now - oldest_ready_at).total_seconds(), 0.0),
    )
    yield from (messages, due_family, oldest)


def _breaker_states() -> Mapping[str, str] | None:
    """Ask the gateway's limits module for each provider's breaker state; None until it offers the hook."""
    try:
        limits = importlib.import_module(BREAKER_HOOK_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != BREAKER_HOOK_MODULE:
            raise  # the module exists and is broken: say so
        return None
    hook = getattr(limits, BREAKER_HOOK, None)
    return None if hook is None else hook()


def _breaker_stats() -> Iterator[Metric]:
    """Each provider's circuit breaker state (read from Redis by the hook), one-hot over its states."""
    states = _breaker_states()
    if states is None:
        return
    family = GaugeMetricFamily(
        "provider_circuit_breaker_state",
        "1 for the state each provider's circuit breaker is in (closed, half_open, open), 0 for the others.",
        labels=["provider", "state"],
    )
    for provider, current in sorted(states.items()):
        for state in dict.fromkeys((*BREAKER_STATES, current)):
            family.add_metric([provider, state], 1.0 if state == current else 0.0)
    yield family


def _reconciliation_stats() -> Iterator[Metric]:
    """Open reconciliation mismatches by kind (the partial index on open rows): what ops still has to settle."""
    from payments.models import ReconciliationMismatch

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(OUTBOX_STATS_TIMEOUT_MS)])
        counts = dict(
            ReconciliationMismatch.objects.filter(resolved_at__isnull=True)
            .order_by()
            .values_list("kind")
            .annotate(count=Count("id"))
        )
    family = GaugeMetricFamily(
        "reconciliation_mismatches_open",
        "Open differences between our payments and refunds and the provider's (the daily report), by kind.",
        labels=["kind"],
    )
    for kind in ReconciliationMismatch.Kind.values:
        family.add_metric([kind], counts.get(kind, 0))
    yield family


class ScrapeTimeCollector:
    """The figures read from PostgreSQL and Redis at each scrape; one that fails leaves the rest standing."""

    sources = {
        "outbox": _outbox_stats,
        "provider_breaker": _breaker_stats,
        "reconciliation": _reconciliation_stats,
    }

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "metrics_collector_up",
            "1 if this scrape could read the source's figures (0: the database or Redis did not answer).",
            labels=["source"],
        )
        for name, source in self.sources.items():
            try:
                families = list(source())  # all or nothing: no half-read source
            except Exception as exc:  # the database or Redis away, or a broken hook: /metrics still answers
                logger.warning("metrics source %s not read: %s", name, type(exc).__name__, exc_info=True)
                up.add_metric([name], 0.0)
                continue
            yield from families
            up.add_metric([name], 1.0)
        yield up


def metrics_registry() -> CollectorRegistry:
    """Build the registry one scrape reads: every process's recorded metrics plus the scrape-time figures."""
    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory is not None:
        MultiProcessCollector(registry, path=directory)  # the files of every process, this one's included
    else:
        registry.register(REGISTRY)  # a registry is a collector too: this process's own metrics
    registry.register(ScrapeTimeCollector())
    return registry
