from django.contrib import admin

from config.admin import ReadOnlyMixin
from outbox.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "topic", "created_at", "available_at", "attempts", "sent_at"]
    list_filter = ["topic", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["=id"]
    readonly_fields = [field.name for field in OutboxMessage._meta.fields]
    show_full_result_count = False
