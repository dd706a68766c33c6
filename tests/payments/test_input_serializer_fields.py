"""Input serializers copy their declared fields shallowly (issue 11): the same answers as DRF's deep copy."""

import copy

import pytest
from rest_framework import serializers

from payments.api.serializers import (
    PaymentCaptureInputSerializer,
    PaymentCreateInputSerializer,
    PaymentListInputSerializer,
    RefundCreateInputSerializer,
)

INPUTS = [
    {"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "metadata": {"order": "42"}},
    {"amount": "2000", "currency": "EUR", "payment_method": 7},
    {"amount": 0, "currency": "xxx", "payment_method": "", "capture_method": "later", "metadata": []},
    {"amount": 50, "currency": "jpy", "payment_method": "pm", "description": "x" * 5000, "colour": "red"},
    {"amount": 10**20, "currency": "eur", "payment_method": "pm", "metadata": {"a[b]": "c"}},
    {},
    [],
    "text",
]
SERIALIZERS = [
    PaymentCreateInputSerializer,
    PaymentCaptureInputSerializer,
    RefundCreateInputSerializer,
    PaymentListInputSerializer,
]


def deep_copying(serializer_class):
    """The serializer as DRF builds it: every declared field deep-copied for each instance."""

    class DeepCopying(serializer_class):
        def get_fields(self):
            fields = copy.deepcopy(self._declared_fields)
            if serializer_class is PaymentListInputSerializer:  # its bracketed query parameters
                fields.update({k: v for k, v in super().get_fields().items() if k not in fields})
            return fields

    return DeepCopying


def outcome(serializer_class, data):
    serializer = serializer_class(data=data)
    valid = serializer.is_valid()
    return valid, serializer.validated_data if valid else serializer.errors


@pytest.mark.parametrize("serializer_class", SERIALIZERS)
@pytest.mark.parametrize("data", INPUTS)
def test_answers_equal_those_of_drfs_deep_copy(serializer_class, data):
    assert outcome(serializer_class, data) == outcome(deep_copying(serializer_class), data)


def test_each_serializer_binds_its_own_copies_and_the_declared_fields_stay_unbound():
    first, second = PaymentCreateInputSerializer(data=INPUTS[1]), PaymentCreateInputSerializer(data=INPUTS[0])
    assert not first.is_valid() and second.is_valid()

    assert first.fields["amount"] is not second.fields["amount"]
    assert (first.fields["amount"].parent, second.fields["amount"].parent) == (first, second)
    declared = PaymentCreateInputSerializer._declared_fields.values()
    assert [field.parent for field in declared] == [None] * len(declared)


def test_a_field_with_fields_of_its_own_is_still_deep_copied():
    class WithList(PaymentCaptureInputSerializer):
        tags = serializers.ListField(child=serializers.CharField(max_length=3))

    first, second = WithList(data={"tags": ["abcd"]}), WithList(data={"tags": ["ab"]})

    assert not first.is_valid() and second.is_valid()
    assert first.fields["tags"].child is not second.fields["tags"].child
    assert first.fields["tags"].child.parent is first.fields["tags"]
