"""No API answer may be kept by a browser or a proxy cache: payments and errors are per client and per moment."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import ApiClientFactory, api_key_create

pytestmark = pytest.mark.django_db
BODY = {"amount": 1500, "currency": "eur", "payment_method": "pm_card_visa"}


def assert_no_store(response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"


def test_a_payment_and_its_replay_are_no_store(api):
    first = api.post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY="cache-1")
    replay = api.post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY="cache-1")

    assert_no_store(first, 202)
    assert_no_store(replay, 202)
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_reads_are_no_store(api):
    assert_no_store(api.get("/api/v1/payments"), 200)


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status"),
    [
        ("post", "/api/v1/payments", b"{not json", "application/json", 400),
        ("get", "/api/v1/payments/pay_nope", b"", "application/json", 404),
        ("get", "/api/v1/nothing-here", b"", "application/json", 404),
        ("delete", "/api/v1/payments", b"", "application/json", 405),
        ("post", "/api/v1/payments", b'{"description": "' + b"x" * 70_000 + b'"}', "application/json", 413),
        ("post", "/api/v1/payments", b"amount=1", "text/plain", 415),
    ],
)
def test_errors_are_no_store(api, method, path, body, content_type, status):
    response = getattr(api, method)(path, data=body, content_type=content_type, HTTP_IDEMPOTENCY_KEY="cache-2")

    assert_no_store(response, status)


def test_an_unauthenticated_answer_is_no_store():
    assert_no_store(Client().get("/api/v1/payments"), 401)


def test_a_rate_limited_answer_is_no_store():
    _, key = api_key_create(client=ApiClientFactory(name="cache-limited", rate_limit_per_minute=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get("/api/v1/payments")

    assert_no_store(client.get("/api/v1/payments"), 429)


def test_an_unanticipated_500_is_no_store(api, monkeypatch):
    from payments.api import views

    def explode(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(views.selectors, "payment_list", explode)
    api.raise_request_exception = False

    assert_no_store(api.get("/api/v1/payments"), 500)


def test_pages_outside_the_api_keep_their_own_caching():
    assert "no-store" not in Client().get("/healthz").headers.get("Cache-Control", "")
