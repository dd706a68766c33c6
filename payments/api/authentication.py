"""`Authorization: Bearer <api key>`: the key's client becomes request.user, the key request.auth."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from payments.models import ApiKey

logger = logging.getLogger(__name__)
# Writing last_used_at on every request would turn each read into a write; once a minute is enough
# for "is this key still in use?" before revoking it.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyRevoked(exceptions.AuthenticationFailed):
    default_detail = "This API key has been revoked."
    default_code = "api_key_revoked"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None  # NotAuthenticated (401 api_key_required) is raised by the permission
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not key.strip():
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <api key>'.")
        return self._check(key.strip())

    def _check(self, key: str) -> tuple:
        prefix = key.partition(".")[0]
        api_key = ApiKey.objects.select_related("client").filter(prefix=prefix).first()
        if api_key is None or not api_key.is_valid(key):
            logger.info("rejected API key with prefix %s", prefix[:8])
            raise exceptions.AuthenticationFailed("Invalid API key provided.")
        if api_key.revoked or api_key.has_expired:
            logger.info("rejected revoked or expired API key %s", api_key.prefix)
            raise ApiKeyRevoked()
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key.client, api_key

    def authenticate_header(self, request) -> str:
        return self.keyword  # makes DRF answer 401 (not 403) with WWW-Authenticate: Bearer
