import json
import os
import subprocess
import sys

import pytest
import stripe

from config.devstack import paths
from config.settings.base import database

GOOD = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "prod-like-K8v#Qz2!mW7@rT4$yN1^bX6&cJ9*pL3(hF5)dS0-gA",  # as random as check --deploy wants
    "DATABASE_URL": "postgres://app@db.internal/payments",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "STRIPE_SECRET_KEY": "sk_live_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_123",
}


def run_in_production(*args: str, **overrides: str | None) -> subprocess.CompletedProcess:
    """Run `python *args` with production settings, GOOD's variables and `overrides` (None unsets one)."""
    env = {key: value for key, value in os.environ.items() if key not in GOOD and key != "DEBUG"}
    env.update({key: value for key, value in {**GOOD, **overrides}.items() if value is not None})
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=paths.BASE_DIR, capture_output=True, text=True, timeout=60
    )


def production_settings(*names: str, **overrides: str | None) -> dict:
    """Return the named settings as production computes them (JSON-able values only)."""
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {list(names)!r}}}))"
    )
    result = run_in_production("-c", code, **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def load_production_settings(**overrides: str | None) -> subprocess.CompletedProcess:
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    return run_in_production("-c", code, **overrides)


def test_production_settings_load_with_every_required_value():
    result = load_production_settings()

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be set"),
        ({"DEBUG": "true"}, "DEBUG must be off"),
        ({"DATABASE_URL": None}, "DATABASE_URL"),
        ({"REDIS_URL": None}, "REDIS_URL"),
        ({"STRIPE_SECRET_KEY": None}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_WEBHOOK_SECRET": " , "}, "STRIPE_WEBHOOK_SECRET must list at least one"),
        ({"STRIPE_SECRET_KEY": "sk_test_abc"}, "Stripe test key"),
    ],
)
def test_production_refuses_to_start_with_an_unsafe_or_missing_value(overrides, complaint):
    result = load_production_settings(**overrides)

    assert result.returncode != 0
    assert complaint in result.stderr


def test_production_accepts_a_test_key_only_when_allowed_on_purpose():
    result = load_production_settings(STRIPE_SECRET_KEY="sk_test_abc", STRIPE_ALLOW_TEST_KEYS="true")

    assert result.returncode == 0, result.stderr


def test_base_settings_pin_the_stripe_api_version_and_keep_requests_non_atomic(settings):
    assert stripe.api_version == settings.STRIPE_API_VERSION  # the installed SDK's own pin; our code never sets it
    assert settings.DATABASES["default"]["ATOMIC_REQUESTS"] is False
    assert settings.DEFAULT_AUTO_FIELD == "django.db.models.BigAutoField"
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_production_keeps_the_database_options_every_settings_module_shares():
    shared = database(GOOD["DATABASE_URL"])

    production = production_settings("DATABASES")["DATABASES"]["default"]

    assert {key: production[key] for key in shared} == json.loads(json.dumps(shared))  # Django adds defaults
    assert production["OPTIONS"]["options"] == "-c idle_in_transaction_session_timeout=60000"
    assert (production["ATOMIC_REQUESTS"], production["CONN_HEALTH_CHECKS"]) == (False, False)  # config/db.py checks


def test_production_reads_the_idle_in_transaction_timeout_from_the_environment():
    production = production_settings("DATABASES", DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS="5000")["DATABASES"]

    assert production["default"]["OPTIONS"]["options"] == "-c idle_in_transaction_session_timeout=5000"


@pytest.mark.parametrize("preload", ["false", "true"])
def test_check_deploy_reports_nothing_with_production_settings(preload):
    result = run_in_production("manage.py", "check", "--deploy", "--fail-level", "WARNING", SECURE_HSTS_PRELOAD=preload)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_pins_https_for_a_year_and_ends_admin_sessions_within_hours():
    production = production_settings(
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SESSION_COOKIE_AGE",
        "SESSION_EXPIRE_AT_BROWSER_CLOSE",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
    )

    assert production["SECURE_HSTS_SECONDS"] >= 365 * 24 * 60 * 60
    assert production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production["SECURE_HSTS_PRELOAD"] is False  # the domain owner's decision: SECURE_HSTS_PRELOAD
    assert production["SESSION_COOKIE_AGE"] <= 12 * 60 * 60
    assert production["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    assert production["SESSION_COOKIE_SECURE"] is production["CSRF_COOKIE_SECURE"] is True
