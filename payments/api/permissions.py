from rest_framework import permissions

from payments.models import ApiClient


class IsApiClient(permissions.BasePermission):
    """Only requests authenticated by an API key reach the payments API."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ApiClient)
