"""Procfile helpers that need Django: wait for dependencies, migrate, and greet the developer."""

from __future__ import annotations

import os
import secrets
import time

from config.devstack import paths

WAIT_SECONDS = 180
DEMO_CLIENT_NAME = "demo"


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()


def _pending_migrations() -> list:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


def wait(*, migrated: bool) -> int:
    """Block until the database and Redis answer (and, if asked, every migration is applied)."""
    _setup_django()
    from config.health import check_database, check_redis

    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        problems = [
            name for name, check in (("database", check_database), ("redis", check_redis)) if check() is not None
        ]
        if not problems and migrated:
            problems = ["migrations"] if _pending_migrations() else []
        if not problems:
            return 0
        if time.monotonic() > deadline:
            print(f"[stack] gave up waiting for: {', '.join(problems)}", flush=True)
            return 1
        time.sleep(0.5)


def prepare() -> int:
    """Web entry: wait, migrate, make sure a developer can log in, then print where things are."""
    if wait(migrated=False):
        return 1
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1)
    admin_password = _ensure_admin()
    port = os.environ.get("WEB_PORT") or os.environ.get("PORT") or "8000"
    base = f"http://127.0.0.1:{port}"
    lines = [
        "",
        "=" * 72,
        f"  API           {base}/api/v1/payments",
        f"  API docs      {base}/api/docs/   (schema: {base}/api/schema/)",
        f"  Admin         {base}/admin/   user: admin  password: {admin_password}",
        f"  Health        {base}/healthz   {base}/readyz",
        *_extra_banner_lines(base),
        "  Ctrl-C stops everything.",
        "=" * 72,
        "",
    ]
    print("\n".join(lines), flush=True)
    return 0


def _ensure_admin() -> str:
    """Create the local `admin` superuser once, with a password kept in .data/dev-secrets.json."""
    from django.contrib.auth import get_user_model

    password = paths.dev_secret("ADMIN_PASSWORD", lambda: secrets.token_urlsafe(12))
    user_model = get_user_model()
    if not user_model.objects.filter(username="admin").exists():
        user_model.objects.create_superuser(username="admin", email="admin@localhost", password=password)
    return password


def api_key_ensure_demo() -> str:
    """Return the local demo client's key, creating one when the stored one no longer works.

    Development only: the plaintext is kept in .data/dev-secrets.json so `make run` can print it,
    and the key is made through the same service as any other (`api_key_create`).
    """
    from payments.models import ApiKey
    from payments.services.clients import api_key_create

    key = paths.dev_secret("DEMO_API_KEY", lambda: api_key_create(client_name=DEMO_CLIENT_NAME, key_name="make run"))
    if ApiKey.objects.is_valid(key):
        return key
    key = api_key_create(client_name=DEMO_CLIENT_NAME, key_name="make run")
    paths.dev_secret_set("DEMO_API_KEY", key)
    return key


def _extra_banner_lines(base: str) -> list[str]:
    """Lines that later parts of the stack add to the greeting (the demo API key, the sandbox)."""
    key = api_key_ensure_demo()
    lines = [
        f"  Demo API key  {key}",
        f"  Try it        curl -s -X POST {base}/api/v1/payments -H 'Authorization: Bearer {key}' \\",
        "                  -H 'Idempotency-Key: my-first-order' -H 'Content-Type: application/json' \\",
        """                  -d '{"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa"}'""",
        "  New keys      .venv/bin/python manage.py create_api_key SHOP_NAME",
    ]
    if os.environ.get("STRIPE_API_BASE"):
        lines.append(f"  Stripe API    {os.environ['STRIPE_API_BASE']}")
    return lines
