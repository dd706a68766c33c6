"""The chaos stack (also `make chaos` and bench/e2e.py) registers its webhook endpoint as production's is."""

from tests.chaos.stack import ChaosStack
from webhooks.handlers import WEBHOOK_EVENT_TYPES


def test_the_chaos_stacks_sandbox_subscribes_its_endpoint_to_the_handled_types_only(tmp_path):
    services = {
        "DATABASE_URL": "postgres://unused",
        "REDIS_URL": "redis://unused",
        "CELERY_BROKER_URL": "redis://unused",
    }
    stack = ChaosStack(seed=1, data_dir=tmp_path, services=services)  # built only: nothing is started

    argv = stack.sandbox.argv
    assert argv.count("--webhook-events") == 1
    assert argv[argv.index("--webhook-events") + 1].split(",") == list(WEBHOOK_EVENT_TYPES)
