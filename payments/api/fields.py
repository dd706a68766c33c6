"""Strict input fields: JSON types are checked, not coerced ("100", 100.0 and true are not amounts)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from payments.api.parsers import LONE_SURROGATE, NOT_UNICODE
from payments.currencies import CURRENCIES


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"not_integer": "Must be a JSON integer (not a string, float or boolean)."}

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("not_integer")
        return super().to_internal_value(data)


# No NUL character: PostgreSQL cannot store one in text, and DRF's CharField refuses it. Written in a
# syntax Python's `re`, JSON Schema's ECMA-262 and the Rust regex crate all read the same way.
NO_NUL_PATTERN = r"^[^\u0000]*$"


class StrictCharField(serializers.CharField):
    """A JSON string taken as sent: no coercion and no trimming, so the schema's lengths are the server's."""

    default_error_messages = {"not_string": "Must be a JSON string.", "not_unicode": NOT_UNICODE}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_string")
        if LONE_SURROGATE.search(data):  # the parser refuses these first; a field must not rely on it
            self.fail("not_unicode")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "enum": list(CURRENCIES)})
class CurrencyField(StrictCharField):
    """A lower-case ISO 4217 code that is legal tender and that the provider can charge (payments.currencies)."""

    default_error_messages = {
        "not_currency": "Must be a lower-case ISO 4217 code of a currency the provider can charge, e.g. 'eur'."
    }

    def __init__(self, **kwargs):
        super().__init__(min_length=3, max_length=3, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value not in CURRENCIES:
            self.fail("not_currency")
        return value


# The last second Python's datetime can hold (PostgreSQL could go further; the ORM cannot).
MAX_UNIX_TIME = int(datetime.max.replace(microsecond=0, tzinfo=UTC).timestamp())  # 9999-12-31T23:59:59Z


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": MAX_UNIX_TIME})
class UnixTimeField(serializers.IntegerField):
    """Unix seconds (a query parameter such as `created[gte]`) as an aware UTC datetime."""

    default_error_messages = {"not_a_date": f"Must be Unix seconds from 0 to {MAX_UNIX_TIME} (the end of year 9999)."}

    def to_internal_value(self, data):
        seconds = super().to_internal_value(data)
        # Checked here, not with max_value: validators run after this conversion, which would overflow.
        if not 0 <= seconds <= MAX_UNIX_TIME:
            self.fail("not_a_date")
        return datetime.fromtimestamp(seconds, tz=UTC)

    def to_representation(self, value):
        return int(value.timestamp())


# Stripe-style bounds: https://docs.stripe.com/api/metadata
METADATA_MAX_KEYS = 50
METADATA_KEY_MAX_LENGTH = 40
METADATA_VALUE_MAX_LENGTH = 500
METADATA_KEY_PATTERN = r"^[^\[\]\u0000]+$"  # brackets would be ambiguous in form-encoded provider calls


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": METADATA_MAX_KEYS,
        "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_MAX_LENGTH, "pattern": METADATA_KEY_PATTERN},
        "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_MAX_LENGTH, "pattern": NO_NUL_PATTERN},
    }
)
class MetadataField(serializers.Field):
    default_error_messages = {
        "not_object": "Must be a JSON object of string keys to string values.",
        "too_many": f"At most {METADATA_MAX_KEYS} keys are allowed.",
        "bad_key": f"Keys must be 1 to {METADATA_KEY_MAX_LENGTH} characters, without square brackets.",
        "bad_value": f"Values must be strings of at most {METADATA_VALUE_MAX_LENGTH} characters.",
        "not_unicode": NOT_UNICODE,
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_object")
        if len(data) > METADATA_MAX_KEYS:
            self.fail("too_many")
        for key, value in data.items():
            if len(key) > METADATA_KEY_MAX_LENGTH or not re.fullmatch(METADATA_KEY_PATTERN, key):
                self.fail("bad_key")
            if not isinstance(value, str) or len(value) > METADATA_VALUE_MAX_LENGTH:
                self.fail("bad_value")
            if not re.fullmatch(NO_NUL_PATTERN, value):
                self.fail("bad_value")
            if LONE_SURROGATE.search(key) or LONE_SURROGATE.search(value):
                self.fail("not_unicode")
        return dict(data)

    def to_representation(self, value):
        return value


class PublicIdField(serializers.CharField):
    """One of our ids (`pay_…`): its shape is stated in the schema; an ill-formed one names no object (404)."""

    def __init__(self, *, prefix: str, **kwargs):
        self.prefix = prefix
        super().__init__(max_length=40, **kwargs)


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses unknown fields instead of silently ignoring a typo."""

    default_error_messages = {"unknown_field": "Unknown parameter."}

    def get_fields(self):
        # DRF deep-copies the declared fields for every serializer, which builds each field again from its
        # arguments (a tenth of a create's CPU, issue 11). A shallow copy is enough for an input field:
        # binding sets attributes of the copy only, and what copies share (arguments, validators, choices,
        # error messages) is only read while validating. The declared fields are never bound. A field with
        # fields of its own (a list's child, a nested serializer) is deep-copied as DRF does.
        return {
            name: copy.deepcopy(field) if hasattr(field, "child") or hasattr(field, "fields") else copy.copy(field)
            for name, field in self._declared_fields.items()
        }

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if any(LONE_SURROGATE.search(name) for name in unknown):
                # A name that could not be echoed as `param`: the error names no parameter.
                raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [NOT_UNICODE]})
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: [serializers.ErrorDetail("Received unknown parameter.", code="unknown_field")]}
                )
        return super().to_internal_value(data)
