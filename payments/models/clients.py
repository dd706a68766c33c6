from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

from payments.models.base import BaseModel


class ApiClient(BaseModel):
    """A caller of the API (a checkout frontend, a merchant): owns its payments and idempotency keys."""

    name = models.CharField(max_length=100, unique=True)
    # None: the default from settings.API_RATE_LIMIT_PER_MINUTE.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class ApiKey(AbstractAPIKey):
    """A hashed API key (only the prefix and a SHA-512 hash are stored); a client may hold several."""

    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="api_keys")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"
