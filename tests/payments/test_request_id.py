"""The access log: one JSON line per API request, our own request id, and nothing a client can forge."""

import io
import json
import logging

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_output(caplog):
    """What the configured console handler writes (not pytest's capture): the lines an operator reads."""
    handlers = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert handlers, "settings.LOGGING configures one console handler on the root logger"
    stream = io.StringIO()
    previous = [h.setStream(stream) for h in handlers]
    with caplog.at_level(logging.INFO):
        yield stream
    for handler, old in zip(handlers, previous, strict=True):
        handler.setStream(old)


def access_records(caplog) -> list[dict]:
    return [r.msg for r in caplog.records if r.name == "payments.api.access"]


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz")

    assert response.headers["Request-Id"].startswith("req_")


def test_the_request_id_is_always_ours_and_a_clients_own_is_logged_beside_it(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.get("/api/v1/payments", HTTP_X_REQUEST_ID="checkout-123")

    (record,) = access_records(caplog)
    assert response.headers["Request-Id"].startswith("req_")
    assert record["request_id"] == response.headers["Request-Id"]
    assert record["client_request_id"] == "checkout-123"


def test_admin_requests_are_logged_too_since_ours_is_the_only_access_log(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "a-wrong-password"})

    (record,) = access_records(caplog)
    assert (record["method"], record["path"], record["status"]) == ("POST", "/admin/login/", response.status_code)
    assert record["request_id"] == response.headers["Request-Id"]
    everything = "\n".join(str(r.msg) + r.getMessage() for r in caplog.records)
    assert "a-wrong-password" not in everything and "next=" not in everything


@pytest.mark.parametrize(
    "incoming",
    ["bad id with spaces", "x" * 65, "line\n", "tab\there", "caf\u00e9", "req_\x1b[31mred", "", "a/b"],
)
def test_a_client_request_id_that_is_not_short_and_printable_is_not_logged(client, caplog, incoming):
    with caplog.at_level(logging.INFO):
        response = client.get("/api/v1/payments", HTTP_X_REQUEST_ID=incoming)

    (record,) = access_records(caplog)
    assert response.headers["Request-Id"].startswith("req_")
    assert record["client_request_id"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/x%0aFORGED request_id=req_fake status=200",
        "/api/v1/x%0d%0aFORGED",
        "/api/v1/x%E2%80%A8FORGED",  # U+2028, a line separator to some log viewers
        "/api/v1/x%C2%85FORGED",  # U+0085, NEL
        "/api/v1/x%1b%5b2J",  # a terminal escape sequence
    ],
)
def test_a_client_controlled_path_cannot_forge_a_log_line(log_output, caplog, path):
    response = Client().get(path, HTTP_X_REQUEST_ID="ok-1", HTTP_USER_AGENT="evil\nFORGED")

    lines = log_output.getvalue().splitlines()
    assert lines, "the request was logged"
    assert not any(line.startswith("FORGED") for line in lines)
    assert all(line.isascii() and line.isprintable() for line in lines)
    events = [json.loads(line) for line in lines]  # every line is one whole JSON event
    (access,) = [event for event in events if event["logger"] == "payments.api.access"]
    assert access["path"].startswith("/api/v1/x") and access["status"] == 404
    assert access["request_id"] == response.headers["Request-Id"]


def test_other_events_of_a_request_carry_its_request_id(api, log_output, monkeypatch):
    from payments.api import views

    def explode(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(views.selectors, "payment_list", explode)
    api.raise_request_exception = False

    response = api.get("/api/v1/payments")

    events = [json.loads(line) for line in log_output.getvalue().splitlines()]
    (error,) = [event for event in events if event["logger"] == "django.request"]
    assert response.status_code == 500
    assert error["request_id"] == response.headers["Request-Id"]
    assert "RuntimeError: bug" in error["exception"]


def test_api_access_log_names_the_request_but_never_personal_data(api, caplog):
    body = {
        "amount": 100,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "customer_reference": "jane@example.com",
        "metadata": {"address": "1 Secret Lane"},
    }

    with caplog.at_level(logging.INFO):
        response = api.post(
            "/api/v1/payments?email=jane@example.com",
            body,
            format="json",
            HTTP_IDEMPOTENCY_KEY="log-1",
            HTTP_REFERER="https://shop.example.com/?email=jane@example.com",
        )

    (record,) = access_records(caplog)
    assert record["request_id"] == response.headers["Request-Id"]
    assert record["status"] == 202 and record["path"] == "/api/v1/payments" and record["method"] == "POST"
    assert record["client"] == "merchant"
    everything = "\n".join(str(r.msg) + r.getMessage() for r in caplog.records)
    assert "jane@example.com" not in everything
    assert "Secret Lane" not in everything


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/payments/4000056655665556",  # a card number where an id goes
        "/api/v1/payments/4000%200566%205566%205556/refunds",
        "/api/v1/refunds/planted.customer+pii@example.org",
        "/api/v1/payments/pay_x/capture?x=1",  # nothing personal: logged as it is
    ],
)
def test_a_card_number_or_e_mail_in_the_path_is_logged_redacted(api, log_output, path):
    from tests.pii import find_pii

    response = api.get(path)

    text = log_output.getvalue()
    assert find_pii(text) == []
    events = [json.loads(line) for line in text.splitlines()]
    (access,) = [event for event in events if event["logger"] == "payments.api.access"]
    assert access["status"] == response.status_code
    assert access["path"] == response.wsgi_request.path or "[redacted]" in access["path"]
    assert "[redacted]" in access["path"] or access["path"] == "/api/v1/payments/pay_x/capture"
    # The access line is the answer's record: no second line repeats the raw path.
    assert [event for event in events if event["logger"] == "django.request"] == []
