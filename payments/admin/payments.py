"""Ops' view of payments: read-mostly; state changes only through actions that call services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from config.admin import ReadOnlyMixin
from payments.errors import PaymentsError
from payments.models import Payment, PaymentEvent, Refund
from payments.services.payments import Actor, payment_cancel_request, payment_capture_request


class PaymentEventInline(ReadOnlyMixin, admin.TabularInline):
    model = PaymentEvent
    fields = ["created_at", "type", "from_status", "to_status", "source", "actor", "refund", "data"]
    readonly_fields = fields
    ordering = ["id"]
    extra = 0
    verbose_name_plural = "Timeline"


class RefundInline(ReadOnlyMixin, admin.TabularInline):
    model = Refund
    fields = ["public_id", "amount", "status", "reason", "failure_reason", "provider_refund_id", "created_at"]
    readonly_fields = fields
    extra = 0


def _run_action(modeladmin, request: HttpRequest, queryset: QuerySet[Payment], service, verb: str) -> None:
    actor = Actor(source=PaymentEvent.Source.ADMIN, name=f"admin:{request.user.get_username()}")
    done = 0
    for payment_id in queryset.values_list("public_id", flat=True):
        try:
            service(payment_id=payment_id, actor=actor, now=timezone.now())
        except PaymentsError as exc:
            modeladmin.message_user(request, f"{payment_id}: {exc.message}", level=messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(request, f"{verb} {done} payment(s).", level=messages.SUCCESS)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "public_id",
        "client",
        "status",
        "amount",
        "currency",
        "capture_method",
        "provider_payment_id",
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
    readonly_fields = [field.name for field in Payment._meta.fields]
    inlines = [RefundInline, PaymentEventInline]
    actions = ["capture_payments", "cancel_payments"]
    show_full_result_count = False  # COUNT(*) on a large table for every page is waste

    # Each action moving money names a permission of its own: Django lists an action only to users who
    # hold it and refuses a POST of an unlisted one (select_across included), so `view` never moves money.
    @admin.action(description="Capture the authorized amount (asks a worker)", permissions=["capture"])
    def capture_payments(self, request, queryset):
        _run_action(
            self,
            request,
            queryset,
            lambda **kw: payment_capture_request(client=None, amount=None, **kw),
            "Capture requested for",
        )

    @admin.action(description="Cancel (at once if never sent, else asks a worker)", permissions=["cancel"])
    def cancel_payments(self, request, queryset):
        _run_action(
            self, request, queryset, lambda **kw: payment_cancel_request(client=None, **kw), "Cancel requested for"
        )

    def has_capture_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.capture_payment")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.cancel_payment")


@admin.register(Refund)
class RefundAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["public_id", "payment", "amount", "status", "reason", "created_at"]
    list_filter = ["status", "reason", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["payment"]
    search_fields = ["=public_id", "=provider_refund_id", "=payment__public_id"]
    raw_id_fields = ["payment"]
    readonly_fields = [field.name for field in Refund._meta.fields]


@admin.register(PaymentEvent)
class PaymentEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "payment", "type", "from_status", "to_status", "source", "actor"]
    list_filter = ["source", "type"]
    list_select_related = ["payment"]
    search_fields = ["=payment__public_id"]
    readonly_fields = [field.name for field in PaymentEvent._meta.fields]
