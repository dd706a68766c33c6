"""Input serializers' fast path (issue 11) answers as DRF does: the same data, or DRF decides and words the error."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from payments.api.fields import METADATA_KEY_MAX_LENGTH, METADATA_MAX_KEYS, METADATA_VALUE_MAX_LENGTH
from payments.api.serializers import (
    PaymentCancelInputSerializer,
    PaymentCaptureInputSerializer,
    PaymentCreateInputSerializer,
    PaymentListInputSerializer,
    RefundCreateInputSerializer,
)
from payments.models.payment import CUSTOMER_REFERENCE_MAX_LENGTH, DESCRIPTION_MAX_LENGTH, MAX_AMOUNT

FAST = [
    PaymentCreateInputSerializer,
    PaymentCaptureInputSerializer,
    PaymentCancelInputSerializer,
    RefundCreateInputSerializer,
]
VALID = {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "metadata": {"order": "42"}}

TEXT_EDGES = [
    "",
    " ",
    " eur ",
    "eur",
    "EUR",
    "jpy",
    "usn",
    "xxx",
    "eu",
    "euro",
    "e\x00r",
    "\ud800",
    "a\udfffb",
    "\U0001f4b3",
    "automatic",
    "manual",
    "Automatic",
    "duplicate",
    "fraudulent",
    "requested_by_customer",
    "pm_card_visa",
    "x" * 255,
    "x" * 256,
    "x" * DESCRIPTION_MAX_LENGTH,
    "x" * (DESCRIPTION_MAX_LENGTH + 1),
    "x" * CUSTOMER_REFERENCE_MAX_LENGTH,
    "x" * (CUSTOMER_REFERENCE_MAX_LENGTH + 1),
]
INT_EDGES = [-1, 0, 1, 9, 10, 49, 50, 100, 2000, 2001, 17500, MAX_AMOUNT, MAX_AMOUNT + 1, 10**20]
METADATA_EDGES = [
    {},
    {"order": "42"},
    {"order": ""},
    {"": "v"},
    {"a[b]": "c"},
    {"k\x00": "v"},
    {"k": "v\x00"},
    {"k": 1},
    {"k": None},
    {"\ud800": "v"},
    {"k": "\ud800"},
    {"k" * METADATA_KEY_MAX_LENGTH: "v" * METADATA_VALUE_MAX_LENGTH},
    {"k" * (METADATA_KEY_MAX_LENGTH + 1): "v"},
    {"k": "v" * (METADATA_VALUE_MAX_LENGTH + 1)},
    {str(n): "v" for n in range(METADATA_MAX_KEYS)},
    {str(n): "v" for n in range(METADATA_MAX_KEYS + 1)},
]
FIELD_NAMES = ["amount", "currency", "payment_method", "capture_method", "description", "customer_reference"]
FIELD_NAMES += ["metadata", "reason", "colour", "\ud800"]

values = st.one_of(
    st.sampled_from(TEXT_EDGES),
    st.sampled_from(INT_EDGES),
    st.sampled_from(METADATA_EDGES),
    st.text(max_size=8),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.just(2000.0),
    st.just("2000"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=8),
    st.fixed_dictionaries(
        {k: st.just(v) for k, v in VALID.items()}, optional={n: values for n in FIELD_NAMES if n not in VALID}
    ),
    st.fixed_dictionaries(
        {"amount": st.sampled_from(INT_EDGES), "currency": st.sampled_from(TEXT_EDGES), "payment_method": values}
    ),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=3),
    st.none(),
)


def drf_outcome(serializer_class, data):
    """What DRF's own validation answers: (True, validated data) or (False, errors)."""
    serializer = serializer_class(data=data)
    valid = serializer.is_valid()
    return valid, serializer.validated_data if valid else serializer.errors


def assert_same_as_drf(serializer_class, data):
    valid, answer = drf_outcome(serializer_class, data)

    fast = serializer_class.fast_validated(data)
    try:
        validated = (True, serializer_class.validated(data))
    except serializers.ValidationError as exc:
        validated = (False, exc.detail)

    assert fast is None or (valid and fast == answer), (data, fast, answer)
    assert validated == (valid, answer)


@pytest.mark.parametrize("serializer_class", FAST)
@given(data=bodies)
@settings(max_examples=400, deadline=None)
def test_the_fast_path_answers_as_drf_does(serializer_class, data):
    assert_same_as_drf(serializer_class, data)


EDGES = [*TEXT_EDGES, *INT_EDGES, *METADATA_EDGES, None, True, 1.0, "1", [], ["eur"]]


@pytest.mark.parametrize("serializer_class", FAST)
def test_every_edge_of_every_field_answers_as_drf_does(serializer_class):
    # One test per serializer over every field and edge value (a few thousand bodies): the assertion
    # message names the body that differs.
    for name in FIELD_NAMES:
        for value in EDGES:
            assert_same_as_drf(serializer_class, {**VALID, name: value})
            assert_same_as_drf(serializer_class, {name: value})


@pytest.mark.parametrize(
    ("serializer_class", "data"),
    [
        (PaymentCreateInputSerializer, VALID),
        (
            PaymentCreateInputSerializer,
            {**VALID, "capture_method": "manual", "description": "", "customer_reference": "c-1", "currency": "jpy"},
        ),
        (PaymentCaptureInputSerializer, {}),
        (PaymentCaptureInputSerializer, {"amount": 1500}),
        (PaymentCancelInputSerializer, {}),
        (RefundCreateInputSerializer, {"amount": 500, "reason": "requested_by_customer"}),
    ],
)
def test_valid_input_takes_the_fast_path(serializer_class, data):
    assert serializer_class.fast_validated(data) == drf_outcome(serializer_class, data)[1]


def test_a_rule_the_fast_path_does_not_know_sends_every_input_to_drf():
    def no_sevens(value):
        if "7" in str(value):
            raise serializers.ValidationError("No sevens.")

    class WithValidator(PaymentCaptureInputSerializer):
        amount = serializers.IntegerField(validators=[no_sevens])

    class WithFieldMethod(PaymentCaptureInputSerializer):
        def validate_amount(self, value):
            return value

    class WithOwnValidate(PaymentCaptureInputSerializer):
        def validate(self, attrs):
            return attrs

    for serializer_class in (WithValidator, WithFieldMethod, WithOwnValidate, PaymentListInputSerializer):
        assert serializer_class.fast_validated({}) is None
    with pytest.raises(serializers.ValidationError):
        WithValidator.validated({"amount": 700})
