"""Liveness and readiness probes: /healthz says the process runs, /readyz that it can do its job."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)
PROBE_TIMEOUT_SECONDS = 2.0
_migrations_seen_applied = False  # once applied, they stay applied for this process's code


def _problem(check: str, exc: Exception) -> str:
    """Log what went wrong in full; answer only its kind (the probe is unauthenticated: no hosts, no ports)."""
    logger.warning("readiness check %s failed: %s: %s", check, type(exc).__name__, exc)
    return f"error: {type(exc).__name__}"


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return _problem("database", exc)
    return None


def check_migrations() -> str | None:
    global _migrations_seen_applied
    if _migrations_seen_applied:
        return None
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return _problem("migrations", exc)
    if pending:
        return f"{len(pending)} migration(s) not applied"
    _migrations_seen_applied = True
    return None


def _ping(name: str, url: str) -> str | None:
    client = redis.Redis.from_url(
        url, socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return _problem(name, exc)
    finally:
        client.close()
    return None


def check_redis() -> str | None:
    return _ping("redis", settings.REDIS_URL)


def check_broker() -> str | None:
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return _ping("broker", settings.CELERY_BROKER_URL)
    from config.celery import app

    try:
        with app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as exc:  # kombu raises transport-specific errors
        return _problem("broker", exc)
    return None


CHECKS = {
    "database": check_database,
    "migrations": check_migrations,
    "redis": check_redis,
    "broker": check_broker,
}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "skipped: database unreachable"
            continue
        problem = check()
        results[name] = "ok" if problem is None else problem
    failed = [name for name, result in results.items() if result != "ok"]
    if failed:
        # The details (hosts, ports, driver messages) go to our log; the unauthenticated answer names
        # only what failed and the error's kind.
        logger.warning("not ready: %s", ", ".join(failed))
        return JsonResponse({"status": "unavailable", "failed": failed, "checks": results}, status=503)
    return JsonResponse({"status": "ok", "checks": results})
