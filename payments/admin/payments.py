"""Ops' view of payments: read-mostly; state changes only through actions that call services."""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.http import HttpRequest

from config.admin import ReadOnlyMixin
from payments.admin.actions import RefundForm, ResolveForm, reason_form_action
from payments.admin.display import event_data, money_column, provider_payment_link, provider_refund_link
from payments.currencies import money_format
from payments.errors import PaymentResolveRefused
from payments.models import Payment, PaymentEvent, Refund
from payments.services.ops import payment_resolve, payment_resolve_choices, payment_resync, payment_retry_now
from payments.services.payments import Actor, payment_cancel_request, payment_capture_request
from payments.services.refunds import refund_create


class PaymentEventInline(ReadOnlyMixin, admin.TabularInline):
    model = PaymentEvent
    fields = ["created_at", "type", "from_status", "to_status", "source", "actor", "reason", "refund", "details"]
    readonly_fields = fields
    ordering = ["id"]
    extra = 0
    verbose_name_plural = "Timeline"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("payment", "refund")

    @admin.display(description="Data")
    def details(self, event: PaymentEvent) -> str:
        return event_data(event.data, currency=event.payment.currency)


class RefundInline(ReadOnlyMixin, admin.TabularInline):
    model = Refund
    fields = ["public_id", "amount_money", "status", "reason", "failure_reason", "provider_refund", "created_at"]
    readonly_fields = fields
    extra = 0
    amount_money = money_column("amount", "Amount", currency_of=lambda refund: refund.payment.currency)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("payment")

    @admin.display(description="Provider refund id")
    def provider_refund(self, refund: Refund) -> str:
        return provider_refund_link(refund)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "public_id",
        "client",
        "status",
        "amount_money",
        "capture_method",
        "provider_payment",
        "created_at",
    ]
    list_filter = [
        "status",
        "flag_reason",  # payments flagged for ops: disputes, provider conflicts, refunds made elsewhere
        "currency",
        "capture_method",
        ("created_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["client"]
    search_fields = ["=public_id", "=provider_payment_id", "=customer_reference"]
    date_hierarchy = "created_at"
    raw_id_fields = ["client"]
    fieldsets = [
        (None, {"fields": ["public_id", "client", "status", "amount_money", "capture_method", "payment_method"]}),
        ("Customer", {"fields": ["description", "customer_reference", "metadata"]}),
        (
            "Money",
            {
                "fields": [
                    "amount_capturable_money",
                    "amount_to_capture_money",
                    "amount_received_money",
                    "amount_refunded_money",
                ]
            },
        ),
        ("Provider", {"fields": ["provider", "provider_payment", "next_action", "failure_code", "failure_message"]}),
        ("Dates", {"fields": ["created_at", "updated_at", "succeeded_at", "canceled_at"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    inlines = [RefundInline, PaymentEventInline]
    actions = [
        "retry_now",
        "resync_payments",
        "capture_payments",
        "cancel_payments",
        "refund_payments",
        "resolve_payment",
    ]
    show_full_result_count = False  # COUNT(*) on a large table for every page is waste

    amount_money = money_column("amount", "Amount")
    amount_capturable_money = money_column("amount_capturable", "Capturable")
    amount_to_capture_money = money_column("amount_to_capture", "To capture")
    amount_received_money = money_column("amount_received", "Received")
    amount_refunded_money = money_column("amount_refunded", "Refunded (pending and done)")

    @admin.display(description="Provider payment id", ordering="provider_payment_id")
    def provider_payment(self, payment: Payment) -> str:
        return provider_payment_link(payment.provider_payment_id)

    # Each action names a permission of its own: Django lists an action only to users who hold it and
    # refuses a POST of an unlisted one (select_across included), so `view` never moves money.
    @admin.action(description="Retry now: make queued provider calls due at once", permissions=["retry"])
    def retry_now(self, request, queryset):
        return reason_form_action(
            self, request, queryset, permission="retry", title="Retry now", run=_retry_now, done="Retried"
        )

    @admin.action(description="Re-sync from the provider", permissions=["sync"])
    def resync_payments(self, request, queryset):
        return reason_form_action(
            self, request, queryset, permission="sync", title="Re-sync from the provider", run=_resync, done="Re-synced"
        )

    @admin.action(description="Capture the authorized amount (asks a worker)", permissions=["capture"])
    def capture_payments(self, request, queryset):
        return reason_form_action(
            self, request, queryset, permission="capture", title="Capture", run=_capture, done="Capture requested for"
        )

    @admin.action(description="Cancel (at once if never sent, else asks a worker)", permissions=["cancel"])
    def cancel_payments(self, request, queryset):
        return reason_form_action(
            self, request, queryset, permission="cancel", title="Cancel", run=_cancel, done="Cancel requested for"
        )

    @admin.action(description="Refund (all that is left, or an amount)", permissions=["refund"])
    def refund_payments(self, request, queryset):
        return reason_form_action(
            self,
            request,
            queryset,
            permission="refund",
            title="Refund",
            run=_refund,
            done="Refund requested for",
            form_class=RefundForm,
        )

    @admin.action(description="Resolve by hand (the provider cannot settle it)", permissions=["resolve"])
    def resolve_payment(self, request, queryset):
        return reason_form_action(
            self,
            request,
            queryset,
            permission="resolve",
            title="Resolve by hand",
            run=_resolve,
            done="Resolved",
            form_class=ResolveForm,
            form_kwargs=_resolve_choices,
            single=True,
        )

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.retry_payment")

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.sync_payment")

    def has_capture_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.capture_payment")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.cancel_payment")

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.refund_payment")

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.resolve_payment")


# What each action does to one payment: one service call, and a line for the operator (or None).
def _retry_now(*, payment: Payment, actor: Actor, now: datetime, form) -> str:
    message_ids = payment_retry_now(payment_id=payment.public_id, actor=actor, now=now)
    return f"outbox message {', '.join(f'#{message_id}' for message_id in message_ids)} due now"


def _resync(*, payment: Payment, actor: Actor, now: datetime, form) -> str:
    payment, intent = payment_resync(payment_id=payment.public_id, actor=actor, now=now)
    said = f"the provider says {intent.status}" if intent is not None else "the provider has no intent for it"
    return f"{said}; it is {payment.public_status}"


def _capture(*, payment: Payment, actor: Actor, now: datetime, form) -> None:
    payment_capture_request(client=None, payment_id=payment.public_id, amount=None, actor=actor, now=now)


def _cancel(*, payment: Payment, actor: Actor, now: datetime, form) -> None:
    payment_cancel_request(client=None, payment_id=payment.public_id, actor=actor, now=now)


def _refund(*, payment: Payment, actor: Actor, now: datetime, form) -> str:
    refund = refund_create(
        client=None,
        payment_id=payment.public_id,
        amount=form.cleaned_data["amount"],
        reason=form.cleaned_data["refund_reason"],
        actor=actor,
        now=now,
    )
    return f"refund {refund.public_id} of {money_format(amount=refund.amount, currency=payment.currency)} requested"


def _resolve(*, payment: Payment, actor: Actor, now: datetime, form) -> str:
    status = form.cleaned_data["status"]
    payment = payment_resolve(payment_id=payment.public_id, status=status, actor=actor, now=now)
    return f"resolved as {payment.public_status}"


def _resolve_choices(payments: list[Payment]) -> dict:
    """The final statuses offered for the one payment chosen.

    :raises PaymentResolveRefused: if the payment is already final
    """
    choices = payment_resolve_choices(payment=payments[0])
    if not choices:
        raise PaymentResolveRefused(
            f"Payment {payments[0].public_id} is {payments[0].public_status}: nothing to resolve"
        )
    return {"choices": choices}


@admin.register(Refund)
class RefundAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["public_id", "payment", "amount_money", "status", "reason", "provider_refund", "created_at"]
    list_filter = ["status", "reason", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["payment"]
    search_fields = ["=public_id", "=provider_refund_id", "=payment__public_id"]
    raw_id_fields = ["payment"]
    fields = [
        "public_id",
        "payment",
        "amount_money",
        "status",
        "reason",
        "failure_reason",
        "provider_refund",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields
    amount_money = money_column("amount", "Amount", currency_of=lambda refund: refund.payment.currency)

    @admin.display(description="Provider refund id", ordering="provider_refund_id")
    def provider_refund(self, refund: Refund) -> str:
        return provider_refund_link(refund)


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "payment", "type", "from_status", "to_status", "source", "actor", "reason"]
    list_filter = ["source", "type"]
    list_select_related = ["payment"]
    search_fields = ["=payment__public_id"]
    fields = [
        "payment",
        "refund",
        "type",
        "from_status",
        "to_status",
        "source",
        "actor",
        "reason",
        "details",
        "idempotency_key",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="Data")
    def details(self, event: PaymentEvent) -> str:
        return event_data(event.data, currency=event.payment.currency)
