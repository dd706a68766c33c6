"""How the admin shows money and provider ids: amounts as people read them, ids as links to Stripe."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from payments.currencies import money_format
from payments.gateway.stripe import dashboard_payment_url

EMPTY = "—"


def money_column(field: str, description: str, *, currency_of: Callable[[object], str] = lambda obj: obj.currency):
    """A ModelAdmin column (or read-only field) showing the minor units in `field` as "€20.00"."""

    @admin.display(description=description, ordering=field)
    def column(modeladmin, obj) -> str:
        amount = getattr(obj, field)
        return EMPTY if amount is None else money_format(amount=amount, currency=currency_of(obj))

    column.__name__ = f"{field}_money"
    return column


def provider_payment_link(intent_id: str | None, *, text: str | None = None) -> str:
    """The provider's id (or `text`), linked to its Stripe dashboard page when a real account is configured."""
    if not intent_id:
        return text or EMPTY
    url = dashboard_payment_url(intent_id=intent_id)
    if url is None:
        return text or intent_id
    return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, text or intent_id)


def event_data(data: dict, *, currency: str) -> str:
    """A timeline entry's data, one `key: value` per line, its amounts (`amount*` keys) as money."""

    def shown(key: str, value: object) -> object:
        if key.startswith("amount") and isinstance(value, int) and not isinstance(value, bool):
            return money_format(amount=value, currency=currency)
        return value

    return format_html_join("\n", "<div>{}: {}</div>", ((key, shown(key, value)) for key, value in data.items()))


def provider_refund_link(refund) -> str:
    """The provider's refund id, linked to its payment's Stripe dashboard page (where Stripe lists refunds)."""
    if not refund.provider_refund_id:
        return EMPTY
    return provider_payment_link(refund.payment.provider_payment_id, text=refund.provider_refund_id)
