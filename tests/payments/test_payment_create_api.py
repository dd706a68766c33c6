import pytest

from outbox.models import OutboxMessage
from payments import topics
from payments.models import IdempotencyKey, Payment, PaymentEvent
from tests.pii import PLANTED

pytestmark = pytest.mark.django_db

VALID = {
    "amount": 2000,
    "currency": "eur",
    "payment_method": "pm_card_visa",
    "customer_reference": PLANTED["card_number_spaced"],  # a card number where none belongs
    "metadata": {"email": PLANTED["email"], "note": PLANTED["metadata_value"]},
}


def post_payment(api, body, key="key-1", **headers):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.post("/api/v1/payments", body, format="json", **extra, **headers)


def test_create_payment_answers_202_with_a_pending_payment_object(api):
    response = post_payment(api, {**VALID, "description": "Order 42", "metadata": {"order": "42"}})

    assert response.status_code == 202
    body = response.json()
    assert body["id"].startswith("pay_") and len(body["id"]) == 30
    assert body["object"] == "payment"
    assert body["status"] == "pending"
    assert body["amount"] == 2000
    assert body["amount_capturable"] == body["amount_received"] == body["amount_refunded"] == 0
    assert body["currency"] == "eur"
    assert body["capture_method"] == "automatic"
    assert body["payment_method"] == "pm_card_visa"
    assert body["description"] == "Order 42"
    assert body["customer_reference"] == PLANTED["card_number_spaced"]
    assert body["metadata"] == {"order": "42"}
    assert body["provider"] == "stripe"
    assert body["provider_payment_id"] is None
    assert body["next_action"] is None
    assert body["failure_code"] is None and body["failure_message"] is None
    assert isinstance(body["created"], int) and isinstance(body["updated"], int)


def test_create_payment_writes_payment_event_and_outbox_row_in_one_go(api):
    response = post_payment(api, VALID)

    payment = Payment.objects.get(public_id=response.json()["id"])
    assert payment.status == Payment.Status.PENDING
    event = PaymentEvent.objects.get(payment=payment)
    assert (event.type, event.source, event.to_status) == ("payment.created", "api", "PENDING")
    assert event.actor.startswith("api_key:")
    message = OutboxMessage.objects.get()
    assert message.topic == topics.PAYMENT_CREATE_REQUESTED
    assert message.payload == {"payment_id": payment.public_id}
    assert message.status == OutboxMessage.Status.DUE


def test_create_payment_with_manual_capture_keeps_the_capture_method(api):
    response = post_payment(api, {**VALID, "capture_method": "manual"})

    assert response.json()["capture_method"] == "manual"


def test_create_payment_without_idempotency_key_is_400_and_stores_nothing(api):
    response = post_payment(api, VALID, key=None)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert not Payment.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_create_payment_with_a_malformed_idempotency_key_is_400(api, key):
    response = post_payment(api, VALID, key=key)

    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("idempotency_key_invalid", "idempotency_key_required")
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "2000"),
        ("amount", 20.0),
        ("amount", 20.5),
        ("amount", True),
        ("amount", None),
        ("amount", 0),
        ("amount", -5),
        ("amount", 10**30),
        ("amount", 100_000_000),
        ("amount", [1]),
        ("currency", "EUR"),
        ("currency", "euro"),
        ("currency", "xyz"),
        ("currency", 978),
        ("payment_method", ""),
        ("payment_method", 123),
        ("payment_method", "x" * 256),
        ("capture_method", "later"),
        ("description", "d" * 1001),
        ("description", 5),
        ("customer_reference", "c" * 256),
        ("metadata", "not-an-object"),
        ("metadata", {"k": 1}),
        ("metadata", {"k": None}),
        ("metadata", {"k" * 41: "v"}),
        ("metadata", {"": "v"}),
        ("metadata", {"k": "v" * 501}),
        ("metadata", {f"k{n}": "v" for n in range(51)}),
        ("metadata", {"a[b]": "v"}),
    ],
)
def test_create_payment_refuses_bad_field_with_400_naming_the_param_and_stores_nothing(api, field, value):
    response = post_payment(api, {**VALID, field: value})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == field
    assert error["code"] in ("parameter_invalid", "parameter_missing")
    assert not Payment.objects.exists()
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("field", ["amount", "currency", "payment_method"])
def test_create_payment_without_a_required_field_is_400_parameter_missing(api, field):
    body = {k: v for k, v in VALID.items() if k != field}

    response = post_payment(api, body)

    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "parameter_missing",
        "message": f"{field}: This field is required.",
        "param": field,
    }


def test_create_payment_refuses_unknown_fields(api):
    response = post_payment(api, {**VALID, "amout": 5})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_unknown"
    assert response.json()["error"]["param"] == "amout"


def test_a_validation_failure_stores_nothing_under_the_key_so_the_client_can_fix_and_retry(api):
    post_payment(api, {**VALID, "amount": "2000"}, key="retry-me")

    response = post_payment(api, VALID, key="retry-me")

    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response.headers
    assert Payment.objects.count() == 1


def test_create_payment_uses_the_same_small_number_of_queries_whatever_the_body(api, django_assert_num_queries):
    small = VALID
    big = {**VALID, "metadata": {f"k{n}": "v" * 500 for n in range(50)}, "description": "d" * 1000}
    api.get("/api/v1/payments/pay_warm")  # verifies the key (remembered API_KEY_CACHE_SECONDS) and records its use

    # The transaction (a savepoint and its release in tests); lock timeout, key insert and timeout reset
    # in one round trip; payment, event and outbox in one statement; the stored response.
    for key, body in (("small", small), ("big", big)):
        with django_assert_num_queries(5):
            response = post_payment(api, body, key=key)
        assert response.status_code == 202


def assert_refused_and_nothing_stored(response, *, code, param):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param)
    assert not Payment.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert not OutboxMessage.objects.exists()


# ISO 4217 fund codes and precious metals: not money a card can be charged in.
@pytest.mark.parametrize(
    "currency",
    ["usn", "clf", "bov", "che", "chw", "cou", "mxv", "uyi", "uyw", "xsu", "xua", "xdr", "xau", "xag", "xpt", "xpd"],
)
def test_create_payment_refuses_fund_codes_and_metals(api, currency):
    response = post_payment(api, {**VALID, "currency": currency})

    assert_refused_and_nothing_stored(response, code="parameter_invalid", param="currency")


@pytest.mark.parametrize(
    ("currency", "why"),
    [
        ("ang", "retired: replaced by xcg in 2025, no longer legal tender"),
        ("std", "retired: replaced by stn in 2018 (Stripe still lists the old code)"),
        ("hrk", "retired: Croatia adopted the euro in 2023"),
        ("irr", "legal tender, but Stripe cannot charge it"),
        ("cup", "legal tender, but Stripe cannot charge it"),
        ("xts", "reserved for testing"),
    ],
)
def test_create_payment_refuses_currencies_the_provider_cannot_charge(api, currency, why):
    response = post_payment(api, {**VALID, "currency": currency})

    assert_refused_and_nothing_stored(response, code="parameter_invalid", param="currency")


# Stripe's minimum charge amounts (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts),
# in the minor units of the `amount` field: jpy is zero-decimal, so 50 is ¥50.
MINIMUMS = [("usd", 50), ("eur", 50), ("gbp", 30), ("jpy", 50), ("krw", 50), ("huf", 17500), ("mxn", 1000)]


@pytest.mark.parametrize(("currency", "minimum"), MINIMUMS)
def test_create_payment_one_below_the_providers_minimum_is_amount_too_small_and_stores_nothing(api, currency, minimum):
    response = post_payment(api, {**VALID, "currency": currency, "amount": minimum - 1})

    assert_refused_and_nothing_stored(response, code="amount_too_small", param="amount")
    assert str(minimum) in response.json()["error"]["message"]


@pytest.mark.parametrize(("currency", "minimum"), MINIMUMS)
def test_create_payment_at_the_providers_minimum_is_accepted(api, currency, minimum):
    response = post_payment(api, {**VALID, "currency": currency, "amount": minimum})

    assert response.status_code == 202, response.content
    assert (response.json()["amount"], response.json()["currency"]) == (minimum, currency)


def test_a_refused_small_amount_stores_nothing_under_the_key_so_the_client_can_fix_and_retry(api):
    post_payment(api, {**VALID, "amount": 49}, key="fix-me")

    response = post_payment(api, {**VALID, "amount": 50}, key="fix-me")

    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response.headers


# Three-decimal currencies: Stripe requires the last digit of `amount` to be 0
# (5.124 KWD must be sent as 5120 or 5130).
@pytest.mark.parametrize("currency", ["bhd", "jod", "kwd", "omr", "tnd"])
def test_create_payment_in_a_three_decimal_currency_not_ending_in_0_is_refused(api, currency):
    response = post_payment(api, {**VALID, "currency": currency, "amount": 5124})

    assert_refused_and_nothing_stored(response, code="invalid_charge_amount", param="amount")


@pytest.mark.parametrize("currency", ["bhd", "jod", "kwd", "omr", "tnd"])
def test_create_payment_in_a_three_decimal_currency_ending_in_0_is_accepted(api, currency):
    response = post_payment(api, {**VALID, "currency": currency, "amount": 5120})

    assert response.status_code == 202, response.content


# ISK and UGX: two decimals in Stripe's amount, but whole units only (5 ISK is 500).
@pytest.mark.parametrize("currency", ["isk", "ugx"])
def test_create_payment_in_fractions_of_isk_or_ugx_is_refused(api, currency):
    response = post_payment(api, {**VALID, "currency": currency, "amount": 550})

    assert_refused_and_nothing_stored(response, code="invalid_charge_amount", param="amount")


@pytest.mark.parametrize("currency", ["isk", "ugx"])
def test_create_payment_in_whole_isk_or_ugx_is_accepted(api, currency):
    response = post_payment(api, {**VALID, "currency": currency, "amount": 500})

    assert response.status_code == 202, response.content


# HUF and TWD are whole units only for Stripe payouts; charges may carry two decimals.
@pytest.mark.parametrize(("currency", "amount"), [("huf", 17501), ("twd", 1001)])
def test_create_payment_in_huf_or_twd_may_carry_fractions(api, currency, amount):
    response = post_payment(api, {**VALID, "currency": currency, "amount": amount})

    assert response.status_code == 202, response.content
