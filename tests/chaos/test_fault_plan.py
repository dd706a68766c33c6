"""The seeded fault plan (tests/chaos/faults.py): reproducible, every kind, bounded stalls."""

from collections import Counter

from tests.chaos.faults import HARNESS_KINDS, HARNESS_ROUNDS_MAX, fault_plan


def _plan(payments: int, seed: int = 1):
    return fault_plan(seed=seed, payments=payments, short=False, broker_outage_seconds=30)


def test_the_same_seed_gives_the_same_plan_and_another_seed_another():
    assert _plan(2000).harness == _plan(2000).harness
    assert _plan(2000).harness != _plan(2000, seed=2).harness


def test_every_kind_fires_once_per_500_checkouts_and_postgres_is_shut_down_both_ways():
    kinds = Counter(fault.name for fault in _plan(2000).harness)

    assert kinds == {
        "kill_worker": 4,
        "kill_relay": 4,
        "kill_web_worker": 4,
        "kill_web_master": 4,
        "stop_broker": 4,
        "restart_postgres_fast": 2,
        "restart_postgres_immediate": 2,
    }


def test_a_short_run_still_has_every_kind_and_both_postgres_shutdowns():
    names = {fault.name for fault in _plan(120).harness}

    assert names == (set(HARNESS_KINDS) - {"restart_postgres"}) | {
        "restart_postgres_fast",
        "restart_postgres_immediate",
    }


def test_the_long_run_caps_the_rounds_so_broker_outages_stay_a_bounded_share_of_it():
    plan = _plan(10_000)
    kinds = Counter(fault.kind for fault in plan.harness)

    assert set(kinds.values()) == {HARNESS_ROUNDS_MAX}
    assert sum(f.seconds for f in plan.harness) == 30 * HARNESS_ROUNDS_MAX  # only broker outages last


def test_faults_are_spread_over_the_whole_run_in_order():
    at = [fault.at_payment for fault in _plan(10_000).harness]

    assert at == sorted(at)
    assert at[0] < 10_000 * 0.1 and at[-1] > 10_000 * 0.85 and max(at) < 10_000


def test_a_long_run_keeps_more_checkouts_in_flight_than_the_default_run():
    from tests.chaos.harness import default_concurrency

    assert default_concurrency(2000) == 64 and default_concurrency(120) == 64
    assert default_concurrency(10_000) == 128
