"""The payments panels of the ops dashboard (config/dashboard.py): today's payments, the money at risk,
the provider's circuit breaker. One indexed query each; the breaker is one Redis call."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from config.dashboard import Figure, Panel, dashboard_panel_register
from payments.currencies import money_format
from payments.models import Payment

S = Payment.Status
# Asked of the provider, with no answer yet: where a lost answer or a stuck worker leaves money.
AT_RISK = [S.PROCESSING, S.CAPTURE_REQUESTED, S.CANCEL_REQUESTED]
VIEW_PAYMENTS = "payments.view_payment"
BREAKER_STATES = {"closed": "closed", "open": "open: calls held back", "half_open": "half-open: probing"}


def _changelist(model: str, **params: object) -> str:
    return f"{reverse(f'admin:{model}_changelist')}?{urlencode({key: str(value) for key, value in params.items()})}"


def payments_today(request: HttpRequest, now: datetime) -> list[Figure]:
    """Payments created today (the site's time zone) by status; the links open the admin's own "Today" filter."""
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    today = {"created_at__gte": start, "created_at__lt": start + timedelta(days=1)}
    counts = dict(
        Payment.objects.filter(**today).order_by().values_list("status").annotate(count=Count("id"))
    )  # the created_at index
    figures = [Figure(label="All", value=str(sum(counts.values())), url=_changelist("payments_payment", **today))]
    figures += [
        Figure(
            label=status.label,
            value=str(counts.get(status, 0)),
            url=_changelist("payments_payment", status__exact=status, **today),
        )
        for status in S
    ]
    return figures


def amount_at_risk(request: HttpRequest, now: datetime) -> list[Figure]:
    """Per currency, what is processing or waits on a capture or cancel, unchanged for PAYMENT_AT_RISK_AFTER_SECONDS."""
    cutoff = now - timedelta(seconds=settings.PAYMENT_AT_RISK_AFTER_SECONDS)
    stuck = {"status__in": ",".join(AT_RISK), "updated_at__lt": cutoff.isoformat()}
    rows = (
        Payment.objects.filter(status__in=AT_RISK, updated_at__lt=cutoff)  # the status index: few rows are in flight
        .order_by("currency")
        .values_list("currency")
        .annotate(total=Sum("amount"), count=Count("id"))
    )
    figures = [
        Figure(
            label=currency.upper(),
            value=f"{money_format(amount=total, currency=currency)} in {count} payment{'s' if count != 1 else ''}",
            url=_changelist("payments_payment", currency__exact=currency, **stuck),
            attention=True,
        )
        for currency, total, count in rows
    ]
    return figures or [
        Figure(label="Nothing", value="no payment is stuck", url=_changelist("payments_payment", **stuck))
    ]


def provider_breaker(request: HttpRequest, now: datetime) -> list[Figure]:
    """The shared circuit breaker's state; the link lists the outbox rows it is holding back."""
    from payments.gateway.limits import get_circuit_breaker

    state = get_circuit_breaker().state()
    held_back = ""
    if request.user.has_perm("outbox.view_outboxmessage"):
        held_back = _changelist("outbox_outboxmessage", status__exact="DUE", last_error_type__exact="circuit_open")
    return [
        Figure(
            label="Stripe circuit breaker",
            value=BREAKER_STATES.get(state, "unknown (Redis cannot be reached)"),
            url=held_back,
            attention=state != "closed",
        )
    ]


dashboard_panel_register(
    key="payments.today",
    panel=Panel(title="Payments created today", permission=VIEW_PAYMENTS, figures=payments_today, order=10),
)
dashboard_panel_register(
    key="payments.at_risk",
    panel=Panel(
        title="Amount at risk",
        permission=VIEW_PAYMENTS,
        figures=amount_at_risk,
        description=(
            "Payments processing, or with a capture or cancel asked for, unchanged for longer than "
            f"PAYMENT_AT_RISK_AFTER_SECONDS ({settings.PAYMENT_AT_RISK_AFTER_SECONDS // 60} min). "
            "Re-sync them; resolve by hand only what the provider cannot settle."
        ),
        order=20,
    ),
)
dashboard_panel_register(
    key="payments.provider",
    panel=Panel(title="Provider", permission=VIEW_PAYMENTS, figures=provider_breaker, order=40),
)
