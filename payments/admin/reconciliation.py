"""Reconciliation mismatches: read-only in the admin (filters day, kind, open), and the dashboard panel."""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest

from config.admin import ReadOnlyMixin
from config.dashboard import Figure, Panel, dashboard_panel_register
from payments.admin.dashboard import _changelist
from payments.models import ReconciliationMismatch

VIEW_MISMATCHES = "payments.view_reconciliationmismatch"


class OpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(ReconciliationMismatch)
class ReconciliationMismatchAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "day",
        "kind",
        "payment_public_id",
        "refund_public_id",
        "provider_id",
        "ours",
        "theirs",
        "resolved_at",
    ]
    list_filter = [OpenFilter, "kind", ("day", admin.DateFieldListFilter)]
    search_fields = ["payment_public_id", "refund_public_id", "provider_id"]
    date_hierarchy = "day"
    fields = [
        "day",
        "kind",
        "payment_public_id",
        "refund_public_id",
        "provider_id",
        "ours",
        "theirs",
        "created_at",
        "updated_at",
        "resolved_at",
    ]
    readonly_fields = fields


def open_mismatches(request: HttpRequest, now: datetime) -> list[Figure]:
    """Open mismatches by kind (the partial index on open rows); each links to the open ones of that kind."""
    counts = dict(
        ReconciliationMismatch.objects.filter(resolved_at__isnull=True)
        .order_by()
        .values_list("kind")
        .annotate(count=Count("id"))
    )
    figures = [
        Figure(
            label=ReconciliationMismatch.Kind(kind).label,
            value=str(count),
            url=_changelist("payments_reconciliationmismatch", open="yes", kind__exact=kind),
            attention=True,
        )
        for kind, count in sorted(counts.items())
    ]
    return figures or [
        Figure(
            label="None open", value="no open mismatch", url=_changelist("payments_reconciliationmismatch", open="yes")
        )
    ]


dashboard_panel_register(
    key="payments.reconciliation",
    panel=Panel(
        title="Reconciliation mismatches",
        permission=VIEW_MISMATCHES,
        figures=open_mismatches,
        description="Differences between our payments and refunds and the provider's, from the daily report.",
        order=50,
    ),
)
