from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone

from config.admin import ReadOnlyMixin
from config.dashboard import Figure, Panel, dashboard_panel_register
from outbox.models import OutboxMessage
from outbox.services import outbox_message_retry_now


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "topic", "status", "attempts", "available_at", "last_error_type", "created_at", "done_at"]
    list_filter = ["status", "topic", "last_error_type"]
    search_fields = ["=id"]
    readonly_fields = [field.name for field in OutboxMessage._meta.fields]
    show_full_result_count = False
    actions = ["retry_now"]

    @admin.action(description="Retry now (due at once, attempts reset)", permissions=["retry"])
    def retry_now(self, request, queryset):
        made_due = already_done = 0
        for message_id in queryset.values_list("pk", flat=True):
            message = outbox_message_retry_now(message_id=message_id, now=timezone.now())
            if message.status == OutboxMessage.Status.DONE:  # its work finished: nothing to send again
                already_done += 1
            else:
                made_due += 1
        text = f"{made_due} message(s) made due now"
        text += f"; {already_done} already done, left alone." if already_done else "."
        self.message_user(request, text, level=messages.SUCCESS)

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("outbox.retry_outboxmessage")


def dead_messages(request, now) -> list[Figure]:
    count = OutboxMessage.objects.filter(status=OutboxMessage.Status.DEAD).count()  # the outbox_dead index
    url = f"{reverse('admin:outbox_outboxmessage_changelist')}?status__exact={OutboxMessage.Status.DEAD}"
    return [Figure(label="Dead messages", value=str(count), url=url, attention=count > 0)]


dashboard_panel_register(
    key="outbox.dead",
    panel=Panel(
        title="Outbox",
        permission="outbox.view_outboxmessage",
        figures=dead_messages,
        description="Work whose last attempt failed: read its error, then retry it now or resolve the payment.",
        order=30,
    ),
)
