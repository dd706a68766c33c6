"""Admin pieces shared by the apps."""


class ReadOnlyMixin:
    """Rows that are evidence (timeline, outbox, webhook events): viewable, never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
