"""
drf-spectacular: the OpenAPI schema states every rule the API enforces, from the same constants.

A client generated from /api/schema/ must validate as the server does (issue 12): unknown fields
refused, string lengths and patterns, metadata keys, the Idempotency-Key header, the amount each
currency allows, our ids' shape, the headers every answer carries, and the links from a created
payment to what can be done with it. tests/payments/test_schema_constraints.py holds the two to each other.
"""

from __future__ import annotations

from collections import defaultdict

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)

from payments.api.fields import NO_NUL_PATTERN
from payments.currencies import CURRENCIES
from payments.models.base import public_id_pattern

BLANK_STRING = {"type": "string", "maxLength": 0}
PAYMENT_CREATE_COMPONENT = "PaymentCreateInput"  # PaymentCreateInputSerializer's component
# Path parameters that name one of our objects, and the prefix of its ids.
PATH_ID_PREFIXES = {"payment_id": "pay", "refund_id": "re"}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "payments.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key from `manage.py create_api_key`."}


def charge_amount_rules() -> list[dict]:
    """One alternative per (minimum, step) that `charge_amount_validate` applies, with its currencies."""
    groups: dict[tuple[int, int], list[str]] = defaultdict(list)
    for currency in CURRENCIES.values():
        groups[(currency.minimum_amount or 1, currency.amount_step)].append(currency.code)
    return [
        {
            "properties": {
                "currency": {"type": "string", "enum": codes},
                "amount": {"type": "integer", "minimum": minimum, **({"multipleOf": step} if step > 1 else {})},
            }
        }
        for (minimum, step), codes in sorted(groups.items())
    ]


class StrictInputSerializerScheme(OpenApiSerializerExtension):
    """Inputs refuse unknown fields (StrictInputSerializer), so the schema says additionalProperties: false."""

    target_class = "payments.api.fields.StrictInputSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        for field in schema.get("properties", {}).values():
            # drf-spectacular offers "" beside a patterned string that may be blank as oneOf; when the
            # pattern admits "" too, both match and oneOf refuses it: either one is meant.
            if field.get("oneOf", [None])[-1] == BLANK_STRING:
                field["anyOf"] = field.pop("oneOf")
        return schema


class StrictCharFieldScheme(OpenApiSerializerFieldExtension):
    """A string taken as sent: no NUL, and at least one character unless blank is allowed."""

    target_class = "payments.api.fields.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema.setdefault("pattern", NO_NUL_PATTERN)
        if not self.target.allow_blank:
            schema["minLength"] = max(schema.get("minLength", 0), 1)
        return schema


class PublicIdFieldScheme(OpenApiSerializerFieldExtension):
    target_class = "payments.api.fields.PublicIdField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "pattern": public_id_pattern(self.target.prefix)}


def _header(schema: dict, description: str, *, required: bool = False) -> dict:
    return {"schema": schema, "description": description, "required": required}


def _response_headers(method: str, status: str) -> dict:
    """The headers RequestIdMiddleware, the idempotency layer and the limits put on an API answer."""
    headers = {
        "Request-Id": _header(
            {"type": "string", "pattern": public_id_pattern("req")}, "Our id of the request.", required=True
        ),
        "Cache-Control": _header({"type": "string", "enum": ["no-store"]}, "Never kept by a cache.", required=True),
    }
    if status == "429":
        headers["Retry-After"] = _header(
            {"type": "string", "pattern": "^[0-9]+$"}, "Seconds until a request is allowed.", required=True
        )
    if status == "409":
        headers["Retry-After"] = _header(
            {"type": "string", "pattern": "^[0-9]+$"}, "Seconds to wait when the key or payment is busy."
        )
    if method == "post":
        headers["Idempotent-Replayed"] = _header(
            {"type": "string", "enum": ["true"]}, "The stored answer to an earlier request with this Idempotency-Key."
        )
    return headers


# From an answer, the operations it names the object of (OpenAPI links: schemathesis' stateful phase
# follows them from a created payment to reading, capturing, cancelling and refunding it).
_PAYMENT_LINKS = {
    "RetrievePayment": "payments_retrieve",
    "CapturePayment": "payments_capture",
    "CancelPayment": "payments_cancel",
    "RefundPayment": "refunds_create",
}
LINKS = {
    ("payments_create", "202"): {name: ("payment_id", op) for name, op in _PAYMENT_LINKS.items()},
    ("payments_retrieve", "200"): {name: ("payment_id", op) for name, op in _PAYMENT_LINKS.items()},
    ("payments_capture", "202"): {name: ("payment_id", op) for name, op in _PAYMENT_LINKS.items()},
    ("payments_cancel", "202"): {"RetrievePayment": ("payment_id", "payments_retrieve")},
    ("refunds_create", "202"): {"RetrieveRefund": ("refund_id", "refunds_retrieve")},
}


def api_contract_postprocess(result, generator, request, public):
    """POSTPROCESSING_HOOK: amounts per currency, our ids' shape, the headers of every answer, and links.

    Runs after drf-spectacular's enum hook, which would otherwise hoist each currency group into a component.
    """
    # PaymentCreateInputSerializer.validate_together(): the amount its currency allows.
    result["components"]["schemas"][PAYMENT_CREATE_COMPONENT]["anyOf"] = charge_amount_rules()
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                prefix = PATH_ID_PREFIXES.get(parameter["name"])
                if parameter["in"] == "path" and prefix:
                    parameter["schema"] = {"type": "string", "pattern": public_id_pattern(prefix)}
            for status, response in operation.get("responses", {}).items():
                response.setdefault("headers", {}).update(_response_headers(method, status))
                links = LINKS.get((operation["operationId"], status))
                if links:
                    response["links"] = {
                        name: {"operationId": target, "parameters": {param: "$response.body#/id"}}
                        for name, (param, target) in links.items()
                    }
            if any(parameter["in"] == "query" for parameter in operation.get("parameters", [])):
                # Answered by gunicorn (limit_request_line) before Django runs: no JSON, no Request-Id.
                operation["responses"]["414"] = {"description": "The path and query string are too long to read."}
    return result
