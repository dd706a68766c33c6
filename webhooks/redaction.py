"""
What of a provider event we keep: an allow-list, so a field Stripe adds tomorrow is dropped until
someone decides it is needed.

Handlers need ids, statuses, amounts, codes and our own ids in metadata; nothing else is stored.
Personal data (billing details, e-mail, names, phone numbers, addresses, shipping, descriptions,
receipt e-mail, customer ids and details, card details) never is, and of metadata we keep every
key but only our own values (`payment_id`, `refund_id`): a merchant's metadata may hold anything.
"""

from __future__ import annotations

from typing import Any

from payments.models.base import public_id_well_formed

REDACTED = "[redacted]"
# Metadata keys whose values we wrote ourselves (payments/gateway/stripe.py) and the handlers read,
# with the prefix of our ids: another integration on the same account may use the same common keys
# for its own values (an order number, an e-mail), which are kept no more than any other value.
OUR_METADATA_KEYS = {"payment_id": "pay", "refund_id": "re"}
METADATA = object()  # a spec value: keep the keys, redact every value not in OUR_METADATA_KEYS
SCALAR = object()  # a spec value: keep the value if it is a string, number, boolean or null

# The decline Stripe reports on an intent; its payment_method is a full PaymentMethod with
# billing_details, so only its id is kept.
_PAYMENT_ERROR = {
    "type": SCALAR,
    "code": SCALAR,
    "decline_code": SCALAR,
    "message": SCALAR,  # Stripe's wording of the decline ("Your card was declined."), shown to ops
    "doc_url": SCALAR,
    "payment_method": {"id": SCALAR},
}
_OBJECTS: dict[str, dict[str, Any]] = {
    "payment_intent": {
        "id": SCALAR,
        "object": SCALAR,
        "amount": SCALAR,
        "amount_capturable": SCALAR,
        "amount_received": SCALAR,
        "currency": SCALAR,
        "status": SCALAR,
        "capture_method": SCALAR,
        "cancellation_reason": SCALAR,
        "canceled_at": SCALAR,
        "created": SCALAR,
        "livemode": SCALAR,
        "latest_charge": SCALAR,  # an id (an expanded charge object is not kept)
        "last_payment_error": _PAYMENT_ERROR,
        "next_action": {"type": SCALAR, "redirect_to_url": {"url": SCALAR, "return_url": SCALAR}},
        "metadata": METADATA,
    },
    "charge": {
        "id": SCALAR,
        "object": SCALAR,
        "amount": SCALAR,
        "amount_captured": SCALAR,
        "amount_refunded": SCALAR,
        "captured": SCALAR,
        "currency": SCALAR,
        "paid": SCALAR,
        "payment_intent": SCALAR,
        "refunded": SCALAR,
        "status": SCALAR,
        "failure_code": SCALAR,
        "created": SCALAR,
        "livemode": SCALAR,
        "metadata": METADATA,
    },
    "refund": {
        "id": SCALAR,
        "object": SCALAR,
        "amount": SCALAR,
        "charge": SCALAR,
        "currency": SCALAR,
        "payment_intent": SCALAR,
        "reason": SCALAR,
        "status": SCALAR,
        "failure_reason": SCALAR,
        "created": SCALAR,
        "metadata": METADATA,
    },
    "dispute": {
        "id": SCALAR,
        "object": SCALAR,
        "amount": SCALAR,
        "charge": SCALAR,
        "currency": SCALAR,
        "payment_intent": SCALAR,
        "reason": SCALAR,
        "status": SCALAR,
        "is_charge_refundable": SCALAR,
        "created": SCALAR,
        "livemode": SCALAR,
        "metadata": METADATA,
    },
}
# Any other object (an event type we do not handle): enough to say what it was about.
_ANY_OBJECT = {"id": SCALAR, "object": SCALAR, "status": SCALAR, "created": SCALAR, "livemode": SCALAR}
_EVENT = {
    "id": SCALAR,
    "object": SCALAR,
    "type": SCALAR,
    "api_version": SCALAR,
    "created": SCALAR,
    "livemode": SCALAR,
    "pending_webhooks": SCALAR,
    "request": {"id": SCALAR, "idempotency_key": SCALAR},  # ours: `pay_…:create`
}


def webhook_payload_redact(event: dict) -> dict:
    """Return the event with only what the handlers need: personal data and metadata values removed."""
    kept = _keep(event, _EVENT)
    data = event.get("data")
    if isinstance(data, dict):
        obj = data.get("object")
        kind = obj.get("object") if isinstance(obj, dict) else None
        # Only text names an object type: a list or object there (signed, so the provider's bug) is any object.
        spec = _OBJECTS.get(kind, _ANY_OBJECT) if isinstance(kind, str) else _ANY_OBJECT
        kept["data"] = {"object": _keep(obj, spec) if isinstance(obj, dict) else None}
        if isinstance(data.get("previous_attributes"), dict):
            # The fields an update changed, with their old values: the same allow-list applies.
            kept["data"]["previous_attributes"] = _keep(data["previous_attributes"], spec)
    return kept


def storable(text: str) -> bool:
    """Whether PostgreSQL can store the text: no NUL (text and jsonb refuse it) and no lone
    surrogate (JSON's \\ud800 escape reads as one in Python; it cannot be encoded as UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(text: str) -> str:
    """The text with what PostgreSQL cannot store replaced by U+FFFD, so the event is kept, not refused."""
    if storable(text):
        return text
    return "".join("\ufffd" if char == "\x00" or "\ud800" <= char <= "\udfff" else char for char in text)


def _keep(value: dict, spec: dict) -> dict:
    kept = {}
    for key, rule in spec.items():
        if key not in value:
            continue
        item = value[key]
        if rule is METADATA:
            kept[key] = _metadata(item)
        elif rule is SCALAR:
            if isinstance(item, str):
                kept[key] = _text(item)
            elif item is None or isinstance(item, (int, float, bool)):
                kept[key] = item
        elif isinstance(item, dict):
            kept[key] = _keep(item, rule)
        elif item is None:
            kept[key] = None
    return kept


def _metadata(metadata: Any) -> dict:
    if not isinstance(metadata, dict):
        return {}
    return {
        _text(str(key)): value
        if key in OUR_METADATA_KEYS and public_id_well_formed(value, prefix=OUR_METADATA_KEYS[key])
        else REDACTED
        for key, value in metadata.items()
    }
