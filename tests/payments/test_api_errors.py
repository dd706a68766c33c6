"""Whatever a client sends, the answer is a 4xx in the one error shape: never a 500, never half a payment."""

import pytest
from django.test import Client

from payments.models import IdempotencyKey, Payment
from tests.factories import api_key_create

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
