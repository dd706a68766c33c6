"""
The OpenAPI schema and the server agree on every boundary (issue 12): for each value on either side of
a limit, a JSON Schema validator reading /api/schema/ and the server's own validator give one verdict.
The schema's constraints are built from the validators' constants, so this fails when either moves alone.
"""

from types import SimpleNamespace

import jsonschema_rs
import pytest

from payments.api.fields import MAX_UNIX_TIME, METADATA_KEY_MAX_LENGTH, METADATA_MAX_KEYS, METADATA_VALUE_MAX_LENGTH
from payments.api.serializers import (
    LIST_MAX_LIMIT,
    PaymentCaptureInputSerializer,
    PaymentCreateInputSerializer,
    PaymentListInputSerializer,
    RefundCreateInputSerializer,
)
from payments.errors import PaymentsError
from payments.idempotency import HEADER, MAX_KEY_LENGTH, _key_from
from payments.models.base import new_payment_id, new_refund_id, public_id_well_formed
from payments.models.payment import CUSTOMER_REFERENCE_MAX_LENGTH, DESCRIPTION_MAX_LENGTH, MAX_AMOUNT

pytestmark = pytest.mark.django_db

BASE = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        return Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def schema_says(schema: dict, fragment: dict, value) -> bool:
    """Whether `value` is valid under `fragment`, its $refs resolved in the whole schema document."""
    return jsonschema_rs.validator_for({**fragment, "components": schema["components"]}).is_valid(value)


def component(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def parameter(schema: dict, path: str, method: str, name: str) -> dict:
    return next(p for p in schema["paths"][path][method]["parameters"] if p["name"] == name)["schema"]


def create_body(**changes) -> dict:
    body = {**BASE, **changes}
    return {key: value for key, value in body.items() if value is not None}


PAYMENT_CREATE_BODIES = {
    "minimal": create_body(),
    "amount-at-eur-minimum": create_body(amount=50),
    "amount-below-eur-minimum": create_body(amount=49),
    "gbp-minimum": create_body(amount=30, currency="gbp"),
    "below-gbp-minimum": create_body(amount=29, currency="gbp"),
    "no-minimum-currency-1": create_body(amount=1, currency="mdl"),
    "three-decimal-step": create_body(amount=1010, currency="kwd"),
    "three-decimal-off-step": create_body(amount=1005, currency="kwd"),
    "whole-units-only": create_body(amount=200, currency="isk"),
    "whole-units-off-step": create_body(amount=150, currency="isk"),
    "amount-max": create_body(amount=MAX_AMOUNT),
    "amount-over-max": create_body(amount=MAX_AMOUNT + 1),
    "amount-zero": create_body(amount=0, currency="mdl"),
    "amount-string": create_body(amount="2000"),
    "amount-bool": create_body(amount=True, currency="mdl"),
    "currency-upper": create_body(currency="EUR"),
    "currency-fund-code": create_body(currency="usn"),
    "currency-metal": create_body(currency="xau"),
    "unknown-field": create_body(amout=1),
    "no-payment-method": create_body(payment_method=None),
    "payment-method-empty": create_body(payment_method=""),
    "payment-method-spaces": create_body(payment_method=" "),
    "payment-method-longest": create_body(payment_method="p" * 255),
    "payment-method-too-long": create_body(payment_method="p" * 256),
    "payment-method-nul": create_body(payment_method="pm\x00"),
    "capture-method-manual": create_body(capture_method="manual"),
    "capture-method-other": create_body(capture_method="later"),
    "description-empty": create_body(description=""),
    "description-longest": create_body(description="d" * DESCRIPTION_MAX_LENGTH),
    "description-too-long": create_body(description="d" * (DESCRIPTION_MAX_LENGTH + 1)),
    "description-nul": create_body(description="a\x00b"),
    "description-spaces": create_body(description="  padded  "),
    "reference-longest": create_body(customer_reference="r" * CUSTOMER_REFERENCE_MAX_LENGTH),
    "reference-too-long": create_body(customer_reference="r" * (CUSTOMER_REFERENCE_MAX_LENGTH + 1)),
    "metadata-empty": create_body(metadata={}),
    "metadata-most-keys": create_body(metadata={f"k{i}": "v" for i in range(METADATA_MAX_KEYS)}),
    "metadata-too-many-keys": create_body(metadata={f"k{i}": "v" for i in range(METADATA_MAX_KEYS + 1)}),
    "metadata-longest-key": create_body(metadata={"k" * METADATA_KEY_MAX_LENGTH: "v"}),
    "metadata-key-too-long": create_body(metadata={"k" * (METADATA_KEY_MAX_LENGTH + 1): "v"}),
    "metadata-empty-key": create_body(metadata={"": "v"}),
    "metadata-bracket-key": create_body(metadata={"a[b]": "v"}),
    "metadata-nul-key": create_body(metadata={"a\x00": "v"}),
    "metadata-longest-value": create_body(metadata={"k": "v" * METADATA_VALUE_MAX_LENGTH}),
    "metadata-value-too-long": create_body(metadata={"k": "v" * (METADATA_VALUE_MAX_LENGTH + 1)}),
    "metadata-value-number": create_body(metadata={"k": 1}),
    "metadata-value-null": create_body(metadata={"k": None}),
    "metadata-value-object": create_body(metadata={"k": {}}),
    "metadata-value-nul": create_body(metadata={"k": "a\x00"}),
    "metadata-not-object": create_body(metadata=["k"]),
}


@pytest.mark.parametrize("body", PAYMENT_CREATE_BODIES.values(), ids=PAYMENT_CREATE_BODIES.keys())
def test_payment_create_body_is_valid_in_the_schema_exactly_when_the_server_accepts_it(schema, body):
    server = PaymentCreateInputSerializer(data=body).is_valid()

    assert schema_says(schema, component("PaymentCreateInput"), body) == server


AMOUNT_BODIES = [{}, {"amount": 1}, {"amount": MAX_AMOUNT}, {"amount": 0}, {"amount": MAX_AMOUNT + 1}, {"x": 1}]


@pytest.mark.parametrize(
    ("name", "serializer"),
    [("PaymentCaptureInput", PaymentCaptureInputSerializer), ("RefundCreateInput", RefundCreateInputSerializer)],
)
@pytest.mark.parametrize("body", AMOUNT_BODIES, ids=str)
def test_capture_and_refund_amount_bounds_are_the_servers(schema, name, serializer, body):
    assert schema_says(schema, component(name), body) == serializer(data=body).is_valid()


LIST_QUERIES = [
    ("limit", 1),
    ("limit", LIST_MAX_LIMIT),
    ("limit", 0),
    ("limit", LIST_MAX_LIMIT + 1),
    ("created[gte]", 0),
    ("created[gte]", MAX_UNIX_TIME),
    ("created[gte]", -1),
    ("created[lte]", MAX_UNIX_TIME + 1),
    ("status", "succeeded"),
    ("status", "SUCCEEDED"),
    ("starting_after", new_payment_id()),
    ("starting_after", new_refund_id()),
    ("starting_after", ""),
]


@pytest.mark.parametrize(("name", "value"), LIST_QUERIES, ids=[f"{n}={v}" for n, v in LIST_QUERIES])
def test_list_query_bounds_are_the_servers(schema, name, value):
    fragment = parameter(schema, "/api/v1/payments", "get", name)
    server = PaymentListInputSerializer(data={name: str(value)}).is_valid()
    if name == "starting_after" and server:
        server = public_id_well_formed(value, prefix="pay")  # the selector: any other shape names no payment

    assert schema_says(schema, fragment, value) == server


IDEMPOTENCY_KEYS = ["a", "order-42", "a b", "~!", "k" * MAX_KEY_LENGTH, "k" * (MAX_KEY_LENGTH + 1), "", " a", "a ",
                    "a\tb", "é", "a\x7f"]  # fmt: skip


POSTS_WITH_KEYS = ["/api/v1/payments", "/api/v1/payments/{payment_id}/refunds", "/api/v1/payments/{payment_id}/capture"]


@pytest.mark.parametrize("key", IDEMPOTENCY_KEYS, ids=repr)
@pytest.mark.parametrize("path", POSTS_WITH_KEYS)
def test_the_idempotency_key_header_is_valid_in_the_schema_exactly_when_the_server_takes_it(schema, key, path):
    try:
        server = _key_from(SimpleNamespace(headers={HEADER: key}), required=True) == key
    except PaymentsError:
        server = False

    assert schema_says(schema, parameter(schema, path, "post", HEADER), key) == server


def test_the_idempotency_key_is_required_where_the_server_requires_it(schema):
    def required(path: str) -> bool:
        return next(p for p in schema["paths"][path]["post"]["parameters"] if p["name"] == HEADER).get(
            "required", False
        )

    assert required("/api/v1/payments") and required("/api/v1/payments/{payment_id}/refunds")
    assert not required("/api/v1/payments/{payment_id}/capture") and not required(
        "/api/v1/payments/{payment_id}/cancel"
    )


@pytest.mark.parametrize(
    ("name", "prefix"), [("payment_id", "pay"), ("refund_id", "re")], ids=["payment_id", "refund_id"]
)
@pytest.mark.parametrize("value", [new_payment_id(), new_refund_id(), "pay_" + "a" * 26, "pay_1", ""])
def test_id_path_parameters_state_the_shape_of_our_ids(schema, name, prefix, value):
    path = "/api/v1/payments/{payment_id}" if name == "payment_id" else "/api/v1/refunds/{refund_id}"

    assert schema_says(schema, parameter(schema, path, "get", name), value) == public_id_well_formed(
        value, prefix=prefix
    )


@pytest.mark.parametrize("name", ["PaymentCreateInput", "PaymentCaptureInput", "RefundCreateInput"])
def test_every_input_refuses_unknown_fields(schema, name):
    assert schema["components"]["schemas"][name]["additionalProperties"] is False


def test_every_api_error_status_answers_the_one_error_shape(schema):
    statuses = set()
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and status != "414" and path.startswith("/api/"):
                    statuses.add(status)
                    assert response["content"]["application/json"]["schema"] == component("Error")

    assert statuses >= {"400", "401", "404", "409", "422", "429"}
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"type", "code", "message", "param"}
