import re

from django.db import models
from ulid import ULID

# A ULID in Crockford's base32, as `public_id` writes it: anything else was never an id of ours.
_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"


class BaseModel(models.Model):
    """created_at/updated_at for audit only; business time is passed in as `now`."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def public_id(prefix: str) -> str:
    """Return `<prefix>_<ULID>`: unique, sortable by creation time, never the database integer."""
    return f"{prefix}_{ULID()}"


def public_id_pattern(prefix: str) -> str:
    """The regular expression (anchored) of the ids `public_id(prefix)` writes: the API schema states it too."""
    return f"^{re.escape(prefix)}_{_ULID}$"


def public_id_well_formed(value: object, *, prefix: str) -> bool:
    """Whether `value` has the shape of an id `public_id(prefix)` writes (it may still name no row)."""
    return isinstance(value, str) and re.fullmatch(public_id_pattern(prefix)[1:-1], value) is not None


def new_payment_id() -> str:
    return public_id("pay")


def new_refund_id() -> str:
    return public_id("re")
