"""API clients and their keys: only a hash of a key is ever stored."""

from __future__ import annotations

from django.db import transaction

from payments.models import ApiClient, ApiKey


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
