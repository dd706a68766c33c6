"""`Authorization: Bearer <api key>`: the key's client becomes request.user, the key request.auth."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from config.client_address import client_address
from payments.api.throttling import api_key_failure_record, api_key_failure_wait
from payments.models import ApiKey

logger = logging.getLogger(__name__)
# Writing last_used_at on every request would turn each read into a write; once a minute is enough
# for "is this key still in use?" before revoking it.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyRevoked(exceptions.AuthenticationFailed):
    default_detail = "This API key has been revoked."
    default_code = "api_key_revoked"


class TooManyApiKeyFailures(exceptions.Throttled):
    default_detail = "Too many failed API key attempts from this address."


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Bearer API keys; an address that failed API_KEY_FAILURE_LIMIT times in the window is refused first.

    While an address is refused its keys are not even looked up, good ones included: guessing costs
    the guesser a 429, and a client sharing the address waits at most the window. Requests without a
    key and accepted keys never count.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None  # NotAuthenticated (401 api_key_required) is raised by the permission
        remote_addr = client_address(request)
        wait = api_key_failure_wait(remote_addr=remote_addr)
        if wait:
            logger.info("refused an API key from %s for %ss: too many failed attempts", remote_addr, wait)
            raise TooManyApiKeyFailures(wait=wait)
        try:
            scheme, _, key = header.partition(" ")
            if scheme.lower() != self.keyword.lower() or not key.strip():
                raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <api key>'.")
            return self._check(key.strip())
        except exceptions.AuthenticationFailed:
            api_key_failure_record(remote_addr=remote_addr)
            raise

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
