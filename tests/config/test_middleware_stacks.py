"""Two middleware stacks, the API's (/api/v1/, /webhooks/) and the site's (admin, docs, probes), and their headers."""

import json

import pytest
from django.test import Client

from config.middleware import API_CONTENT_SECURITY_POLICY
from config.stacks import uses_api_stack
from tests.config.test_wsgi import serve

pytestmark = pytest.mark.django_db

BODY = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa"}


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/api/v1/payments", True),
        ("/api/v1/payments/pay_x/capture", True),
        ("/api/v1/nothing-here", True),
        ("/webhooks/stripe", True),
        ("/api/docs/", False),  # a page for browsers: the site's policy lets Swagger UI run
        ("/api/schema/", False),
        ("/api/v1", False),
        ("/admin/", False),
        ("/admin/api/v1/", False),
        ("/healthz", False),
        ("/metrics", False),
    ],
)
def test_only_api_and_webhook_paths_take_the_api_stack(path, api):
    assert uses_api_stack(path) is api


def assert_api_headers(response) -> None:
    """What every API answer carries, whatever its status."""
    assert response["Request-Id"].startswith("req_")
    assert response["Content-Security-Policy"] == API_CONTENT_SECURITY_POLICY
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Content-Length"] == str(len(response.content))
    assert "Set-Cookie" not in response  # no session or CSRF cookie is ever handed to an API client
    assert "Cookie" not in response.get("Vary", "")


def test_api_answers_carry_the_headers_a_json_api_needs(api):
    created = api.post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY="stacks-1")
    read = api.get(f"/api/v1/payments/{created.json()['id']}")

    for response, status in [(created, 202), (read, 200)]:
        assert response.status_code == status
        assert_api_headers(response)
        assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/api/v1/payments", None, 401),
        ("post", "/api/v1/payments", "{not json", 401),
        ("get", "/api/v1/nothing-here", None, 404),
        ("delete", "/api/v1/payments", None, 401),
        ("post", "/webhooks/stripe", "{}", 400),  # no signature
        ("get", "/webhooks/stripe", None, 405),
    ],
)
def test_api_error_answers_carry_them_too(method, path, body, status):
    send = getattr(Client(), method)
    response = send(path, body, content_type="application/json") if body else send(path)

    assert response.status_code == status
    assert_api_headers(response)
    assert json.loads(response.content)["error"]["code"]


def test_a_session_cookie_does_not_authenticate_the_api(admin_client):
    response = admin_client.get("/api/v1/payments")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_required"


def test_the_admin_keeps_the_sites_stack():
    client = Client(enforce_csrf_checks=True)

    page = client.get("/admin/login/")
    refused = client.post("/admin/login/", {"username": "someone", "password": "x"})

    assert page.status_code == 200
    assert "csrftoken" in page.cookies
    assert "'self'" in page["Content-Security-Policy"]  # the pages' own policy, not the API's
    assert page["X-Frame-Options"] == "DENY"
    assert refused.status_code == 403  # CSRF is enforced on the admin


def test_the_admin_session_still_works(admin_client):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert "Cookie" in response["Vary"]


def test_gunicorns_application_dispatches_as_the_test_client_does():
    api_status, api_headers, api_body = serve("/api/v1/payments")
    site_status, site_headers, _ = serve("/admin/login/")
    docs_status, docs_headers, _ = serve("/api/docs/")

    assert (api_status, json.loads(api_body)["error"]["code"]) == (401, "api_key_required")
    assert api_headers["Content-Security-Policy"] == API_CONTENT_SECURITY_POLICY
    assert api_headers["Cache-Control"] == "no-store" and api_headers["Request-Id"].startswith("req_")
    assert "Set-Cookie" not in api_headers
    assert site_status == 200 and "csrftoken=" in site_headers["Set-Cookie"]
    assert "'self'" in site_headers["Content-Security-Policy"]
    assert docs_status == 200 and "'self'" in docs_headers["Content-Security-Policy"]
