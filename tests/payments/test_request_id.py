import logging

import pytest

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz")

    assert response.headers["Request-Id"].startswith("req_")


def test_a_well_formed_client_request_id_is_kept(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="checkout-123")

    assert response.headers["Request-Id"] == "checkout-123"


def test_a_malformed_client_request_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces\n")

    assert response.headers["Request-Id"].startswith("req_")


def test_api_access_log_names_the_request_but_never_personal_data(api, caplog):
    body = {
        "amount": 100,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "customer_reference": "jane@example.com",
        "metadata": {"address": "1 Secret Lane"},
    }

    with caplog.at_level(logging.INFO):
        response = api.post("/api/v1/payments", body, format="json", HTTP_IDEMPOTENCY_KEY="log-1")

    access = [r.getMessage() for r in caplog.records if r.name == "payments.api.access"]
    assert len(access) == 1
    assert f"request_id={response.headers['Request-Id']}" in access[0]
    assert "status=202" in access[0] and "path=/api/v1/payments" in access[0]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "jane@example.com" not in everything
    assert "Secret Lane" not in everything
