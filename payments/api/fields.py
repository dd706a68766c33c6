"""Strict input fields: JSON types are checked, not coerced ("100", 100.0 and true are not amounts)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinLengthValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings
from rest_framework.validators import ProhibitSurrogateCharactersValidator

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
_METADATA_KEY = re.compile(METADATA_KEY_PATTERN)
_NO_NUL = re.compile(NO_NUL_PATTERN)


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
            if len(key) > METADATA_KEY_MAX_LENGTH or not _METADATA_KEY.fullmatch(key):
                self.fail("bad_key")
            if not isinstance(value, str) or len(value) > METADATA_VALUE_MAX_LENGTH:
                self.fail("bad_value")
            if not _NO_NUL.fullmatch(value):
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


# The fast path's answer for a value it does not vouch for: DRF's validation then decides (and words the error).
DEFER = object()
Converter = Callable[[object], object]


def _bounds(field: serializers.Field, kinds: dict[type, str]) -> dict[str, object] | None:
    """The limits of `field`'s validators by name (e.g. {"max_length": 255}), or None if one is not a plain limit."""
    limits: dict[str, object] = {}
    for validator in field.validators:
        name = kinds.get(type(validator))
        if name is None:
            return None  # a rule the fast path does not know: DRF runs it
        if name != "flag":
            if callable(validator.limit_value):
                return None
            limits[name] = validator.limit_value
    return limits


_INTEGER_LIMITS = {MinValueValidator: "min_value", MaxValueValidator: "max_value"}
_TEXT_LIMITS = {
    MinLengthValidator: "min_length",
    MaxLengthValidator: "max_length",
    ProhibitNullCharactersValidator: "flag",  # no NUL: checked by every text converter
    ProhibitSurrogateCharactersValidator: "flag",  # no surrogate: checked by every text converter
}


def _integer_converter(field: StrictIntegerField) -> Converter | None:
    limits = _bounds(field, _INTEGER_LIMITS)
    if limits is None:
        return None
    if "min_value" not in limits or "max_value" not in limits:
        return None  # unbounded, DRF's str() of a huge int fails: only bounded integers are compared here
    low, high = limits["min_value"], limits["max_value"]

    def convert(value):
        return value if type(value) is int and low <= value <= high else DEFER

    return convert


def _text_converter(field: StrictCharField) -> Converter | None:
    limits = _bounds(field, _TEXT_LIMITS)
    if limits is None or field.trim_whitespace:
        return None
    shortest, longest, allow_blank = limits.get("min_length", 0), limits.get("max_length"), field.allow_blank
    if longest is None:
        longest = float("inf")
    codes = CURRENCIES if type(field) is CurrencyField else None

    def convert(value):
        if type(value) is not str:
            return DEFER
        if value == "":  # DRF answers a blank before any other rule
            return "" if allow_blank else DEFER
        if not shortest <= len(value) <= longest or "\x00" in value or LONE_SURROGATE.search(value):
            return DEFER
        if codes is not None and value not in codes:
            return DEFER
        return value

    return convert


def _choice_converter(field: serializers.ChoiceField) -> Converter | None:
    if field.validators:
        return None
    choices = field.choice_strings_to_values

    def convert(value):
        if type(value) is str and value != "" and value in choices:
            return choices[value]
        return DEFER

    return convert


def _metadata_converter(field: MetadataField) -> Converter | None:
    if field.validators:
        return None

    def convert(value):
        try:
            return field.to_internal_value(value)  # plain Python already; it reads nothing a binding sets
        except serializers.ValidationError:
            return DEFER

    return convert


# By exact class: a subclass may add rules of its own, so it takes DRF's path until it is listed here.
_CONVERTERS = {
    StrictIntegerField: _integer_converter,
    StrictCharField: _text_converter,
    CurrencyField: _text_converter,
    serializers.ChoiceField: _choice_converter,
    MetadataField: _metadata_converter,
}


class StrictInputSerializer(serializers.Serializer):
    """An input serializer that refuses unknown fields instead of silently ignoring a typo.

    `validated(data)` is what views call: valid input takes a fast path that checks each field's
    rules as plain comparisons (a tenth of a create's CPU went to DRF's field machinery, issue 11);
    anything the fast path does not vouch for, every invalid input among it, goes through DRF's own
    validation, so every error (code, message, param) is DRF's. tests/payments/test_fast_validation.py
    holds the two paths to the same answers.
    """

    default_error_messages = {"unknown_field": "Unknown parameter."}

    @classmethod
    def validated(cls, data) -> dict:
        """
        Return the validated data, as `is_valid()` and `validated_data` would.

        :raises ValidationError: what `is_valid(raise_exception=True)` raises
        """
        fast = cls.fast_validated(data)
        if fast is not None:
            return fast
        serializer = cls(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @classmethod
    def fast_validated(cls, data) -> dict | None:
        """The validated data of input the fast path vouches for, else None (DRF then decides)."""
        plan = cls._fast_plan()
        if plan is None or type(data) is not dict:
            return None
        names, fields = plan
        for name in data:
            if name not in names:
                return None
        validated = {}
        for name, convert, required, default in fields:
            value = data.get(name, empty)
            if value is empty:
                if required:
                    return None
                if default is not empty:
                    validated[name] = default
                continue
            if value is None:
                return None
            value = convert(value)
            if value is DEFER:
                return None
            validated[name] = value
        try:
            return cls.validate_together(validated)
        except (serializers.ValidationError, DjangoValidationError):
            return None

    @classmethod
    def validate_together(cls, attrs: dict) -> dict:
        """Rules across fields (no instance state: the fast path applies them too); override, not `validate`."""
        return attrs

    def validate(self, attrs):
        return self.validate_together(attrs)

    @classmethod
    def _fast_plan(cls) -> tuple[frozenset[str], list[tuple[str, Converter, bool, object]]] | None:
        if "_fast_plan_cache" not in cls.__dict__:  # per class, not inherited; a race only builds it twice
            cls._fast_plan_cache = cls._build_fast_plan()
        return cls._fast_plan_cache

    @classmethod
    def _build_fast_plan(cls):
        """Each declared field's converter, or None if any rule is one only DRF's path applies."""
        overridden = (
            cls.get_fields is not StrictInputSerializer.get_fields
            or cls.to_internal_value is not StrictInputSerializer.to_internal_value
            or cls.run_validation is not serializers.Serializer.run_validation
            or cls.validate is not StrictInputSerializer.validate
            or getattr(getattr(cls, "Meta", None), "validators", None)
        )
        if overridden:
            return None
        fields = []
        for name, field in cls._declared_fields.items():
            build = _CONVERTERS.get(type(field))
            if (
                build is None
                or field.read_only
                or field.source not in (None, name)
                or (field.default is not empty and callable(field.default))
                or hasattr(cls, f"validate_{name}")
            ):
                return None
            convert = build(field)
            if convert is None:
                return None
            fields.append((name, convert, field.required, field.default))
        return frozenset(cls._declared_fields), fields

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
