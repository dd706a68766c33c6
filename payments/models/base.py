import copy
import functools
import re

from django.db import models
from django_fsm import FSMFieldMixin
from ulid import ULID

# A ULID in Crockford's base32, as `public_id` writes it: anything else was never an id of ours.
_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"


class BaseModel(models.Model):
    """created_at/updated_at for audit only; business time is passed in as `now`."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def field_values(self) -> dict[str, object]:
        """Each concrete field's value now (JSON ones copied): what `save_changed` compares with."""
        return {
            field.name: copy.deepcopy(value) if isinstance(value, (dict, list)) else value
            for field in self._meta.concrete_fields
            for value in (getattr(self, field.attname),)
        }

    def save_changed(self, *, since: dict[str, object]) -> None:
        """
        Save the fields whose values differ from `since` (a `field_values()`), and `updated_at`.

        For a row locked (SELECT … FOR UPDATE) since `since` was read: nobody can have changed its
        other columns, so an UPDATE of what moved writes the same row as a full save, with a
        statement of a few columns instead of every one (issue 11: the worker's payment saves).
        """
        changed = [name for name, value in since.items() if getattr(self, self._meta.get_field(name).attname) != value]
        self.save(update_fields=[*(name for name in changed if name != "updated_at"), "updated_at"])


@functools.cache
def fsm_state_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    """
    The model's FSM fields, as django-fsm's `ConcurrentTransitionMixin.state_fields` finds them.

    django-fsm filters every field of the model through a lambda for each instance it builds (its
    `__init__` records the state fields' initial values): 28 calls per Payment read, per row of a
    list (issue 11). A model's fields are fixed once its class is ready, so the answer is too.
    """
    return tuple(field for field in model._meta.fields if isinstance(field, FSMFieldMixin))


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
