from django.contrib import admin, messages
from django.utils import timezone

from config.admin import ReadOnlyMixin
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
