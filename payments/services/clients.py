"""API clients and their keys: only a hash of a key is ever stored."""

from __future__ import annotations

from django.db import transaction

from payments.models import ApiClient, ApiKey

DEMO_CLIENT_NAME = "demo"


def api_key_create(*, client_name: str, key_name: str = "default", rate_limit_per_minute: int | None = None) -> str:
    """Create a key for the client named `client_name` (creating the client if needed); return the key.

    The plaintext is returned once and never stored: only its prefix and a SHA-512 hash are kept.
    """
    with transaction.atomic():
        client, _ = ApiClient.objects.get_or_create(name=client_name)
        if rate_limit_per_minute is not None:
            client.rate_limit_per_minute = rate_limit_per_minute
            client.save(update_fields=["rate_limit_per_minute", "updated_at"])
        _, key = ApiKey.objects.create_key(name=key_name[:50], client=client)
    return key


def api_key_revoke(*, prefix: str) -> None:
    """Revoke a key for good (djangorestframework-api-key refuses to un-revoke)."""
    ApiKey.objects.filter(prefix=prefix).update(revoked=True)


def api_key_ensure_demo() -> str:
    """Return the local demo client's key, creating one when the stored one no longer works.

    Development only: the plaintext is kept in .data/dev-secrets.json so `make run` can print it.
    """
    from config.devstack import paths

    key = paths.dev_secret("DEMO_API_KEY", lambda: api_key_create(client_name=DEMO_CLIENT_NAME, key_name="make run"))
    if ApiKey.objects.is_valid(key):
        return key
    key = api_key_create(client_name=DEMO_CLIENT_NAME, key_name="make run")
    paths.dev_secret_set("DEMO_API_KEY", key)
    return key
