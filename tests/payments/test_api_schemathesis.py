"""
schemathesis against our own OpenAPI schema (issue 12, bad input), through the whole stack.

The API runs under gunicorn with every middleware (request id, CORS, CSP, rate limits, API keys), on
the test database; the schemathesis CLI loads /api/schema/ from it and runs all four phases
(examples, coverage, fuzzing, and the stateful phase that follows the schema's links from a created
payment to reading, capturing, cancelling and refunding it) with every check. Any 5xx, any answer
the schema does not state (status, body or header), any schema-valid request refused, any
schema-invalid one accepted, or any warning (operations that mostly reject what the schema allows,
operations never reached) fails the test. Its output is shown on failure, with a `st replay` id.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from payments import idempotency
from payments.currencies import CURRENCIES
from payments.models import Payment
from payments.models.payment import MAX_AMOUNT
from tests.factories import ApiClientFactory, RefundFactory, api_key_create, payment_with_status
from tests.fixtures.live import BASE_DIR, Process, database_url, free_port

pytestmark = pytest.mark.django_db(transaction=True)  # the server process sees only committed rows

# Generous, yet a couple of minutes on the shared 2-core machine: examples per operation and phase.
MAX_EXAMPLES = 150
SEED = 12

# schemathesis' defaults less 3xx and 5xx: a schema-valid request is answered 2xx, or refused for the
# state it meets (404 no such object, 409 not in a state for it), never for its shape.
ACCEPTED_STATUSES = ["2xx", "401", "403", "404", "409", "429"]

CONFIG = """
seed = {seed}
max-failures = 20
request-timeout = 20
headers = {{ Authorization = "Bearer {key}" }}

# The same seed gives the same run: no failures replayed from an earlier run, no example database.
[cache]
enabled = false

[warnings]
fail-on = true

[generation]
max-examples = {max_examples}
database = "none"

[checks.positive_data_acceptance]
expected-statuses = {accepted}

# The defaults, and 414: gunicorn refuses a request line longer than it reads before any view runs.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429"]

[phases.stateful]
max-steps = 8

# Objects that exist, so reads, captures, cancels and refunds reach their logic and not only 404.
[dictionaries.payments]
values = {payments}

[dictionaries.refunds]
values = {refunds}

[parameters]
"path.payment_id" = {{ dictionary = "payments", probability = 0.5 }}
"path.refund_id" = {{ dictionary = "refunds", probability = 0.5 }}
"""


def _seed_objects(client) -> tuple[list[str], list[str]]:
    """Payments in each state an operation acts on (several: a capture or a cancel uses one up), and a refund.

    Amounts are the largest allowed, so partial captures and refunds leave room for more; captures
    are in a currency without a provider minimum, where every amount up to what is held is capturable.
    """
    no_minimum = next(c.code for c in CURRENCIES.values() if c.minimum_amount is None and c.amount_step == 1)
    payments = [
        *(payment_with_status(Payment.Status.REQUIRES_CAPTURE, client=client, amount=MAX_AMOUNT, currency=no_minimum)
          for _ in range(20)),
        *(payment_with_status(Payment.Status.SUCCEEDED, client=client, amount=MAX_AMOUNT) for _ in range(5)),
        *(payment_with_status(Payment.Status.PENDING, client=client) for _ in range(10)),
    ]  # fmt: skip
    refund = RefundFactory(payment=payment_with_status(Payment.Status.SUCCEEDED, client=client), amount=1000)
    return [payment.public_id for payment in [*payments, refund.payment]], [refund.public_id]


def _toml_list(values: list) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


@pytest.fixture
def api_server(tmp_path):
    """The WSGI app under gunicorn, as deployed, on the test database and a free port."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    argv = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", "2", "--threads", "4", "--timeout", "60",
    ]  # fmt: skip
    server = Process("api", argv, env, tmp_path, ready="Booting worker").start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_schemathesis_finds_no_server_error_and_nothing_the_schema_does_not_state(api_server, tmp_path: Path):
    client = ApiClientFactory(name="schemathesis", rate_limit_per_minute=1_000_000)
    _, key = api_key_create(client=client)
    payments, refunds = _seed_objects(client)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CONFIG.format(
            seed=SEED,
            key=key,
            max_examples=MAX_EXAMPLES,
            accepted=_toml_list(ACCEPTED_STATUSES),
            payments=_toml_list(payments),
            refunds=_toml_list(refunds),
        )
    )

    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"), "--config-file", str(config), "run",
            f"{api_server}/api/schema/", "--checks", "all", "--wait-for-schema", "30",
        ],
        capture_output=True, text=True, cwd=BASE_DIR, timeout=600,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.payments.schemathesis_hooks",
            "IDEMPOTENCY_KEY_PATTERN": idempotency.KEY_PATTERN,
            "IDEMPOTENCY_KEY_MAX_LENGTH": str(idempotency.MAX_KEY_LENGTH),
        },
    )  # fmt: skip

    (tmp_path / "schemathesis.out").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
