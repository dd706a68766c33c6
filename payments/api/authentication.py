"""`Authorization: Bearer <api key>`: the key's client becomes request.user, the key request.auth."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Model
from django.utils import timezone
from rest_framework import authentication, exceptions

from config.client_address import client_address
from payments.api.throttling import TooManyApiKeyFailures, api_key_failure_record, api_key_failure_wait
from payments.models import ApiKey

logger = logging.getLogger(__name__)
# Writing last_used_at on every request would turn each read into a write; once a minute is enough
# for "is this key still in use?" before revoking it.
LAST_USED_RESOLUTION = timedelta(minutes=1)
monotonic = time.monotonic  # the key cache's clock; tests move it instead of sleeping


class ApiKeyRevoked(exceptions.AuthenticationFailed):
    default_detail = "This API key has been revoked."
    default_code = "api_key_revoked"


@dataclass(frozen=True)
class _Verified:
    api_key: ApiKey  # with its client; handed out as copies, never shared between requests
    checked_at: float  # monotonic time of the database check


class VerifiedKeyCache:
    """Keys this process verified against the database in the last API_KEY_CACHE_SECONDS.

    Looking a key up (a query) and hashing it cost about a fifth of a request (issue 11), for an
    answer that changes only when someone revokes the key. Entries are keyed by the SHA-256 of the
    whole key, so a secret is not kept in memory and a wrong secret with a right prefix never
    matches; only a key that passed every check is stored. A revocation (or a change of the client's
    rate limit) reaches every process within API_KEY_CACHE_SECONDS; an expiry date is checked on
    every request. Bounded: past MAX_ENTRIES it starts again empty.
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[bytes, _Verified] = {}
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> ApiKey | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if monotonic() - entry.checked_at >= settings.API_KEY_CACHE_SECONDS or entry.api_key.has_expired:
            self.discard(digest)
            return None
        api_key = _copy(entry.api_key)
        api_key._state.fields_cache["client"] = _copy(entry.api_key.client)  # as `api_key.client =`, same pk
        return api_key

    def put(self, digest: bytes, api_key: ApiKey) -> None:
        if settings.API_KEY_CACHE_SECONDS <= 0:
            return
        stored = _copy(api_key)
        stored.client = _copy(api_key.client)
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = _Verified(api_key=stored, checked_at=monotonic())

    def discard(self, digest: bytes) -> None:
        with self._lock:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _copy(instance: Model) -> Model:
    """A shallow copy of a model instance, as `copy.copy` makes it through Model.__getstate__ (its fields, and
    a state of its own with its own cache of related objects) without pickling's way round, which took three
    times as long. The models copied here have no binary field (__getstate__ turns memoryviews into bytes)."""
    state = instance._state
    state_copy = state.__class__.__new__(state.__class__)
    state_copy.__dict__.update(state.__dict__)
    state_copy.fields_cache = state.fields_cache.copy()
    clone = instance.__class__.__new__(instance.__class__)
    clone.__dict__.update(instance.__dict__)
    clone._state = state_copy
    return clone


verified_keys = VerifiedKeyCache()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Bearer API keys; an address that failed API_KEY_FAILURE_LIMIT times in the window is refused first.

    While an address is refused its keys are not even looked up, good ones included: guessing costs
    the guesser a 429, and a client sharing the address waits at most the window. Requests without a
    key and accepted keys never count. A key verified in the last API_KEY_CACHE_SECONDS is taken from
    `verified_keys` without a query; its address is then asked by the throttle, in the round trip of
    the client's own rate limit (payments/api/throttling.py), so a refused address is refused still.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None  # NotAuthenticated (401 api_key_required) is raised by the permission
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() == self.keyword.lower() and key:
            digest = hashlib.sha256(key.encode("latin-1")).digest()
            cached = verified_keys.get(digest)
            if cached is not None:
                return cached.client, cached
        remote_addr = client_address(request)
        wait = api_key_failure_wait(remote_addr=remote_addr)
        if wait:
            logger.info("refused an API key from %s for %ss: too many failed attempts", remote_addr, wait)
            raise TooManyApiKeyFailures(wait=wait)
        try:
            if scheme.lower() != self.keyword.lower() or not key:
                raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <api key>'.")
            api_key = self._check(key)
        except exceptions.AuthenticationFailed:
            api_key_failure_record(remote_addr=remote_addr)
            raise
        verified_keys.put(digest, api_key)
        return api_key.client, api_key

    def _check(self, key: str) -> ApiKey:
        prefix = key.partition(".")[0]
        api_key = ApiKey.objects.select_related("client").filter(prefix=prefix).first()
        if api_key is None:
            # What was sent is not logged, not even its start: it may be a key's secret without its
            # prefix, a card number or an e-mail address pasted in the wrong place.
            logger.info("rejected an API key with no known prefix")
            raise exceptions.AuthenticationFailed("Invalid API key provided.")
        if not api_key.is_valid(key):
            logger.info("rejected API key with prefix %s", api_key.prefix)  # a stored key's, not a secret
            raise exceptions.AuthenticationFailed("Invalid API key provided.")
        if api_key.revoked or api_key.has_expired:
            logger.info("rejected revoked or expired API key %s", api_key.prefix)
            raise ApiKeyRevoked()
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key

    def authenticate_header(self, request) -> str:
        return self.keyword  # makes DRF answer 401 (not 403) with WWW-Authenticate: Bearer
