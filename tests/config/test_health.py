import pytest

from config import health

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_touching_dependencies(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_ok_when_database_redis_broker_and_migrations_are_fine(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok", "broker": "ok"}


def test_readyz_answers_503_naming_redis_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["redis"]
    assert body["checks"]["database"] == "ok"


def test_readyz_answers_503_naming_the_broker_when_only_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]


def test_readyz_answers_503_naming_the_database_when_it_is_unreachable(client, monkeypatch):
    monkeypatch.setattr(health, "check_database", lambda: "OperationalError: connection refused")
    monkeypatch.setitem(health.CHECKS, "database", health.check_database)

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"][0] == "database"
    assert body["checks"]["migrations"] == "skipped: database unreachable"


def test_readyz_reports_unapplied_migrations(client, monkeypatch):
    monkeypatch.setattr(health, "_migrations_seen_applied", False)
    monkeypatch.setattr(health.MigrationExecutor, "migration_plan", lambda self, targets: [("app", False)])

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "1 migration(s) not applied"


def test_readyz_checks_a_non_redis_broker_through_kombu(client, settings):
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]
    assert response.json()["checks"]["broker"].startswith("error: ")


def test_readyz_names_what_failed_but_not_internal_hosts_or_ports(client, settings, caplog):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["redis", "broker"]
    assert "127.0.0.1" not in response.content.decode() and ":1" not in response.content.decode()
    assert "127.0.0.1" in caplog.text  # the details are in our log, for whoever operates it
