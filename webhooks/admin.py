"""Ops' view of webhook events: evidence, read-only; the one action, replay, calls a service."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from config.admin import ReadOnlyMixin
from config.dashboard import Figure, Panel, dashboard_panel_register
from payments.models import PaymentEvent
from payments.models.payment import REASON_MAX_LENGTH
from payments.services.payments import Actor
from webhooks.models import WebhookEvent
from webhooks.services import webhook_event_replay

MAX_EVENTS_PER_REPLAY = 100


class ReplayForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=REASON_MAX_LENGTH,
        required=True,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Why, for the payment's timeline: read by ops only. No card or personal data.",
    )


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
    # Like the payments' actions, it asks for a reason first; the replay is then on the payment's timeline
    # with the operator and the reason (payments.admin.actions for the pattern).
    @admin.action(description="Replay (process again from the start)…", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset):
        if not self.has_replay_permission(request):
            raise PermissionDenied
        events = list(queryset.order_by("pk")[: MAX_EVENTS_PER_REPLAY + 1])
        if len(events) > MAX_EVENTS_PER_REPLAY:
            self.message_user(request, f"Choose at most {MAX_EVENTS_PER_REPLAY} events.", level=messages.ERROR)
            return None
        form = ReplayForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            actor = Actor(
                source=PaymentEvent.Source.ADMIN,
                name=f"admin:{request.user.get_username()}",
                reason=form.cleaned_data["reason"].strip(),
            )
            for event in events:
                webhook_event_replay(webhook_event_id=event.pk, now=timezone.now(), actor=actor)
            self.message_user(request, f"{len(events)} event(s) queued for processing again.", level=messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Replay webhook events",
            "opts": self.model._meta,
            "events": events,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/webhooks/webhookevent/replay_reason.html", context)

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
