from django.db import models
from ulid import ULID


class BaseModel(models.Model):
    """created_at/updated_at for audit only; business time is passed in as `now`."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def public_id(prefix: str) -> str:
    """Return `<prefix>_<ULID>`: unique, sortable by creation time, never the database integer."""
    return f"{prefix}_{ULID()}"


def new_payment_id() -> str:
    return public_id("pay")


def new_refund_id() -> str:
    return public_id("re")
