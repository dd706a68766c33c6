"""
The short chaos run of `make test`: 120 seeded checkouts through a whole stack of their own while the
sandbox fails about a fifth of provider calls and mangles webhooks, and the harness kills a Celery
worker, the relay, a web worker and the web master, stops the broker and restarts PostgreSQL (a fast
and an immediate shutdown); the checkouts carry personal data that must not reach any of our logs.
No database mark: the run brings its own PostgreSQL and judges it directly; the suite's test database
is never touched.
"""

from tests.chaos.harness import Options, chaos_run

SHORT = Options(
    payments=120, seed=12, short=True, concurrency=32, broker_outage_seconds=4, converge_timeout=90, wait_seconds=30
)


def test_a_short_chaos_run_loses_nothing_charges_nothing_twice_and_agrees_with_the_provider():
    report = chaos_run(SHORT)

    assert report.ok, report.render()
    assert sum(report.sandbox_faults.values()) > 0 and set(report.harness_faults) == {
        "kill_worker",
        "kill_relay",
        "kill_web_worker",
        "kill_web_master",
        "stop_broker",
        "restart_postgres_fast",
        "restart_postgres_immediate",
    }, report.render()
    assert report.verdict.figures["log lines scanned"] > 0, report.render()
