import pytest

pytestmark = pytest.mark.django_db


def preflight(client, origin: str):
    return client.options(
        "/api/v1/payments",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, idempotency-key",
    )


def test_cors_is_off_by_default(client):
    response = preflight(client, "https://shop.example.com")

    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_configured_origin_may_call_the_api_with_its_headers(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]

    response = preflight(client, "https://shop.example.com")

    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "idempotency-key" in response.headers["Access-Control-Allow-Headers"]


def test_an_origin_not_listed_is_not_allowed(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]

    response = preflight(client, "https://evil.example.com")

    assert "Access-Control-Allow-Origin" not in response.headers


def test_replay_and_retry_headers_are_exposed_to_browsers(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]

    response = api.get("/api/v1/payments", HTTP_ORIGIN="https://shop.example.com")

    exposed = response.headers["Access-Control-Expose-Headers"]
    assert "idempotent-replayed" in exposed and "retry-after" in exposed and "request-id" in exposed
