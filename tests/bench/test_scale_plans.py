"""
Issue 11, scale: every list endpoint and every beat job reads through indexes with a million payments.

The tables are filled by bench/scale.py's set-based fill (the one `make bench`'s scale rows use), inside
this module's transaction, then ANALYZEd and rolled back at the end. The size is SCALE_PLAN_PAYMENTS
(250 000 payments with ~750 000 timeline events, ~520 000 outbox rows, ~250 000 webhook events): a
million takes ~80 s to fill on the 2-core machine, past this test's budget, and the planner's choices
depend on the fractions ANALYZE sees, which the fill keeps the same at any size (SCALE_PLAN_PAYMENTS
changes it).

Each statement is captured with CaptureQueriesContext from the real interface (a request to the API,
the admin dashboard, a metrics scrape, the beat job's service with the provider faked at the gateway
seam) and EXPLAINed as sent, with the planner's defaults (no enable_seqscan tricks).

What "index-only" means here (README, Benchmarks): every big table is reached through an index whose
condition, or partial-index predicate, bounds what is read to about what the query returns; never a
Seq Scan of a big table, never a walk of a whole index with a filter, never a Sort or aggregate over
more than such a bounded slice. Counts are Index Only Scans where the index holds every column they
read; the rest fetch only the rows the index found.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from bench import scale
from tests.factories import api_key_create
from tests.fixtures.gateway import FakeGateway, OpenLimiter, RecordingBreaker

pytestmark = pytest.mark.django_db

PAYMENTS = int(os.environ.get("SCALE_PLAN_PAYMENTS", "250000"))
BIG_TABLES = {
    "payments_payment",
    "payments_paymentevent",
    "payments_refund",
    "payments_idempotencykey",
    "payments_jobrun",
    "outbox_outboxmessage",
    "webhooks_webhookevent",
}
# A Sort, aggregate or plain index walk may handle this many rows (the planner's estimate) and no more:
# a page, a batch, the in-flight payments, a day of payments for the daily report.
BOUNDED_ROWS = max(2_000, PAYMENTS // 40)
# A table this small is read whole in a few pages, and the planner rightly does so (a day of
# idempotency keys at a million payments a year).
SMALL_TABLE_ROWS = 10_000
# An index walked whole, for its order, must pass at least this share of what it reads to its LIMIT.
MIN_PASS_FRACTION = 0.01
_LITERALS = re.compile(r"'[^']*'|\b\d+\b")
_SERVER_SIDE_CURSOR = re.compile(r"^DECLARE \S+ NO SCROLL CURSOR (WITH(OUT)? HOLD )?FOR ")  # QuerySet.iterator()


@pytest.fixture(scope="module")
def big_tables(django_db_setup, django_db_blocker):
    """The filled tables, for every test of the module; rolled back when the module is done."""
    with django_db_blocker.unblock(), transaction.atomic():
        with connection.cursor() as cursor:
            added = scale.fill(cursor, payments=PAYMENTS, now=timezone.now())
            # Check the fill's deferred foreign keys once, here: left pending, every test's savepoint
            # would check them all again when pytest-django checks constraints at its teardown.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indpred IS NOT NULL"
            )
            partial = {row[0] for row in cursor.fetchall()}
            cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)", [sorted(BIG_TABLES)])
            sizes = dict(cursor.fetchall())
        yield {"added": added, "partial_indexes": partial, "sizes": sizes}
        transaction.set_rollback(True)


def _walk(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def plan_problems(sql: str, *, partial_indexes: set[str], sizes: dict[str, float]) -> list[str]:
    """EXPLAIN `sql` as sent; return what in its plan is not index-driven (empty: all is)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    problems = []
    for node in _walk(plan):
        kind, table = node["Node Type"], node.get("Relation Name", "")
        if kind == "Seq Scan" and table in BIG_TABLES and sizes[table] >= SMALL_TABLE_ROWS:
            problems.append(f"Seq Scan of {table}")
        # An index walked end to end for its order, filtering every row (under a LIMIT it stops only
        # once enough rows passed the filter): it reads as much as a Seq Scan when few rows pass.
        # Fine when the filter passes enough of the rows it reads, by the planner's own estimate: at
        # least MIN_PASS_FRACTION of them (the big client's newest payments: half the table).
        if kind in ("Index Scan", "Index Only Scan") and table in BIG_TABLES:
            whole = "Index Cond" not in node and node["Index Name"] not in partial_indexes
            if whole and node["Plan Rows"] < MIN_PASS_FRACTION * sizes[table]:
                problems.append(f"{kind} of the whole {node['Index Name']}, filtered: {node.get('Filter', '')}")
        if kind in ("Sort", "Aggregate", "Hash") and node["Plans"][0]["Plan Rows"] > BOUNDED_ROWS:
            problems.append(f"{kind} of {node['Plans'][0]['Plan Rows']} rows")
    return [*problems, "plan:", *_outline(plan)] if problems else []


def _outline(node: dict, depth: int = 0):
    name = node.get("Index Name") or node.get("Relation Name") or ""
    yield f"{'  ' * depth}{node['Node Type']} {name} rows={node['Plan Rows']}"
    for child in node.get("Plans", []):
        yield from _outline(child, depth + 1)


def explained(queries, *, partial_indexes: set[str], sizes: dict[str, float]) -> dict[str, list[str]]:
    """EXPLAIN each distinct statement shape of `queries` that reads a table; return its problems by statement."""
    seen, verdicts = set(), {}
    for query in queries:
        sql = _SERVER_SIDE_CURSOR.sub("", query["sql"].strip())
        head = sql.lstrip("(").split(None, 1)[0].upper()
        if head not in ("SELECT", "UPDATE", "DELETE", "WITH") or "FROM" not in sql.upper():
            continue  # savepoints, set_config, single-row INSERTs: nothing to read through an index
        shape = _LITERALS.sub("?", sql)
        if shape in seen:
            continue
        seen.add(shape)
        verdicts[sql] = plan_problems(sql, partial_indexes=partial_indexes, sizes=sizes)
    return verdicts


def assert_index_driven(captured, big_tables, *, at_least: int) -> None:
    verdicts = explained(captured, partial_indexes=big_tables["partial_indexes"], sizes=big_tables["sizes"])
    reading = [sql for sql in verdicts if any(table in sql for table in BIG_TABLES)]
    assert len(reading) >= at_least, [sql[:200] for sql in verdicts]
    bad = {sql[:400]: problems for sql, problems in verdicts.items() if problems}
    assert not bad, json.dumps(bad, indent=2)


def _api_for(name: str):
    from payments.models import ApiClient

    client = ApiClient.objects.get(name=name)
    _, key = api_key_create(client=client)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api, client


@pytest.fixture
def big_client_api(big_tables):
    """The client with half of all payments."""
    return _api_for(scale.BIG_CLIENT_NAME)


@pytest.fixture
def small_client_api(big_tables):
    """One of the others, with a fortieth of them."""
    return _api_for("scale-2")


def _unix(delta: timedelta) -> int:
    return int((timezone.now() - delta).timestamp())


def test_the_fill_holds_a_realistic_spread_of_every_table(big_tables):
    added = big_tables["added"]

    assert added["payments"] == PAYMENTS
    assert added["timeline events"] > 2 * PAYMENTS
    assert added["outbox rows"] > PAYMENTS and added["webhook events"] > PAYMENTS // 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT status FROM outbox_outboxmessage")
        assert {row[0] for row in cursor.fetchall()} == {"DUE", "HANDED_OUT", "DONE", "DEAD"}
        cursor.execute("SELECT count(DISTINCT status) FROM payments_payment")
        assert cursor.fetchone()[0] == 9


def test_the_plan_check_names_what_reads_a_big_table_whole(big_tables):
    check = {"partial_indexes": big_tables["partial_indexes"], "sizes": big_tables["sizes"]}

    by_amount = plan_problems("SELECT id FROM payments_payment WHERE amount = 4242", **check)
    walked = plan_problems("SELECT id FROM payments_payment WHERE amount = 4242 ORDER BY id LIMIT 10", **check)
    sorted_all = plan_problems("SELECT id FROM payments_paymentevent ORDER BY data->>'amount' LIMIT 10", **check)

    assert "Seq Scan of payments_payment" in by_amount
    assert any(problem.startswith(("Index Scan of the whole", "Seq Scan of")) for problem in walked)
    assert any(problem.startswith(("Sort of", "Seq Scan of")) for problem in sorted_all)


LIST_QUERIES = {
    "first page": lambda middle: {},
    "a hundred": lambda middle: {"limit": 100},
    "succeeded": lambda middle: {"status": "succeeded"},
    "requires capture": lambda middle: {"status": "requires_capture"},
    "pending": lambda middle: {"status": "pending"},
    "processing (three internal statuses)": lambda middle: {"status": "processing"},
    "created in the last day": lambda middle: {"created[gte]": _unix(timedelta(days=1))},
    "created in the last 60 days": lambda middle: {"created[gte]": _unix(timedelta(days=60))},
    "created before 80 days ago": lambda middle: {"created[lte]": _unix(timedelta(days=80))},
    "a window in the middle": lambda middle: {
        "created[gte]": _unix(timedelta(days=46)),
        "created[lte]": _unix(timedelta(days=45)),
    },
    "next page": lambda middle: {"starting_after": middle},
    "next page, failed, since 60 days": lambda middle: {
        "starting_after": middle,
        "status": "failed",
        "created[gte]": _unix(timedelta(days=60)),
    },
}


@pytest.mark.parametrize("case", LIST_QUERIES)
def test_the_payment_list_reads_through_an_index_on_a_big_table(big_tables, big_client_api, case):
    api, client = big_client_api
    middle = client.payments.order_by("-id").values_list("public_id", flat=True)[PAYMENTS // 4]

    with CaptureQueriesContext(connection) as captured:
        response = api.get("/api/v1/payments", LIST_QUERIES[case](middle))

    assert response.status_code == 200, response.content
    assert_index_driven(captured, big_tables, at_least=1)


@pytest.mark.parametrize("case", ["first page", "succeeded", "requires capture", "created before 80 days ago"])
def test_a_small_clients_payment_list_reads_through_an_index_on_a_big_table(big_tables, small_client_api, case):
    api, client = small_client_api
    middle = client.payments.order_by("-id").values_list("public_id", flat=True)[10]

    with CaptureQueriesContext(connection) as captured:
        response = api.get("/api/v1/payments", LIST_QUERIES[case](middle))

    assert response.status_code == 200, response.content
    assert response.json()["data"]
    assert_index_driven(captured, big_tables, at_least=1)


def test_a_payment_and_a_refund_are_read_through_their_unique_indexes(big_tables, big_client_api):
    from payments.models import Refund

    api, client = big_client_api
    refund = Refund.objects.filter(payment__client=client).order_by("id").first()

    with CaptureQueriesContext(connection) as captured:
        assert api.get(f"/api/v1/payments/{refund.payment.public_id}").status_code == 200
        assert api.get(f"/api/v1/refunds/{refund.public_id}").status_code == 200

    assert_index_driven(captured, big_tables, at_least=2)


class EchoGateway(FakeGateway):
    """The provider still processing every intent it is asked for by id, and knowing no refund."""

    def intent_retrieve(self, *, intent_id: str, **kwargs):
        from tests.fixtures.gateway import intent

        return intent("processing", id=intent_id)

    def refund_retrieve(self, **kwargs):
        from payments.gateway.base import ProviderInvalidRequest

        raise ProviderInvalidRequest("No such refund", status=404)


def _gateway() -> FakeGateway:
    from payments.gateway.base import EventPage, IntentPage, RefundPage

    return (
        EchoGateway()
        .script("intent_find", None)
        .script("intents_list_created", IntentPage(intents=[], has_more=False))
        .script("refunds_list_created", RefundPage(refunds=[], has_more=False))
        .script("events_list", EventPage(events=[], has_more=False))
    )


def _janitor(now):
    from payments.services.janitor import janitor_run

    janitor_run(now=now, gateway=_gateway(), guards=(OpenLimiter(), RecordingBreaker()))


def _authorization_expiry(now):
    from payments.services.authorizations import authorizations_expiring_settle

    authorizations_expiring_settle(now=now)


def _reconciliation_report(now):
    from payments.services.reconciliation import reconciliation_report_run

    # One day of the report's RECONCILIATION_REPORT_DAYS: the same statements, half the rows.
    reconciliation_report_run(
        day=(now - timedelta(days=1)).date(), now=now, gateway=_gateway(), guards=(OpenLimiter(), RecordingBreaker())
    )


def _webhook_backfill(now):
    from webhooks.reconciliation import webhook_events_backfill

    webhook_events_backfill(now=now, gateway=_gateway(), guards=(OpenLimiter(), RecordingBreaker()))


def _idempotency_key_purge(now):
    from payments.idempotency import idempotency_key_purge

    idempotency_key_purge(now=now, max_batches=2)


def _outbox_purge(now):
    from outbox.services import outbox_message_purge_done

    outbox_message_purge_done(now=now, max_batches=2)


def _job_run_purge(now):
    from payments.services.jobs import job_run_purge

    job_run_purge(now=now, retention=timedelta(days=14), max_batches=2)


def _relay_claim(now):
    from outbox.relay import outbox_relay_claim

    outbox_relay_claim(now=now, limit=200)


def _metrics_scrape(now):
    from config.metrics.collectors import ScrapeTimeCollector

    list(ScrapeTimeCollector().collect())


# Every entry of CELERY_BEAT_SCHEDULE, the relay's claim, and the figures ops read at every scrape.
BEAT_JOBS = {
    "payments.janitor": (_janitor, 2),
    "payments.authorization_expiry": (_authorization_expiry, 1),
    "payments.reconciliation_report": (_reconciliation_report, 2),
    "webhooks.webhook_events_backfill": (_webhook_backfill, 0),
    "payments.idempotency_key_purge": (_idempotency_key_purge, 2),
    "outbox.outbox_message_purge_done": (_outbox_purge, 2),
    "payments.job_run_purge": (_job_run_purge, 2),
    "outbox relay claim": (_relay_claim, 1),
    "metrics scrape": (_metrics_scrape, 1),
}


def test_every_beat_job_of_the_schedule_is_explained_here(settings):
    assert set(settings.CELERY_BEAT_SCHEDULE) <= set(BEAT_JOBS)


@pytest.mark.parametrize("job", BEAT_JOBS)
def test_the_beat_job_reads_through_indexes_on_a_big_table(big_tables, job):
    run, at_least = BEAT_JOBS[job]

    with CaptureQueriesContext(connection) as captured:
        run(timezone.now())

    assert_index_driven(captured, big_tables, at_least=at_least)


def test_the_ops_dashboard_reads_through_indexes_on_a_big_table(big_tables, admin_client):
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get("/admin/dashboard/")

    assert response.status_code == 200
    assert_index_driven(captured, big_tables, at_least=5)
