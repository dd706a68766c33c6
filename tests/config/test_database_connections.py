"""Kept database connections: a dead one is replaced before a request uses it, without a SELECT 1 per request,
and one lost during a request is a 503 to retry, after which the next request reconnects (config/db.py)."""

import psycopg
import pytest
from django.db import close_old_connections, connection, connections

from config import db
from outbox.models import OutboxMessage
from payments.models import IdempotencyKey, Payment

pytestmark = pytest.mark.django_db(transaction=True)  # the connection itself is under test, not a test transaction

VALID = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa"}


@pytest.fixture(autouse=True)
def _reconnect_for_the_flush():
    yield
    db.connections_close_dead()  # a test that ended the session leaves the teardown a working connection


def terminate(backend_pid: int) -> None:
    """End a server session as a restart or an operator would, and wait until it is gone."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s, 5000)", [backend_pid]).fetchone()[0]


def backend_pid() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def test_production_settings_send_no_select_1_before_each_request(settings):
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is False


def test_a_live_kept_connection_is_kept_and_asked_nothing(api, monkeypatch):
    api.get("/api/v1/payments")
    before = backend_pid()
    monkeypatch.setattr(
        type(connections["default"]), "is_usable", lambda self: pytest.fail("a health-check query was sent")
    )

    close_old_connections()  # what request_started runs under gunicorn (the test client leaves it out)
    response = api.get("/api/v1/payments")

    assert response.status_code == 200
    assert backend_pid() == before


def test_a_request_on_a_connection_the_server_ended_reconnects_and_answers(api):
    api.get("/api/v1/payments")
    before = backend_pid()
    terminate(before)

    response = api.get("/api/v1/payments")

    assert response.status_code == 200
    assert backend_pid() != before


def test_the_idle_check_tells_a_live_connection_from_an_ended_one():
    pid = backend_pid()
    alive_before = db.connection_idle_alive(connection.connection)
    terminate(pid)

    alive_after = db.connection_idle_alive(connection.connection)

    assert (alive_before, alive_after) == (True, False)


def test_a_connection_lost_during_a_create_is_a_503_with_retry_after_and_the_retry_succeeds(api, monkeypatch):
    from payments.api import views

    real_create = views.payment_create

    def create_after_the_server_ended_our_session(**kwargs):
        terminate(connection.connection.info.backend_pid)
        return real_create(**kwargs)

    monkeypatch.setattr(views, "payment_create", create_after_the_server_ended_our_session)
    lost = api.post("/api/v1/payments", VALID, format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    monkeypatch.setattr(views, "payment_create", real_create)

    retried = api.post("/api/v1/payments", VALID, format="json", HTTP_IDEMPOTENCY_KEY="order-1")

    assert lost.status_code == 503
    assert lost.headers["Retry-After"] == "1"
    assert lost.json()["error"]["code"] == "service_unavailable"
    assert lost.json()["error"]["type"] == "api_error"
    assert retried.status_code == 202
    assert "Idempotent-Replayed" not in retried.headers  # the lost attempt stored nothing, not even its key
    assert Payment.objects.count() == OutboxMessage.objects.count() == IdempotencyKey.objects.count() == 1


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), True),
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.ConnectionFailure("connection failure"), True),
        (psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"), False),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), False),
        (psycopg.errors.UniqueViolation("duplicate key value"), False),
    ],
)
def test_only_a_lost_connection_counts_as_the_database_being_unavailable(error, lost):
    from django.db import DatabaseError, IntegrityError, OperationalError

    wrapper = {"UniqueViolation": IntegrityError}.get(type(error).__name__, OperationalError)
    try:
        raise wrapper(str(error)) from error
    except DatabaseError as exc:
        raised = exc

    assert db.database_unavailable(raised) is lost


def test_a_connection_lost_during_a_webhook_delivery_is_a_503_with_retry_after_and_the_redelivery_is_stored(
    monkeypatch,
):
    from django.test import Client

    from tests.webhooks.conftest import body_of, event, post
    from webhooks import views
    from webhooks.models import WebhookEvent

    real_receive = views.webhook_event_receive

    def receive_after_the_server_ended_our_session(**kwargs):
        terminate(connection.connection.info.backend_pid)
        return real_receive(**kwargs)

    client = Client(raise_request_exception=False)
    body = body_of(event("payment_intent.created", {"id": "pi_1", "object": "payment_intent"}))
    backend_pid()
    monkeypatch.setattr(views, "webhook_event_receive", receive_after_the_server_ended_our_session)
    lost = post(client, body)
    monkeypatch.setattr(views, "webhook_event_receive", real_receive)

    redelivered = post(client, body)

    assert lost.status_code == 503  # the provider retries it, as it would a 500, but nothing is logged as a bug
    assert lost.headers["Retry-After"] == "1"
    assert lost.json()["error"]["code"] == "service_unavailable"
    assert redelivered.status_code == 200
    assert redelivered.json() == {"received": True, "duplicate": False}
    assert WebhookEvent.objects.count() == 1


def test_a_connection_lost_during_an_admin_page_is_a_503_with_retry_after_and_the_next_page_loads(
    admin_client, monkeypatch
):
    from django.contrib import admin

    model_admin = admin.site._registry[Payment]
    real_get_queryset = type(model_admin).get_queryset

    ended = []

    def get_queryset_after_the_server_ended_our_session(self, request):
        if not ended:  # the changelist asks more than once; the session ends at the first
            ended.append(terminate(connection.connection.info.backend_pid))
        return real_get_queryset(self, request)

    admin_client.raise_request_exception = False
    admin_client.get("/admin/")
    monkeypatch.setattr(type(model_admin), "get_queryset", get_queryset_after_the_server_ended_our_session)
    lost = admin_client.get("/admin/payments/payment/")
    monkeypatch.setattr(type(model_admin), "get_queryset", real_get_queryset)

    again = admin_client.get("/admin/payments/payment/")

    assert lost.status_code == 503
    assert lost.headers["Retry-After"] == "1"
    assert again.status_code == 200
