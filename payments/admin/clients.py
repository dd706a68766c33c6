"""Ops' view of API clients, their keys (created and revoked here) and idempotency keys (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from config.admin import ReadOnlyMixin
from payments.models import ApiClient, ApiKey, IdempotencyKey


class ApiKeyInline(ReadOnlyMixin, admin.TabularInline):
    model = ApiKey
    fields = ["prefix", "name", "created", "last_used_at", "revoked", "expiry_date"]
    readonly_fields = fields
    extra = 0


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "rate_limit_per_minute", "created_at"]
    search_fields = ["name"]
    fields = ["name", "rate_limit_per_minute"]
    inlines = [ApiKeyInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a client owns payments: it is never deleted, its keys are revoked


# The library registers an admin for its own APIKey model, which we never use (our keys are ApiKey,
# owned by a client): one "API keys" entry in the admin, ours.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    """The library's admin: shows the key once after creation; revoking cannot be undone."""

    list_display = [*APIKeyModelAdmin.list_display, "client", "last_used_at"]
    list_filter = [*APIKeyModelAdmin.list_filter, "client"]
    list_select_related = ["client"]
    raw_id_fields = ["client"]

    def get_readonly_fields(self, request, obj=None):
        readonly = [*super().get_readonly_fields(request, obj), "last_used_at"]
        return [*readonly, "client"] if obj is not None else readonly


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["key", "client", "request_method", "request_path", "response_status", "created_at", "expires_at"]
    list_filter = ["response_status", "request_method"]
    list_select_related = ["client"]
    search_fields = ["=key"]
    fields = [
        "client",
        "key",
        "request_method",
        "request_path",
        "request_hash",
        "response_status",
        "response",
        "created_at",
        "expires_at",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="Stored response")
    def response(self, obj: IdempotencyKey) -> str:
        body = bytes(obj.response_body or b"").decode("utf-8", errors="replace")
        return format_html("<pre>{}</pre>", body)
