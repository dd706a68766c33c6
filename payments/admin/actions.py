"""
Admin actions on payments that ask for a reason first (Django's intermediate-page pattern, as for
"delete selected"): the first POST from the changelist shows a form listing the chosen payments; its
"apply" POST runs one service per payment with the operator and the reason as the timeline's actor.

Django lists an action only to users holding its permission and refuses a POST of one they don't
(`ModelAdmin.get_actions`); `reason_form_action` checks again before it shows or runs anything.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from payments.currencies import money_format
from payments.errors import PaymentsError
from payments.gateway import stripe_currencies
from payments.models import Payment, PaymentEvent, Refund
from payments.models.payment import REASON_MAX_LENGTH
from payments.services.payments import Actor

# Each payment is one service call (some ask the provider): a bounded selection keeps the request
# short and the confirmation page readable. Filter the list down, or run the action again.
MAX_PAYMENTS_PER_ACTION = 100
TEMPLATE = "admin/payments/payment/action_reason.html"


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=REASON_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Why, for the payment's timeline: read by ops, never sent to the client or the provider. "
        "No card or personal data.",
    )

    def __init__(self, *args, payments: list[Payment], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.payments = payments


class ResolveForm(ReasonForm):
    status = forms.ChoiceField(label="Final status")

    def __init__(self, *args, choices: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = True  # a payment settled by hand must say why
        # No default: settling a payment by hand is a choice made on purpose, never the first option.
        self.fields["status"].choices = [("", "—"), *((status, Payment.Status(status).label) for status in choices)]


class RefundForm(ReasonForm):
    amount = forms.DecimalField(
        label="Amount",
        required=False,
        min_value=Decimal(0),
        help_text="In major units (12.50); empty: all that is left to refund.",
    )
    refund_reason = forms.ChoiceField(
        label="Refund reason (sent to Stripe)", required=False, choices=[("", "—"), *Refund.Reason.choices]
    )

    def clean_amount(self) -> int | None:
        """The amount in minor units (Stripe's exponent), or None for "everything left"."""
        amount = self.cleaned_data["amount"]
        if amount is None:
            return None
        if len(self.payments) != 1:
            raise forms.ValidationError("An amount can only be given when refunding one payment.")
        currency = self.payments[0].currency
        try:
            minor = amount.scaleb(stripe_currencies.amount_exponent(currency))
            if minor != minor.to_integral_value() or minor <= 0:
                raise InvalidOperation
        except InvalidOperation:
            raise forms.ValidationError(
                f"Give a positive amount in {currency.upper()} with at most "
                f"{stripe_currencies.amount_exponent(currency)} decimals."
            ) from None
        return int(minor)


def reason_form_action(
    modeladmin,
    request: HttpRequest,
    queryset: QuerySet[Payment],
    *,
    permission: str,
    title: str,
    run: Callable[..., str | None],
    done: str,
    form_class: type[ReasonForm] = ReasonForm,
    form_kwargs: Callable[[list[Payment]], dict] | None = None,
    single: bool = False,
) -> TemplateResponse | None:
    """
    Show the reason form for the selected payments, or, on its "apply" POST, call `run(payment=…,
    actor=…, form=…, now=…)` for each and report what happened ("<done> 3 payment(s)."). `run` may
    return a line for the operator; a `PaymentsError` it raises is shown, and the next payment runs.
    """
    if not getattr(modeladmin, f"has_{permission}_permission")(request):
        raise PermissionDenied
    payments = list(queryset.select_related("client").order_by("pk")[: MAX_PAYMENTS_PER_ACTION + 1])
    if len(payments) > MAX_PAYMENTS_PER_ACTION:
        modeladmin.message_user(
            request, f"Choose at most {MAX_PAYMENTS_PER_ACTION} payments for one action.", level=messages.ERROR
        )
        return None
    if single and len(payments) != 1:
        modeladmin.message_user(request, "Choose exactly one payment for this action.", level=messages.ERROR)
        return None
    try:
        extra = form_kwargs(payments) if form_kwargs else {}
    except PaymentsError as exc:
        modeladmin.message_user(request, exc.message, level=messages.ERROR)
        return None
    form = form_class(request.POST if "apply" in request.POST else None, payments=payments, **extra)
    if form.is_bound and form.is_valid():
        actor = Actor(
            source=PaymentEvent.Source.ADMIN,
            name=f"admin:{request.user.get_username()}",
            reason=form.cleaned_data["reason"].strip(),
        )
        _run_each(modeladmin, request, payments, run=run, actor=actor, form=form, done=done)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": modeladmin.model._meta,
        "form": form,
        "payments": [(payment, money_format(amount=payment.amount, currency=payment.currency)) for payment in payments],
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media + form.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, TEMPLATE, context)


def _run_each(modeladmin, request, payments, *, run, actor: Actor, form, done: str) -> None:
    succeeded = 0
    for payment in payments:
        try:
            note = run(payment=payment, actor=actor, form=form, now=timezone.now())
        except PaymentsError as exc:
            modeladmin.message_user(request, _about(payment, exc.message), level=messages.ERROR)
            continue
        succeeded += 1
        if note:
            modeladmin.message_user(request, _about(payment, note), level=messages.INFO)
    if succeeded:
        modeladmin.message_user(request, f"{done} {succeeded} payment(s).", level=messages.SUCCESS)


def _about(payment: Payment, text: str) -> str:
    # Starts with a word: the admin capitalises each message, which would turn "pay_…" into "Pay_…".
    return text if payment.public_id in text else f"Payment {payment.public_id}: {text}"
