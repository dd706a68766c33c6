from django.db import models

from payments.models.base import BaseModel
from payments.models.clients import ApiClient


class IdempotencyKey(BaseModel):
    """A client's `Idempotency-Key` and the response it produced, replayed byte for byte.

    The row is inserted in the same transaction as the work it guards: a concurrent request with
    the same key waits on the unique index for at most a lock timeout and is answered 409, and a
    crashed request rolls the row back with its work, so no lock is ever left behind.
    """

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    request_method = models.CharField(max_length=10)
    request_path = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)  # sha256 of the canonical JSON body
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="idempotency_key_unique_per_client")]

    def __str__(self) -> str:
        return self.key
