"""The strict input fields refuse what the parser refuses, so no other way in can bring it back."""

import pytest

from payments.api.serializers import PaymentCaptureInputSerializer, PaymentCreateInputSerializer

VALID = {"amount": 100, "currency": "eur", "payment_method": "pm_card_visa"}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"payment_method": "pm_\ud800"}, "payment_method"),
        ({"description": "a\udfffb"}, "description"),
        ({"customer_reference": "\ud83d"}, "customer_reference"),
        ({"currency": "\ud800ur"}, "currency"),
        ({"metadata": {"order": "\ud800"}}, "metadata"),
        ({"metadata": {"\ud800": "v"}}, "metadata"),
        ({"\ud800": "v"}, "non_field_errors"),
    ],
)
def test_strict_fields_refuse_a_lone_surrogate_without_echoing_it(extra, field):
    serializer = PaymentCreateInputSerializer(data={**VALID, **extra})

    assert not serializer.is_valid()
    assert list(serializer.errors) == [field]
    assert "\\ud800" in str(serializer.errors[field][0])  # the rule, spelled as an escape
    assert all(not ("\ud800" <= char <= "\udfff") for char in str(serializer.errors))


def test_an_unknown_parameter_with_a_printable_name_is_still_named():
    serializer = PaymentCaptureInputSerializer(data={"amonut": 100})

    assert not serializer.is_valid()
    assert serializer.errors["amonut"][0].code == "unknown_field"


def test_astral_characters_are_text_like_any_other():
    data = {**VALID, "description": "\U0001f4b3", "metadata": {"\U0001f4b3": "ok"}}

    serializer = PaymentCreateInputSerializer(data=data)

    assert serializer.is_valid(), serializer.errors
