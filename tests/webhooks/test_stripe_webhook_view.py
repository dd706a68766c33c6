"""POST /webhooks/stripe: real signatures over the raw bytes; stored once; junk stores nothing."""

import json
import logging
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from outbox.models import OutboxMessage
from tests.pii import PLANTED
from tests.webhooks.conftest import URL, body_of, event, intent_object, post, signature
from webhooks import topics, views
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def succeeded(**fields) -> dict:
    return event("payment_intent.succeeded", intent_object("pi_1", "succeeded", payment_id=None), **fields)


def intake(outcome: str, reason: str = "") -> float:
    labels = {"provider": "stripe", "outcome": outcome, "reason": reason}
    return REGISTRY.get_sample_value("webhook_intake_total", labels) or 0.0


def nothing_stored() -> bool:
    return not WebhookEvent.objects.exists() and not OutboxMessage.objects.exists()


def test_a_signed_event_is_stored_once_with_its_outbox_row_and_answered_200(client):
    evt = succeeded()

    response = post(client, body_of(evt))

    assert response.status_code == 200 and response.json() == {"received": True, "duplicate": False}
    stored = WebhookEvent.objects.get()
    assert (stored.provider, stored.provider_event_id, stored.type) == ("stripe", evt["id"], evt["type"])
    assert (stored.object_type, stored.object_id, stored.status) == ("payment_intent", "pi_1", "RECEIVED")
    assert stored.api_version == evt["api_version"] and int(stored.provider_created_at.timestamp()) == evt["created"]
    message = OutboxMessage.objects.get()
    assert (message.topic, message.payload) == (topics.WEBHOOK_EVENT_RECEIVED, {"webhook_event_id": stored.pk})


def test_a_duplicate_delivery_is_answered_200_and_changes_nothing(client):
    body = body_of(succeeded())
    post(client, body)
    before = intake("duplicate")

    again = post(client, body)
    resigned = post(client, body, header=signature(body, at=int(time.time()) - 5))  # a retry, signed afresh

    assert [again.status_code, resigned.status_code] == [200, 200]
    assert again.json()["duplicate"] is True
    assert WebhookEvent.objects.count() == 1 and OutboxMessage.objects.count() == 1
    assert intake("duplicate") - before == 2


def test_an_unknown_event_type_is_stored_and_answered_200_never_4xx(client):
    response = post(client, body_of(event("customer.created", {"id": "cus_1", "object": "customer"})))

    assert response.status_code == 200
    assert WebhookEvent.objects.get().type == "customer.created"


@pytest.mark.parametrize(
    ("make_request", "reason"),
    [
        (lambda body: (body, None), "signature_missing"),
        (lambda body: (body, "t=1,v0=x"), "signature_malformed"),
        (lambda body: (body.replace(b"pi_1", b"pi_2"), signature(body)), "signature_mismatch"),
        (lambda body: (json.dumps(json.loads(body)).encode(), signature(body)), "signature_mismatch"),
        (lambda body: (body, signature(body, secret="whsec_not_ours")), "signature_mismatch"),
        (lambda body: (body, signature(body, at=int(time.time()) - 301)), "timestamp_outside_tolerance"),
    ],
    ids=["unsigned", "malformed", "tampered", "re-serialised", "wrong-secret", "expired"],
)
def test_an_unverifiable_delivery_is_a_400_with_its_reason_and_stores_nothing(client, make_request, reason):
    body, header = make_request(body_of(succeeded()))
    before = intake("rejected", reason)

    response = post(client, body, header=header)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == reason
    assert nothing_stored()
    assert intake("rejected", reason) - before == 1


@pytest.mark.parametrize(
    "body",
    [b"not json at all", b"[1, 2]", json.dumps({"type": "x"}).encode(), json.dumps({"id": "evt_1"}).encode()],
    ids=["not-json", "not-an-object", "no-id", "no-type"],
)
def test_a_signed_body_that_is_not_an_event_is_a_400_and_stores_nothing(client, body):
    response = post(client, body)

    assert (response.status_code, response.json()["error"]["code"]) == (400, "payload_invalid")
    assert nothing_stored()


def test_secrets_rotate_old_and_new_both_verify_while_both_are_listed(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_new, whsec_old"
    old, new = body_of(succeeded()), body_of(succeeded())

    signed_old = post(client, old, header=signature(old, secret="whsec_old"))
    signed_new = post(client, new, header=signature(new, secret="whsec_new"))
    settings.STRIPE_WEBHOOK_SECRET = "whsec_new"  # the old one retired
    late_old = body_of(succeeded())
    refused = post(client, late_old, header=signature(late_old, secret="whsec_old"))

    assert [signed_old.status_code, signed_new.status_code, refused.status_code] == [200, 200, 400]
    assert WebhookEvent.objects.count() == 2


def test_without_a_configured_secret_nothing_verifies_and_the_answer_says_it_is_ours_to_fix(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = post(client, body_of(succeeded()))

    assert (response.status_code, response.json()["error"]["code"]) == (503, "no_secret_configured")
    assert nothing_stored()


def test_a_body_declared_larger_than_the_limit_is_refused_before_it_is_read(client, settings, monkeypatch):
    settings.STRIPE_WEBHOOK_MAX_BODY_BYTES = 1024
    reads = []
    monkeypatch.setattr("django.core.handlers.wsgi.LimitedStream.read", lambda self, *a: reads.append(a) or b"")

    response = post(client, b"x" * 2048, header="t=1,v1=x")

    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    assert reads == []
    assert nothing_stored()


def test_a_body_without_a_declared_length_is_not_read_and_cannot_verify(client, settings):
    settings.STRIPE_WEBHOOK_MAX_BODY_BYTES = 1024
    body = body_of(succeeded(padding="x" * 2048))

    response = post(client, body, CONTENT_LENGTH="")  # e.g. chunked: WSGI reads nothing undeclared

    assert (response.status_code, response.json()["error"]["code"]) == (400, "signature_mismatch")
    assert nothing_stored()


def test_a_body_over_the_limit_without_a_misleading_length_is_a_413(client, settings):
    settings.STRIPE_WEBHOOK_MAX_BODY_BYTES = 1024
    body = body_of(succeeded(padding="x" * 2048))

    response = post(client, body)

    assert response.status_code == 413
    assert nothing_stored()


def test_a_body_up_to_the_default_limit_is_accepted_above_the_apis_own_limit(client, settings):
    body = body_of(succeeded(padding="x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE * 2)))
    assert len(body) < settings.STRIPE_WEBHOOK_MAX_BODY_BYTES

    assert post(client, body).status_code == 200


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_accepted(client, method):
    response = getattr(client, method)(URL)

    assert (response.status_code, response["Allow"]) == (405, "POST")


def test_no_csrf_token_no_api_key_and_no_session_are_needed(db):
    client = Client(enforce_csrf_checks=True)

    response = post(client, body_of(succeeded()))

    assert response.status_code == 200
    assert not response.cookies


def statements(client, body: bytes) -> list[str]:
    """The SQL the view ran, without the savepoints the test's own transaction turns BEGIN/COMMIT into."""
    with CaptureQueriesContext(connection) as captured:
        post(client, body)
    return [query["sql"].split(" (")[0] for query in captured if "SAVEPOINT" not in query["sql"]]


def test_the_view_stores_an_event_in_two_statements_and_a_duplicate_in_one(client):
    body = body_of(succeeded())

    first = statements(client, body)
    duplicate = statements(client, body)

    table = WebhookEvent._meta.db_table
    assert first == [f"INSERT INTO {table}", 'INSERT INTO "outbox_outboxmessage"']  # + ON CONFLICT DO NOTHING
    assert duplicate == [f"INSERT INTO {table}"]


def test_a_flood_of_forged_posts_is_refused_stores_nothing_and_logs_a_few_lines(client, caplog, monkeypatch):
    monkeypatch.setattr(views, "_rejection_log", views._ThrottledLog(views.REJECTION_LOG_INTERVAL_SECONDS))
    caplog.set_level(logging.INFO)
    before = intake("rejected", "signature_mismatch")
    forged = [body_of(succeeded()) for _ in range(300)]

    statuses = {post(client, body, header=f"t={int(time.time())},v1={'0' * 64}").status_code for body in forged}
    genuine = post(client, body_of(succeeded()))

    assert statuses == {400}  # never a 429: no API-key limiter or throttle stands in front of it
    assert genuine.status_code == 200
    assert WebhookEvent.objects.count() == 1
    assert intake("rejected", "signature_mismatch") - before == 300
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1  # rate-limited: one line per reason per interval (Django's own is off)
    assert "webhook_rejected" in warnings[0].getMessage() and "0000000000" not in warnings[0].getMessage()


@pytest.mark.parametrize(
    "header",
    [
        lambda: f"t={int(time.time())},v1=\u00e9",  # latin-1 bytes on the wire: hmac.compare_digest refuses non-ASCII
        lambda: f"t={int(time.time())},v1=\u00e2\u009c\u0093",  # a UTF-8 "✓" as WSGI hands it over
        lambda: "t=" + "9" * 5000 + ",v1=abc",  # past int()'s 4300-digit limit
    ],
    ids=["non-ascii-signature", "utf8-signature", "timestamp-too-long"],
)
def test_a_forged_signature_header_that_the_sdk_cannot_compare_is_a_400_not_a_500(header):
    client = Client(raise_request_exception=False)
    body = body_of(succeeded())
    before = intake("rejected", "signature_malformed")

    response = post(client, body, header=header())

    assert (response.status_code, response.json()["error"]["code"]) == (400, "signature_malformed")
    assert nothing_stored()
    assert intake("rejected", "signature_malformed") - before == 1


def signed_text(evt: dict, *replacements: tuple[str, str]) -> bytes:
    """The event as Stripe would lay it out, with raw JSON tokens put in place (json.dumps would escape them)."""
    text = json.dumps(evt, indent=2)
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    return text.encode()


@pytest.mark.parametrize(
    "token", ["NaN", "Infinity", "-Infinity", "1e400"], ids=["nan", "infinity", "minus-infinity", "overflowing-float"]
)
def test_a_signed_body_with_a_number_json_does_not_allow_is_a_400_not_a_500(token):
    client = Client(raise_request_exception=False)
    body = signed_text(succeeded(), ('"amount": 2000', f'"amount": {token}'))

    response = post(client, body)

    assert (response.status_code, response.json()["error"]["code"]) == (400, "payload_invalid")
    assert nothing_stored()


def test_a_signed_body_nested_deeper_than_the_parser_goes_is_a_400_not_a_500():
    client = Client(raise_request_exception=False)
    body = signed_text(succeeded(), ('"pending_webhooks": 1', '"pending_webhooks": ' + "[" * 100_000 + "]" * 100_000))

    response = post(client, body)

    assert (response.status_code, response.json()["error"]["code"]) == (400, "payload_invalid")
    assert nothing_stored()


@pytest.mark.parametrize("field", ["id", "type"])
@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800"], ids=["nul", "lone-surrogate"])
def test_a_signed_event_whose_id_or_type_postgresql_cannot_store_is_a_400_not_a_500(field, bad):
    client = Client(raise_request_exception=False)
    evt = succeeded(id="evt_unstorable")
    body = signed_text(evt, (f'"{field}": "{evt[field]}"', f'"{field}": "{evt[field]}{bad}"'))

    response = post(client, body)

    assert (response.status_code, response.json()["error"]["code"]) == (400, "payload_invalid")
    assert nothing_stored()


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800"], ids=["nul", "lone-surrogate"])
def test_a_signed_event_with_text_postgresql_cannot_store_elsewhere_is_stored_with_it_replaced(bad):
    client = Client(raise_request_exception=False)
    obj = intent_object("pi_1", "requires_payment_method", payment_id=None, metadata={"note": "x"})
    obj["last_payment_error"] = {"code": "card_declined", "message": "Declined."}
    evt = event("payment_intent.payment_failed", obj)
    body = signed_text(
        evt,
        ('"message": "Declined."', f'"message": "Declined.{bad}"'),
        ('"note": "x"', f'"note{bad}": "x"'),
        ('"id": "pi_1"', f'"id": "pi_1{bad}"'),
    )

    response = post(client, body)

    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    obj = stored.payload["data"]["object"]
    assert obj["last_payment_error"]["message"] == "Declined.\ufffd"
    assert obj["metadata"] == {"note\ufffd": "[redacted]"}
    assert obj["id"] == "pi_1\ufffd"
    assert (stored.object_type, stored.object_id) == ("payment_intent", "")  # no column holds what it cannot store
    assert OutboxMessage.objects.count() == 1


@pytest.mark.parametrize("kind", [["payment_intent"], {"name": "payment_intent"}, 7, None], ids=repr)
@pytest.mark.parametrize("type_", ["payment_intent.succeeded", "customer.updated"])
def test_a_signed_event_whose_object_kind_is_not_text_is_stored_not_a_500(kind, type_):
    client = Client(raise_request_exception=False)
    obj = intent_object("pi_1", "succeeded", payment_id=None)
    obj["object"] = kind
    obj["id"] = {"nested": "pi_1"}

    response = post(client, body_of(event(type_, obj)))

    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.object_type, stored.object_id) == ("", "")
    assert PLANTED["email"] not in json.dumps(stored.payload)  # kept through the allow-list for any object


def counts() -> tuple[int, int]:
    return WebhookEvent.objects.count(), OutboxMessage.objects.count()


def _oversized(settings, body: bytes) -> tuple[bytes, str]:
    settings.STRIPE_WEBHOOK_MAX_BODY_BYTES = len(body) - 1
    return body, signature(body)


BAD_DELIVERIES = {
    "forged": lambda settings, body: (body, signature(body, secret="whsec_forged_by_someone")),
    "tampered": lambda settings, body: (body.replace(b'"amount": 2000', b'"amount": 1'), signature(body)),
    "stale": lambda settings, body: (
        body,
        signature(body, at=int(time.time()) - settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS - 1),
    ),
    "oversized": _oversized,
    "non-json": lambda settings, body: (b"amount=2000&currency=eur", signature(b"amount=2000&currency=eur")),
    "not-utf8": lambda settings, body: (b"\xff\xfe{}", "t=1,v1=" + "0" * 64),
}


@pytest.mark.parametrize("make", BAD_DELIVERIES.values(), ids=BAD_DELIVERIES.keys())
def test_a_bad_delivery_is_refused_and_leaves_stored_events_and_the_outbox_as_they_were(client, settings, make):
    post(client, body_of(succeeded()))  # something already stored, so "unchanged" means more than "empty"
    before = counts()
    body, header = make(settings, body_of(succeeded()))

    response = post(client, body, header=header)

    assert response.status_code in (400, 413)
    assert "error" in response.json()
    assert counts() == before


def test_a_replayed_delivery_is_200_and_stored_once_while_fresh_and_refused_once_stale(client, settings):
    body = body_of(succeeded())
    post(client, body)
    before = counts()

    replayed = post(client, body)
    stale = post(
        client, body, header=signature(body, at=int(time.time()) - settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS - 1)
    )

    assert (replayed.status_code, replayed.json()["duplicate"]) == (200, True)
    assert (stale.status_code, stale.json()["error"]["code"]) == (400, "timestamp_outside_tolerance")
    assert counts() == before


def test_an_event_type_no_handler_acts_on_is_stored_ignored_at_once_in_one_statement_without_an_outbox_row(client):
    unhandled = event("charge.succeeded", {"id": "ch_1", "object": "charge", "amount": 2000})

    sent = statements(client, body_of(unhandled))

    row = WebhookEvent.objects.get(provider_event_id=unhandled["id"])
    assert sent == [f"INSERT INTO {WebhookEvent._meta.db_table}"]
    assert (row.status, row.outcome, row.processed_at is not None) == ("IGNORED", "unhandled_type", True)
    assert not OutboxMessage.objects.exists()
