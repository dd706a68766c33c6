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
        done = 0
        for message_id in queryset.values_list("pk", flat=True):
            outbox_message_retry_now(message_id=message_id, now=timezone.now())
            done += 1
        self.message_user(request, f"{done} message(s) made due now.", level=messages.SUCCESS)

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("outbox.retry_outboxmessage")
