"""`manage.py stripe_sandbox` is a development command: offered by the local and test settings only."""

import os
import subprocess
import sys

from config.devstack import paths
from config.devstack.management.commands import stripe_sandbox
from config.devstack.stack import PROCFILE
from webhooks.handlers import WEBHOOK_EVENT_TYPES

PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "p" * 50,
    "DATABASE_URL": "postgres://app@db.internal/payments",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "STRIPE_SECRET_KEY": "sk_live_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_123",
}
# What an installation without the checkout's sandbox/ sees: the package cannot be imported.
WITHOUT_SANDBOX = """
import sys

class NoSandbox:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "sandbox":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoSandbox())
from django.core.management import execute_from_command_line

execute_from_command_line(["manage.py", "stripe_sandbox", "--port", "0"])
"""


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=paths.BASE_DIR,
        env={**{key: value for key, value in os.environ.items() if key != "DEBUG"}, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_do_not_offer_the_sandbox_command():
    result = run(["manage.py", "stripe_sandbox", "--port", "0"], **PRODUCTION)

    assert result.returncode == 1
    assert "Unknown command: 'stripe_sandbox'" in result.stderr


def test_the_command_says_clearly_when_the_sandbox_is_not_installed():
    result = run(["-c", WITHOUT_SANDBOX], DJANGO_SETTINGS_MODULE="config.settings.test")

    assert result.returncode == 2
    assert "the Stripe sandbox is a development tool" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_subscribes_the_endpoint_to_the_types_the_backend_handles_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("SANDBOX_WEBHOOK_EVENTS", raising=False)
    parser = stripe_sandbox.Command().create_parser("manage.py", "stripe_sandbox")

    assert parser.parse_args([]).webhook_events == list(WEBHOOK_EVENT_TYPES)
    assert parser.parse_args(["--webhook-events", "*"]).webhook_events == ["*"]
    monkeypatch.setenv("SANDBOX_WEBHOOK_EVENTS", "*")
    assert stripe_sandbox.Command().create_parser("manage.py", "stripe_sandbox").parse_args([]).webhook_events == ["*"]


def test_make_runs_sandbox_is_the_command_with_its_default_webhook_events():
    (entry,) = [line for line in PROCFILE.read_text().splitlines() if line.startswith("sandbox:")]

    assert "manage.py stripe_sandbox" in entry and "--webhook-events" not in entry
