"""Ops' view of webhook events: evidence, read-only; the one action, replay, calls a service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from config.admin import ReadOnlyMixin
from config.dashboard import Figure, Panel, dashboard_panel_register
from webhooks.models import WebhookEvent
from webhooks.services import webhook_event_replay


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "provider_event_id",
        "type",
        "status",
        "outcome",
        "object_id",
        "payment_public_id",
        "attempts",
        "source",
        "received_at",
        "processed_at",
    ]
    list_filter = ["status", "type", "outcome", "source"]
    # Exact matches only: each is an index (the unique constraint, object id, payment), never a scan.
    search_fields = ["=provider_event_id", "=object_id", "=payment_public_id"]
    ordering = ["-id"]
    readonly_fields = [field.name for field in WebhookEvent._meta.fields]
    show_full_result_count = False  # COUNT(*) on a large table for every page is waste
    actions = ["replay"]

    # Replaying runs the handler again against live payments: a permission of its own, never `view`.
    # Django lists the action only to users who hold it and refuses a POST of it from anyone else.
    @admin.action(description="Replay (process again from the start)", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset) -> None:
        done = 0
        for event_id in queryset.values_list("pk", flat=True):
            webhook_event_replay(webhook_event_id=event_id, now=timezone.now())
            done += 1
        self.message_user(request, f"{done} event(s) queued for processing again.", level=messages.SUCCESS)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.replay_webhookevent")


def events_needing_a_person(request, now) -> list[Figure]:
    """Parked events (their payment never turned up) and failed ones (a handler kept failing)."""
    counts = dict(
        WebhookEvent.objects.filter(status__in=[WebhookEvent.Status.PARKED, WebhookEvent.Status.FAILED])
        .values_list("status")
        .annotate(count=Count("id"))
        .order_by()  # the webhook_event_unsettled partial index serves both statuses
    )
    changelist = reverse("admin:webhooks_webhookevent_changelist")
    return [
        Figure(
            label=label,
            value=str(counts.get(status, 0)),
            url=f"{changelist}?status__exact={status}",
            attention=counts.get(status, 0) > 0,
        )
        for label, status in (
            ("Parked events", WebhookEvent.Status.PARKED),
            ("Failed events", WebhookEvent.Status.FAILED),
        )
    ]


dashboard_panel_register(
    key="webhooks.needing_a_person",
    panel=Panel(
        title="Webhooks",
        permission="webhooks.view_webhookevent",
        figures=events_needing_a_person,
        description="Events the system could not apply alone: read the last error, then replay or settle the payment.",
        order=40,
    ),
)
