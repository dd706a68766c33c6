"""Shapes of the public API: strict inputs, and the payment and refund objects clients rely on."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments.api.fields import (
    MAX_UNIX_TIME,
    CurrencyField,
    MetadataField,
    PublicIdField,
    StrictCharField,
    StrictInputSerializer,
    StrictIntegerField,
    UnixTimeField,
)
from payments.currencies import CURRENCIES, charge_amount_validate
from payments.errors import PaymentsError
from payments.models import Payment, Refund
from payments.models.payment import CUSTOMER_REFERENCE_MAX_LENGTH, DESCRIPTION_MAX_LENGTH, MAX_AMOUNT

PUBLIC_STATUSES = sorted(set(Payment.PUBLIC_STATUS.values()))
LIST_MAX_LIMIT = 100


def _codes(currencies) -> str:
    return ", ".join(currency.code for currency in currencies)


# The amount rules of payments.currencies, spelled out for the OpenAPI schema.
AMOUNT_HELP = (
    "Minor units as Stripe counts them: cents for usd, yen for jpy (zero-decimal: "
    f"{_codes(c for c in CURRENCIES.values() if c.exponent == 0)}), fils for kwd (three-decimal, the last "
    f"digit 0: {_codes(c for c in CURRENCIES.values() if c.amount_step == 10)}); whole units only for "
    f"{_codes(c for c in CURRENCIES.values() if c.amount_step == 100)} (5 isk is 500). At least the "
    "provider's minimum charge: "
    + ", ".join(f"{c.code} {c.minimum_amount}" for c in CURRENCIES.values() if c.minimum_amount is not None)
    + "."
)


class PaymentCreateInputSerializer(StrictInputSerializer):
    amount = StrictIntegerField(min_value=1, max_value=MAX_AMOUNT, help_text=AMOUNT_HELP)
    currency = CurrencyField(help_text="ISO 4217, lower case: legal tender that the provider can charge.")
    payment_method = StrictCharField(max_length=255, help_text="The provider's id, e.g. pm_card_visa.")
    capture_method = serializers.ChoiceField(choices=Payment.CaptureMethod.values, default="automatic")
    description = StrictCharField(max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True)
    customer_reference = StrictCharField(max_length=CUSTOMER_REFERENCE_MAX_LENGTH, required=False, allow_blank=True)
    metadata = MetadataField(required=False, help_text="Up to 50 string keys (40 chars) to string values (500).")

    @classmethod
    def validate_together(cls, attrs):
        # Refused here, before anything is stored (the idempotency key included), so the client can
        # fix the amount and retry under the same key: the same rule the service applies.
        try:
            charge_amount_validate(amount=attrs["amount"], currency=attrs["currency"])
        except PaymentsError as exc:
            detail = serializers.ErrorDetail(exc.message, code=exc.code)
            raise serializers.ValidationError({exc.param: [detail]}) from exc
        return attrs


class PaymentCaptureInputSerializer(StrictInputSerializer):
    amount = StrictIntegerField(
        min_value=1,
        max_value=MAX_AMOUNT,
        required=False,
        help_text="Defaults to the whole authorized amount. A smaller (partial) capture meets the same rules "
        "as a payment's amount: the provider's minimum charge and the currency's step.",
    )


class PaymentCancelInputSerializer(StrictInputSerializer):
    pass


class RefundCreateInputSerializer(StrictInputSerializer):
    amount = StrictIntegerField(
        min_value=1, max_value=MAX_AMOUNT, required=False, help_text="Defaults to what is left to refund."
    )
    reason = serializers.ChoiceField(choices=Refund.Reason.values, required=False)


class PaymentListInputSerializer(StrictInputSerializer):
    """Query parameters under the names clients send (`created[gte]`), so an error names the one sent."""

    status = serializers.ChoiceField(choices=PUBLIC_STATUSES, required=False)
    limit = serializers.IntegerField(
        min_value=1, max_value=LIST_MAX_LIMIT, default=10, help_text=f"1 to {LIST_MAX_LIMIT}, default 10."
    )
    starting_after = PublicIdField(prefix="pay", required=False, help_text="A payment id: the page after it.")

    def get_fields(self):
        fields = super().get_fields()
        # Brackets cannot be attribute names; validated data holds them as created_gte / created_lte.
        for bound in ("gte", "lte"):
            fields[f"created[{bound}]"] = UnixTimeField(
                source=f"created_{bound}", required=False, help_text=f"Unix seconds, 0 to {MAX_UNIX_TIME}."
            )
        return fields


def _epoch(value) -> int:
    return int(value.timestamp())


def _text_or_none(value) -> str | None:
    return None if value is None else str(value)


@extend_schema_field({"type": ["object", "null"], "description": "What the customer must do next (3-D Secure)."})
class NextActionField(serializers.JSONField):
    pass


class PaymentOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    status = serializers.ChoiceField(source="public_status", choices=PUBLIC_STATUSES)
    amount = serializers.IntegerField()
    amount_capturable = serializers.IntegerField()
    amount_received = serializers.IntegerField()
    amount_refunded = serializers.IntegerField()
    currency = serializers.CharField()
    capture_method = serializers.CharField()
    payment_method = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    customer_reference = serializers.CharField(allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField())
    provider = serializers.CharField()
    provider_payment_id = serializers.CharField(allow_null=True)
    next_action = NextActionField(allow_null=True)
    failure_code = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField(allow_null=True)
    created = serializers.SerializerMethodField()
    updated = serializers.SerializerMethodField()

    def get_object(self, payment: Payment) -> str:
        return "payment"

    def get_created(self, payment: Payment) -> int:
        return _epoch(payment.created_at)

    def get_updated(self, payment: Payment) -> int:
        return _epoch(payment.updated_at)

    def to_representation(self, instance: Payment) -> dict:
        # What the declared fields above render (the schema reads them), written out: DRF deep-copies
        # every declared field for each instance it renders, a tenth of a create's time (issue 11).
        # tests/payments/test_api_representation.py keeps the two equal.
        metadata = instance.metadata
        return {
            "id": str(instance.public_id),
            "object": "payment",
            "status": str(instance.public_status),
            "amount": int(instance.amount),
            "amount_capturable": int(instance.amount_capturable),
            "amount_received": int(instance.amount_received),
            "amount_refunded": int(instance.amount_refunded),
            "currency": str(instance.currency),
            "capture_method": str(instance.capture_method),
            "payment_method": str(instance.payment_method),
            "description": _text_or_none(instance.description) or None,  # absent is null, as in Stripe's objects
            "customer_reference": _text_or_none(instance.customer_reference) or None,
            "metadata": {str(key): None if value is None else str(value) for key, value in metadata.items()},
            "provider": str(instance.provider),
            "provider_payment_id": _text_or_none(instance.provider_payment_id),
            "next_action": instance.next_action,
            "failure_code": _text_or_none(instance.failure_code) or None,
            "failure_message": _text_or_none(instance.failure_message) or None,
            "created": _epoch(instance.created_at),
            "updated": _epoch(instance.updated_at),
        }

    def declared_representation(self, instance: Payment) -> dict:
        """The representation DRF builds from the declared fields: what to_representation must equal."""
        data = super().to_representation(instance)
        for field in ("description", "customer_reference", "failure_code", "failure_message"):
            data[field] = data[field] or None
        return data


_PAYMENT_OUTPUT = PaymentOutputSerializer()  # its to_representation reads no state of the serializer


def payment_representation(payment: Payment) -> dict:
    """The payment object clients get: PaymentOutputSerializer's answer, without a serializer per payment."""
    return _PAYMENT_OUTPUT.to_representation(payment)


class PaymentListOutputSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = PaymentOutputSerializer(many=True)
    has_more = serializers.BooleanField()
    url = serializers.CharField()


class RefundOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    payment = serializers.CharField(source="payment.public_id")
    amount = serializers.IntegerField()
    currency = serializers.CharField(source="payment.currency")
    status = serializers.ChoiceField(source="public_status", choices=[s.lower() for s in Refund.Status.values])
    reason = serializers.CharField(allow_null=True)
    failure_reason = serializers.CharField(allow_null=True)
    created = serializers.SerializerMethodField()

    def get_object(self, refund: Refund) -> str:
        return "refund"

    def get_created(self, refund: Refund) -> int:
        return _epoch(refund.created_at)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["reason"] = data["reason"] or None
        data["failure_reason"] = data["failure_reason"] or None
        return data


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="invalid_request_error, authentication_error, idempotency_error, …")
    code = serializers.CharField(help_text="Stable, machine-readable, e.g. payment_not_capturable.")
    message = serializers.CharField()
    param = serializers.CharField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_responses(*statuses: int) -> dict:
    """OpenAPI responses for the error statuses an operation can answer, all in the one error shape."""
    return {status: ErrorSerializer for status in statuses}
