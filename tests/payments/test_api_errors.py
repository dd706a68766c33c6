"""Whatever a client sends, the answer is a 4xx in the one error shape: never a 500, never half a payment."""

import pytest
from django.test import Client

from outbox.models import OutboxMessage
from payments.models import ApiKey, IdempotencyKey, Payment, PaymentEvent, Refund
from tests.factories import api_key_create, payment_with_status

pytestmark = pytest.mark.django_db
SHAPE = {"type", "code", "message", "param"}


@pytest.fixture
def raw():
    """A plain Django client (no DRF encoding) that sends exactly the bytes a test gives it."""
    _, key = api_key_create()
    client = Client(raise_request_exception=False)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def post(raw, body: bytes, content_type="application/json", path="/api/v1/payments", key="errors-1"):
    return raw.post(path, data=body, content_type=content_type, HTTP_IDEMPOTENCY_KEY=key)


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == SHAPE
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("truncated", b'{"amount": 100'),
        ("not json", b"{not json"),
        ("invalid utf-8", b'{"description": "\xff\xfe"}'),
        ("NaN", b'{"amount": NaN}'),
        ("Infinity", b'{"amount": Infinity}'),
        ("too many digits", b'{"amount": 1' + b"0" * 5000 + b"}"),
        ("nested too deep", b"[" * 20000 + b"]" * 20000),
    ],
)
def test_malformed_json_is_400_invalid_json(raw, name, body):
    assert_error(post(raw, body), 400, "invalid_json")
    assert not Payment.objects.exists()


@pytest.mark.parametrize("body", [b"[1, 2]", b'"a string"', b"42", b"true", b"null"])
def test_json_that_is_not_an_object_is_400(raw, body):
    assert_error(post(raw, body), 400)
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", "application/xml"])
def test_a_body_that_is_not_json_is_415_unsupported_media_type(raw, content_type):
    assert_error(post(raw, b"amount=100", content_type=content_type), 415, "unsupported_media_type")


def test_a_body_over_the_size_limit_is_413_and_stores_nothing(raw, settings):
    body = b'{"description": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'

    assert_error(post(raw, body), 413, "request_too_large")
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b'{"amount": 100, "currency": "eur", "payment_method": "pm_\\u0000card"}',
        b'{"amount": 100, "currency": "eur", "payment_method": "pm_card_visa", "metadata": {"k": "\\u0000"}}',
        b'{"amount": 100, "currency": "eur", "payment_method": "pm_card_visa", "metadata": {"\\u0000": "v"}}',
        b'{"amount": 100, "currency": "eur", "payment_method": "pm_card_visa", "description": "a\\u0000b"}',
    ],
)
def test_nul_characters_postgres_cannot_store_are_400_not_500(raw, body):
    assert_error(post(raw, body), 400)
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/payments/pay_%00",
        "/api/v1/payments/%F0%9F%92%B3",
        "/api/v1/payments/" + "x" * 5000,
        "/api/v1/refunds/re_%00",
        "/api/v1/payments?starting_after=pay_%00",
    ],
)
def test_ids_that_cannot_exist_are_404_or_400_without_a_500(raw, path):
    response = raw.get(path)

    assert response.status_code in (400, 404)
    assert set(response.json()["error"]) == SHAPE


def test_an_unknown_url_under_the_api_is_a_json_404(raw):
    assert_error(raw.get("/api/v1/nothing-here"), 404, "resource_missing")


def test_an_unknown_url_elsewhere_keeps_djangos_page(raw):
    response = raw.get("/not-the-api")

    assert response.status_code == 404
    assert "text/html" in response.headers["Content-Type"]


@pytest.mark.parametrize(
    ("method", "path"), [("put", "/api/v1/payments"), ("delete", "/api/v1/refunds/re_x"), ("patch", "/api/v1/payments")]
)
def test_a_method_the_route_does_not_have_is_405(raw, method, path):
    assert_error(getattr(raw, method)(path), 405, "method_not_allowed")


def test_an_unanticipated_error_is_a_logged_json_500_in_the_error_shape(raw, monkeypatch):
    from payments.api import views

    def explode(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(views, "payment_create", explode)

    body = b'{"amount": 100, "currency": "eur", "payment_method": "pm_card_visa"}'
    error = assert_error(post(raw, body), 500, "internal_error")

    assert error["type"] == "api_error"
    assert not IdempotencyKey.objects.exists()  # the key was rolled back with the work: a retry may run


# A lone UTF-16 surrogate is legal JSON syntax but no Unicode text: it cannot be encoded, stored or
# sent to the provider (RFC 8259 §8.2, I-JSON RFC 7493 §2.1). "\ud83d\udcb3" (a pair) is 💳 and fine.
def create(extra: str) -> str:
    """A valid create body plus `extra` (JSON text, as sent on the wire)."""
    return '{"amount": 100, "currency": "eur", "payment_method": "pm_card_visa", ' + extra + "}"


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ('{"amount": 100, "currency": "eur", "payment_method": "pm_\\ud800"}', "parameter_invalid", "payment_method"),
        (create('"description": "a\\ud800b"'), "parameter_invalid", "description"),
        (create('"description": "\\udfff"'), "parameter_invalid", "description"),
        (create('"description": "\\udc00\\ud800"'), "parameter_invalid", "description"),
        (create('"description": "card \\ud83d"'), "parameter_invalid", "description"),
        (create('"customer_reference": "\\ud800"'), "parameter_invalid", "customer_reference"),
        ('{"amount": 100, "currency": "\\ud800", "payment_method": "pm_card_visa"}', "parameter_invalid", "currency"),
        (create('"capture_method": "\\ud800"'), "parameter_invalid", "capture_method"),
        (create('"metadata": {"order": "\\ud800"}'), "parameter_invalid", "metadata[order]"),
        (create('"metadata": {"\\ud800": "v"}'), "parameter_invalid", "metadata"),
        (create('"colour": "\\ud800"'), "parameter_invalid", "colour"),
        (create('"\\ud800": "v"'), "invalid_json", None),
        ('"\\ud800"', "invalid_json", None),
    ],
)
def test_a_lone_surrogate_in_a_payment_is_400_naming_the_param_and_stores_nothing(raw, body, code, param):
    error = assert_error(post(raw, body.encode()), 400, code)

    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert not Payment.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_a_surrogate_pair_is_a_character_like_any_other(raw):
    body = create('"description": "\\ud83d\\udcb3", "metadata": {"\\ud83d\\udcb3": "ok"}')

    response = post(raw, body.encode())

    assert response.status_code == 202, response.content
    assert Payment.objects.get().description == "\U0001f4b3"


@pytest.mark.parametrize(
    ("action", "body", "code", "param"),
    [
        ("capture", '{"amount": "\\ud800"}', "parameter_invalid", "amount"),
        ("capture", '{"\\ud800": 1}', "invalid_json", None),
        ("cancel", '{"reason": "\\ud800"}', "parameter_invalid", "reason"),
        ("refunds", '{"reason": "\\ud800"}', "parameter_invalid", "reason"),
        ("refunds", '{"amount": 100, "\\ud800": 1}', "invalid_json", None),
    ],
)
@pytest.mark.parametrize("idempotency_key", ["surrogate-1", None])
def test_a_lone_surrogate_in_a_command_on_a_payment_is_400_and_changes_nothing(
    raw, action, body, code, param, idempotency_key
):
    merchant = ApiKey.objects.get().client
    status = Payment.Status.SUCCEEDED if action == "refunds" else Payment.Status.REQUIRES_CAPTURE
    payment = payment_with_status(status, client=merchant, amount=1000)
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}

    response = raw.post(
        f"/api/v1/payments/{payment.public_id}/{action}", data=body.encode(), content_type="application/json", **headers
    )

    if action == "refunds" and idempotency_key is None:
        assert_error(response, 400, "idempotency_key_required")  # asked for before the body is read
    else:
        error = assert_error(response, 400, code)
        assert error["param"] == param
    payment.refresh_from_db()
    assert payment.status == status
    assert not IdempotencyKey.objects.exists()
    assert not OutboxMessage.objects.exists()
    assert not PaymentEvent.objects.exists()
    assert not Refund.objects.exists()
