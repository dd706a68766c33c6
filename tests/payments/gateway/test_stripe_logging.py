"""One structured log line per provider HTTP call: ids, sizes, status and timing, never payloads or personal data."""

import json
import logging

import pytest
import stripe
import structlog
from structlog.contextvars import bound_contextvars, merge_contextvars
from structlog.testing import capture_logs

from payments.gateway.base import ProviderOutcomeUnknown, ProviderRateLimited

PLANTED_NAME = "Jane Q. Roe"
PLANTED_EMAIL = "jane.roe+vip@example.com"
FIELDS = {
    "event",
    "log_level",
    "provider",
    "operation",
    "request_id",
    "method",
    "endpoint",
    "status",
    "duration_ms",
    "request_bytes",
    "response_bytes",
    "provider_request_id",
    "replayed",
    "error_type",
    "payment_id",
    "attempt",
}


@pytest.fixture
def sent_headers(monkeypatch) -> list[dict]:
    """The headers of every request the SDK's transport sends."""
    sent: list[dict] = []
    send = stripe.RequestsClient.request

    def recording(self, method, url, headers, post_data=None):
        sent.append(dict(headers))
        return send(self, method, url, headers, post_data)

    monkeypatch.setattr(stripe.RequestsClient, "request", recording)
    return sent


def provider_calls(logs: list[dict]) -> list[dict]:
    return [entry for entry in logs if entry["event"] == "provider_call"]


def test_a_payment_logs_one_line_per_call_with_its_fields_and_nothing_personal(gateway, pay, stripe_sandbox, caplog):
    description = f"Gift for {PLANTED_NAME} <{PLANTED_EMAIL}>"

    with (
        caplog.at_level(logging.INFO),  # production's level, for the SDK's own stdlib logger too
        capture_logs(processors=[merge_contextvars]) as logs,
        bound_contextvars(payment_id="pay_01LOGGED", attempt=2),
    ):
        intent = pay(payment_id="pay_01LOGGED", description=description)
        gateway.intent_find(payment_id="pay_01LOGGED")

    create, find = provider_calls(logs)
    assert set(create) == FIELDS
    assert create["operation"] == "intent_create"
    assert (create["method"], create["endpoint"], create["status"]) == ("POST", "/v1/payment_intents", 200)
    assert (create["payment_id"], create["attempt"]) == ("pay_01LOGGED", 2)
    assert create["request_id"].startswith("req_")
    assert create["provider_request_id"].startswith("req_")
    assert create["provider_request_id"] != create["request_id"]
    assert create["request_bytes"] > len(description) and create["response_bytes"] > 0
    assert create["duration_ms"] > 0
    assert (create["error_type"], create["replayed"], create["log_level"]) == (None, False, "info")
    assert (find["operation"], find["method"], find["endpoint"]) == ("intent_find", "GET", "/v1/payment_intents/search")
    secret = stripe_sandbox.server.store.intents[intent.id]["client_secret"]
    everything = json.dumps(logs) + "\n".join(record.getMessage() for record in caplog.records)
    for planted in (PLANTED_NAME, "Roe", PLANTED_EMAIL, "example.com", "Gift for", secret, "query="):
        assert planted not in everything


def test_a_failed_call_logs_its_error_type_and_status_as_a_warning(pay, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "rate_limit", "count": 1})

    with capture_logs() as logs, pytest.raises(ProviderRateLimited):
        pay()

    (line,) = provider_calls(logs)
    assert (line["error_type"], line["status"], line["log_level"]) == ("rate_limited", 429, "warning")
    assert line["provider_request_id"].startswith("req_")


def test_a_call_without_an_answer_logs_no_status_and_outcome_unknown(make_gateway, pay, stripe_sandbox):
    stripe_sandbox.set_faults({"kind": "connection_reset", "count": 1})

    with capture_logs() as logs, pytest.raises(ProviderOutcomeUnknown):
        pay()

    (line,) = provider_calls(logs)
    assert (line["error_type"], line["status"], line["response_bytes"]) == ("outcome_unknown", None, None)
    assert line["request_bytes"] > 0


def test_a_replayed_answer_is_logged_as_replayed(pay):
    pay(payment_id="pay_01TWICE")

    with capture_logs() as logs:
        pay(payment_id="pay_01TWICE")

    assert provider_calls(logs)[0]["replayed"] is True


def test_the_callers_request_id_is_logged_and_sent_to_the_provider(gateway, pay, sent_headers):
    with capture_logs(processors=[merge_contextvars]) as logs, bound_contextvars(request_id="checkout-42"):
        intent = pay()
        gateway.intent_retrieve(intent_id=intent.id)

    assert [line["request_id"] for line in provider_calls(logs)] == ["checkout-42", "checkout-42"]
    assert [headers["X-Request-Id"] for headers in sent_headers] == ["checkout-42", "checkout-42"]
    assert structlog.contextvars.get_contextvars() == {}  # nothing the gateway bound outlives the call


def test_without_a_bound_request_id_each_call_gets_its_own(gateway, pay, sent_headers):
    with capture_logs() as logs:
        intent = pay()
        gateway.intent_retrieve(intent_id=intent.id)

    first, second = (line["request_id"] for line in provider_calls(logs))
    assert first != second
    assert [headers["X-Request-Id"] for headers in sent_headers] == [first, second]


def test_a_malformed_bound_request_id_is_never_logged_or_sent(pay, sent_headers):
    with capture_logs() as logs, bound_contextvars(request_id="forged\nlevel=error"):
        pay()

    (line,) = provider_calls(logs)
    assert line["request_id"].startswith("req_")
    assert sent_headers[0]["X-Request-Id"] == line["request_id"]
